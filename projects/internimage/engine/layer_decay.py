"""Layer-wise learning-rate decay for InternImage (the reference's
"CustomLayerDecayOptimizerConstructor").

The layer id of each parameter comes from the model's backbone
(:meth:`InternImage.get_layer_depth <..models.backbone.InternImage.get_layer_depth>`),
as in mmpretrain's ``LearningRateDecayOptimWrapperConstructor``. Usage in a
config::

    optim_wrapper = dict(
        optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05),
        constructor='InternImageLayerDecayOptimizerConstructor',
        paramwise_cfg=dict(layer_decay_rate=0.9))

Each param group holds ``lr``, ``weight_decay``, ``lr_scale``, ``layer_id``,
``group_name`` and ``param_names``. mmengine's parameter schedulers scale
every group's lr by the same factor, so the per-group ratios are kept.
"""
from typing import Any, Dict, List, Optional, Tuple

from mmengine.dist import get_rank
from mmengine.logging import print_log
from mmengine.optim import DefaultOptimWrapperConstructor
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS
from torch import nn

NO_DECAY_NAME_PARTS = ('relative_position', 'norm', 'sampling_offsets')
OFFSET_NAME_PARTS = ('sampling_offsets', 'reference_points')
#: Head parameters that the reference puts in layer 0 with the stem (the
#: smallest lr scale): DINO's level embeddings (mmdet 3.x ``level_embed``, the
#: reference's ``level_embeds``) and Mask2Former's queries, level embedding and
#: class / mask embeddings.
LAYER0_HEAD_PREFIXES = ('level_embed', 'decode_head.mask_embed', 'decode_head.cls_embed',
                        'decode_head.level_embed', 'decode_head.query_embed',
                        'decode_head.query_feat')


