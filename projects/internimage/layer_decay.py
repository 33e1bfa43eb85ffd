"""Layer-wise learning-rate decay for InternImage (the reference
"CustomLayerDecayOptimizerConstructor", rules in SPEC-internimage.md).

Usage in a config::

    optim_wrapper = dict(
        optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05),
        constructor='InternImageLayerDecayOptimizerConstructor',
        paramwise_cfg=dict(num_layers=30, layer_decay_rate=0.9,
                           depths=[4, 4, 18, 4]))

Each param group holds ``lr``, ``weight_decay``, ``lr_scale``, ``layer_id``,
``group_name`` and ``param_names``. mmengine's parameter schedulers scale
every group's lr by the same factor, so the per-group ratios are kept.
"""
from typing import Any, Dict, List, Optional, Sequence, Tuple

from mmengine.dist import get_rank
from mmengine.logging import print_log
from mmengine.optim import DefaultOptimWrapperConstructor
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS
from torch import nn

NO_DECAY_NAME_PARTS = ('relative_position', 'norm', 'sampling_offsets')
OFFSET_NAME_PARTS = ('sampling_offsets', 'reference_points')
#: Mask2Former head parameters that the reference puts in layer 0 with the
#: stem (the smallest lr scale): the queries, the level embedding and the
#: class / mask embeddings.
LAYER0_HEAD_PREFIXES = ('decode_head.mask_embed', 'decode_head.cls_embed',
                        'decode_head.level_embed', 'decode_head.query_embed',
                        'decode_head.query_feat')


def get_layer_id(name: str, max_layer_id: int, depths: Sequence[int]) -> int:
    """Layer id of parameter ``name`` (a full-model name, ``backbone.`` first).

    ``max_layer_id`` is L - 1 = num_layers + 1, the id of everything outside
    the backbone. Quirks kept from the reference: ``levels.s.post_norms.k``
    takes the id of block k, and the last stage's norm shares the id of the
    previous stage's norm and downsampling; a Mask2Former head's queries,
    level embedding and class / mask embeddings are in layer 0.
    """
    if (name.startswith(('backbone.patch_embed', ) + LAYER0_HEAD_PREFIXES)
            or 'level_embeds' in name):
        return 0
    if name.startswith('backbone.levels.'):
        parts = name.split('.')
        stage, part = int(parts[2]), parts[3]
        if part in ('downsample', 'norm'):
            return 1 + sum(depths[:min(stage + 1, len(depths) - 1)])
        return int(parts[4]) + 1 + sum(depths[:stage])
    return max_layer_id


def is_no_decay(name: str, shape: Tuple[int, ...]) -> bool:
    """1-D tensors, biases and norm / position / sampling-offset parameters."""
    return (len(shape) == 1 or name.endswith('.bias')
            or any(part in name for part in NO_DECAY_NAME_PARTS))


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class InternImageLayerDecayOptimizerConstructor(DefaultOptimWrapperConstructor):
    """Optimizer wrapper constructor with InternImage's layer-wise lr decay.

    ``paramwise_cfg`` keys: ``layer_decay_rate`` and ``depths`` (required),
    ``num_layers`` (default ``sum(depths)``), ``offset_lr_scale`` (1.0),
    ``backbone_small_lr`` (False), ``dino_head`` (False).
    """

    REQUIRED_KEYS = ('layer_decay_rate', 'depths')
    OPTIONAL_KEYS = ('num_layers', 'offset_lr_scale', 'backbone_small_lr', 'dino_head')

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

    def add_params(self, params: List[Dict[str, Any]], module: nn.Module,
                   prefix: str = '', **kwargs: Any) -> None:
        """Append one param group per (layer id, decay / no decay, special lr)."""
        cfg = self.paramwise_cfg
        depths = list(cfg['depths'])
        num_layers = int(cfg.get('num_layers', sum(depths))) + 2
        decay_rate = float(cfg['layer_decay_rate'])
        offset_lr_scale = float(cfg.get('offset_lr_scale', 1.0))
        backbone_small_lr = bool(cfg.get('backbone_small_lr', False))
        dino_head = bool(cfg.get('dino_head', False))

        groups: Dict[str, Dict[str, Any]] = {}
        for name, param in module.named_parameters(prefix=prefix):
            if not param.requires_grad:
                continue
            no_decay = is_no_decay(name, tuple(param.shape))
            decay_name = 'no_decay' if no_decay else 'decay'
            layer_id = get_layer_id(name, num_layers - 1, depths)
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