def is_no_decay(name: str, shape: Tuple[int, ...]) -> bool:
    """1-D tensors, biases and norm / position / sampling-offset parameters."""
    return (len(shape) == 1 or name.endswith('.bias')
            or any(part in name for part in NO_DECAY_NAME_PARTS))


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class InternImageLayerDecayOptimizerConstructor(DefaultOptimWrapperConstructor):
    """Optimizer wrapper constructor with InternImage's layer-wise lr decay.

    Every trainable parameter goes to a group by (layer id, weight decay or
    not, special lr). The layer id and the number of ids ``L`` come from
    ``model.backbone.get_layer_depth(name, 'backbone.')``; a group's lr is
    ``lr * layer_decay_rate ** (L - 1 - layer_id)`` times any special scale.
    1-D tensors, biases and parameters named ``*norm*``,
    ``*relative_position*`` or ``*sampling_offsets*`` get no weight decay.
    As in the reference, a Mask2Former head's queries, level embedding and
    class / mask embeddings (:data:`LAYER0_HEAD_PREFIXES`) are in layer 0.

    Args:
        optim_wrapper_cfg: the ``optim_wrapper`` config (its ``optimizer``
            must give ``lr``).
        paramwise_cfg: a dict with

            - ``layer_decay_rate`` (required): lr ratio between successive
              layer ids;
            - ``offset_lr_scale`` (1.0): extra lr scale of parameters named
              ``*sampling_offsets*`` or ``*reference_points*`` (the detector
              heads'; DCNv3's own ``offset`` is not one of them);
            - ``backbone_small_lr`` (False): a further 0.1x for every group
              whose scale is below 1;
            - ``dino_head`` (False): 0.1x (instead of ``offset_lr_scale``)
              for those offset parameters outside the backbone;
            - ``num_layers``, ``depths`` (optional, the reference's keys):
              if given they must equal ``sum(backbone.depths)`` and
              ``backbone.depths``.

    Raises:
        ValueError: unknown or missing ``paramwise_cfg`` keys, no ``lr``, a
            model whose backbone has no ``get_layer_depth``, or ``num_layers``
            / ``depths`` that disagree with the built backbone (both values
            named).
    """

    REQUIRED_KEYS = ('layer_decay_rate', )
    OPTIONAL_KEYS = ('num_layers', 'depths', 'offset_lr_scale', 'backbone_small_lr',
                     'dino_head')

    def _validate_cfg(self) -> None:
        if not isinstance(self.paramwise_cfg, dict):
            raise TypeError('paramwise_cfg should be a dict, got '
                            f'{type(self.paramwise_cfg).__name__}')
        allowed = self.REQUIRED_KEYS + self.OPTIONAL_KEYS
        unknown = sorted(set(self.paramwise_cfg) - set(allowed))
        if unknown:
            raise ValueError(f'{type(self).__name__}: unknown paramwise_cfg key(s) '
                             f'{unknown}; allowed: {list(allowed)}')
        missing = [k for k in self.REQUIRED_KEYS if k not in self.paramwise_cfg]
        if missing:
            raise ValueError(f'{type(self).__name__}: paramwise_cfg needs {missing}')
        if self.base_lr is None:
            raise ValueError(f'{type(self).__name__}: the optimizer config needs `lr`')

    def _backbone(self, module: nn.Module) -> nn.Module:
        """The model's backbone, checked against ``num_layers`` / ``depths``."""
        backbone = getattr(module, 'backbone', None)
        if backbone is None or not callable(getattr(backbone, 'get_layer_depth', None)):
            raise ValueError(f'{type(self).__name__} needs a model whose `backbone` has '
                             f'get_layer_depth() (e.g. InternImage); got a '
                             f'{type(module).__name__} with backbone '
                             f'{type(backbone).__name__}')
        cfg = self.paramwise_cfg
        depths = getattr(backbone, 'depths', None)
        if 'depths' in cfg and (depths is None or list(cfg['depths']) != list(depths)):
            raise ValueError(f'paramwise_cfg.depths={list(cfg["depths"])} disagrees with '
                             f'the model: backbone.depths={depths}; drop the key (the '
                             f'backbone gives its layer depths)')
        _, num_ids = backbone.get_layer_depth('backbone.', 'backbone.')
        if 'num_layers' in cfg and int(cfg['num_layers']) != num_ids - 2:
            raise ValueError(f'paramwise_cfg.num_layers={cfg["num_layers"]} disagrees with '
                             f'the model: the backbone has {num_ids - 2} layers '
                             f'(sum(depths)); drop the key (the backbone gives it)')
        return backbone

    def add_params(self, params: List[Dict[str, Any]], module: nn.Module,
                   prefix: str = '', **kwargs: Any) -> None:
        """Append one param group per (layer id, decay / no decay, special lr).

        Args:
            params: the param groups being built; extended in place.
            module: the model (with a ``backbone`` attribute).
            prefix: the prefix of ``module``'s parameter names.
        """
        cfg = self.paramwise_cfg
        backbone = self._backbone(module)
        decay_rate = float(cfg['layer_decay_rate'])
        offset_lr_scale = float(cfg.get('offset_lr_scale', 1.0))
        backbone_small_lr = bool(cfg.get('backbone_small_lr', False))
        dino_head = bool(cfg.get('dino_head', False))
        backbone_prefix = f'{prefix}.backbone.' if prefix else 'backbone.'

        groups: Dict[str, Dict[str, Any]] = {}
        for name, param in module.named_parameters(prefix=prefix):
            if not param.requires_grad:
                continue
            no_decay = is_no_decay(name, tuple(param.shape))
            decay_name = 'no_decay' if no_decay else 'decay'
            layer_id, num_layers = backbone.get_layer_depth(name, backbone_prefix)
            if name[len(prefix) + 1 if prefix else 0:].startswith(LAYER0_HEAD_PREFIXES):
                layer_id = 0
            is_offset = any(part in name for part in OFFSET_NAME_PARTS)
            special: Optional[str] = None
            if is_offset and dino_head and layer_id == num_layers - 1:
                special = '0.1x'
            elif is_offset and offset_lr_scale != 1.0:
                special = 'offset_lr_scale'
            group_name = f'layer_{layer_id}_{decay_name}' + (f'_{special}' if special else '')
            if group_name not in groups:
                scale = decay_rate**(num_layers - layer_id - 1)
                if backbone_small_lr and scale < 1:
                    scale *= 0.1
                if special == '0.1x':
                    scale *= 0.1
                elif special == 'offset_lr_scale':
                    scale *= offset_lr_scale
                group: Dict[str, Any] = dict(
                    params=[], param_names=[], lr=scale * self.base_lr, lr_scale=scale,
                    layer_id=layer_id, group_name=group_name)
                if no_decay:
                    group['weight_decay'] = 0.
                elif self.base_wd is not None:
                    group['weight_decay'] = self.base_wd
                groups[group_name] = group
            groups[group_name]['params'].append(param)
            groups[group_name]['param_names'].append(name)
        params.extend(groups.values())
        if get_rank() == 0:
            _, num_layers = backbone.get_layer_depth('', backbone_prefix)
            print_log(format_groups(list(groups.values()), num_layers, decay_rate),
                      logger='current')


def format_groups(groups: List[Dict[str, Any]], num_layers: int, decay_rate: float) -> str:
    """A compact text table of the param groups."""
    head = (f'InternImage layer-wise lr decay: {len(groups)} param groups, '
            f'{num_layers} layer ids (rate {decay_rate})')
    rows = [f'{"group":<32} {"layer":>5} {"lr_scale":>10} {"wd":>8} {"tensors":>7} '
            f'{"params":>11}']
    for g in sorted(groups, key=lambda g: (g['layer_id'], g['group_name'])):
        rows.append(f'{g["group_name"]:<32} {g["layer_id"]:>5} {g["lr_scale"]:>10.4g} '
                    f'{g.get("weight_decay", "default")!s:>8} {len(g["params"]):>7} '
                    f'{sum(p.numel() for p in g["params"]):>11}')
    return '\n'.join([head] + rows)


# The reference's name, so configs written for it work unchanged. Neither
# mmengine, mmdet 3.3 nor mmseg 1.2 registers it (mmseg has
# ``LayerDecayOptimizerConstructor`` and ``LearningRateDecayOptimizerConstructor``).
OPTIM_WRAPPER_CONSTRUCTORS.register_module(
    name='CustomLayerDecayOptimizerConstructor',
    module=InternImageLayerDecayOptimizerConstructor)
