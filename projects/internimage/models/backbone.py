"""The InternImage backbone as an mmengine ``BaseModule``, registered as
``InternImage`` in mmengine's root ``MODELS`` registry, which the mmdet and
mmseg registries search too (structure: docs/model_zoo.md).

Module names equal the reference's, so its checkpoints load with
``strict=True`` (``patch_embed``, ``levels.i.blocks.j``, ``levels.i.norm``,
``levels.i.post_norms.k``, ``levels.i.downsample``).
"""
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmengine.model.weight_init import initialize
from mmengine.registry import MODELS
from torch import nn

from ..checkpoint.pretrained import load_pretrained
from .arch_settings import (ARCH_KEYS, ARCH_SETTINGS, STAGE_KEYS, check_arch_settings,
                            resolve_arch)
from .blocks import InternImageStage
from .layers import StemLayer, get_dcn_class

InitCfg = Union[dict, List[dict], None]


def _check_reference_only_args(use_dcn_v4_op: bool, use_clip_projector: bool,
                               remove_center: bool) -> None:
    """Refuse reference-only options that would change the model."""
    if use_dcn_v4_op:
        raise ValueError('use_dcn_v4_op=True is not supported: this port implements '
                         'DCNv3 only (core_op DCNv3 / DCNv3_pytorch)')
    if remove_center:
        raise ValueError('remove_center=True is not supported: it belongs to DCNv4 and '
                         'changes the DCN parameters')
    if use_clip_projector:
        # Only the classifier uses it (clip_projector.* keys); features are unchanged.
        print_log('InternImage: use_clip_projector=True only concerns the classification '
                  'head, which this backbone does not have; ignored', logger='current')


def drop_path_rates(drop_path_rate: float, num_blocks: int,
                    drop_path_type: str = 'linear') -> List[float]:
    """Per-block drop-path rates: linear from 0 to ``drop_path_rate``, or uniform."""
    if drop_path_type == 'linear':
        rates = torch.linspace(0, drop_path_rate, num_blocks, device='cpu')
        return [r.item() for r in rates]
    if drop_path_type == 'uniform':
        return [float(drop_path_rate)] * num_blocks
    raise ValueError(f"drop_path_type must be 'linear' or 'uniform', got {drop_path_type!r}")


class _FromArch:
    """The default of the architecture arguments: "take it from ``arch``"."""

    def __repr__(self) -> str:
        return 'FROM_ARCH'


#: Marks an architecture argument the caller did not give.
FROM_ARCH: Any = _FromArch()


@MODELS.register_module()
class InternImage(BaseModule):
    """InternImage backbone: a stride-4 stem and four stages of DCNv3 blocks.

    Takes (N, 3, H, W) and returns a tuple of NCHW feature maps, one per entry
    of ``out_indices`` (stage i: ``channels * 2**i`` channels, stride
    ``4 * 2**i``), each after the stage's final norm and before its
    downsampling.

    A variant is chosen by name, ``InternImage(arch='l')``, from the table
    :attr:`arch_settings`; explicit arguments override the table entry
    (``InternImage(arch='xl', drop_path_rate=0.6)``). Without ``arch``,
    ``channels``, ``depths`` and ``groups`` must be given and the other
    architecture arguments default to :data:`~.arch_settings.DEFAULT_ARCH`, so
    the reference's long form ``InternImage(channels=..., depths=...,
    groups=..., ...)`` works unchanged (the reference's own defaults, 64
    channels with groups 3-6-12-24, build no model).
    The resolved arguments are kept in :attr:`settings`; of them, only
    ``channels``, ``depths``, ``num_levels`` and ``num_features`` (the last
    stage's width) are attributes too, because the reference model has them.

    Args:
        arch: variant name ('t', 's', 'b', 'l', 'xl', 'h', 'g', any case), a
            dict of architecture arguments (at least ``channels``, ``depths``,
            ``groups``), or None for the long form (see above).
        core_op: 'DCNv3' (the compiled op) or 'DCNv3_pytorch' (pure PyTorch);
            same parameters, same results.
        channels: width of stage 0; stage i has ``channels * 2**i``. From arch.
        depths: number of blocks of each stage. From arch.
        groups: DCNv3 groups of each stage; each must divide its stage's
            width. From arch.
        mlp_ratio: MLP hidden width over block width. From arch.
        drop_rate: dropout after the stem and inside the MLPs.
        drop_path_rate: stochastic depth of the last block. From arch.
        drop_path_type: 'linear' (0 to ``drop_path_rate`` over all blocks)
            or 'uniform' (``drop_path_rate`` everywhere).
        act_layer: 'GELU', 'ReLU' or 'SiLU'.
        norm_layer: 'LN' or 'BN' for the stem, downsampling, blocks and the
            DCNv3 depthwise branch (stage and post norms are always LN).
            From arch.
        layer_scale: initial value of the per-channel branch scales
            ``gamma1``/``gamma2``, or None for none. From arch.
        offset_scale: scale of the DCNv3 sampling offsets. From arch.
        post_norm: norm after (not before) each branch. From arch.
        with_cp: recompute each block in the backward pass (activation
            checkpointing) to save memory. From arch.
        dw_kernel_size: kernel of the DCNv3 depthwise conv (None: 3). From arch.
        level2_post_norm: extra LNs inside stage 2 (the H and G variants).
            From arch.
        level2_post_norm_block_ids: the stage-2 blocks followed by one of
            those LNs. From arch.
        res_post_norm: LN on each branch before the residual sum (H).
            From arch.
        center_feature_scale: DCNv3's learnt blend of the output with its
            input projection (H and G). From arch.
        out_indices: the stages whose outputs are returned.
        frozen_stages: -1 for none; k >= 0 freezes ``patch_embed`` and
            stages 0..k-1 (eval mode, no gradients).
        init_cfg: mmengine init config; ``dict(type='Pretrained',
            checkpoint=...)`` loads a reference checkpoint
            (see :mod:`.checkpoint`).
        use_dcn_v4_op: reference-only; must be False.
        use_clip_projector: reference-only; no effect (the classifier head
            is not part of the backbone).
        remove_center: reference-only; must be False.
        pretrained: deprecated checkpoint path, turned into a Pretrained
            ``init_cfg``.

    Raises:
        ValueError: bad arguments, naming the argument and its value (see
            :func:`check_arch_settings`).
    """

    #: The published variants, by name: the table of :mod:`.arch_settings`.
    arch_settings: Dict[str, Dict[str, Any]] = ARCH_SETTINGS

    def __init__(self,
                 arch: Union[str, Dict[str, Any], None] = None,
                 core_op: str = 'DCNv3',
                 channels: int = FROM_ARCH,
                 depths: Sequence[int] = FROM_ARCH,
                 groups: Sequence[int] = FROM_ARCH,
                 mlp_ratio: float = FROM_ARCH,
                 drop_rate: float = 0.,
                 drop_path_rate: float = FROM_ARCH,
                 drop_path_type: str = 'linear',
                 act_layer: str = 'GELU',
                 norm_layer: str = FROM_ARCH,
                 layer_scale: Optional[float] = FROM_ARCH,
                 offset_scale: float = FROM_ARCH,
                 post_norm: bool = FROM_ARCH,
                 with_cp: bool = FROM_ARCH,
                 dw_kernel_size: Optional[int] = FROM_ARCH,
                 level2_post_norm: bool = FROM_ARCH,
                 level2_post_norm_block_ids: Optional[Sequence[int]] = FROM_ARCH,
                 res_post_norm: bool = FROM_ARCH,
                 center_feature_scale: bool = FROM_ARCH,
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 frozen_stages: int = -1,
                 init_cfg: InitCfg = None,
                 use_dcn_v4_op: bool = False,
                 use_clip_projector: bool = False,
                 remove_center: bool = False,
                 pretrained: Optional[str] = None) -> None:
        arguments = dict(locals())  # before anything else is defined
        _check_reference_only_args(use_dcn_v4_op, use_clip_projector, remove_center)
        if pretrained is not None:
            if not isinstance(pretrained, str):
                raise ValueError(f'pretrained must be a checkpoint path or None, got '
                                 f'{type(pretrained).__name__}')
            if init_cfg is not None:
                raise ValueError('pretrained and init_cfg cannot both be set; use '
                                 "init_cfg=dict(type='Pretrained', checkpoint=...)")
            warnings.warn('InternImage: `pretrained` is deprecated, use '
                          "init_cfg=dict(type='Pretrained', checkpoint=...)")
            init_cfg = dict(type='Pretrained', checkpoint=pretrained)
        super().__init__(init_cfg=init_cfg)

        # the architecture arguments the caller gave (the others come from arch)
        given = {k: v for k, v in arguments.items() if k in ARCH_KEYS and v is not FROM_ARCH}
        arch_cfg = resolve_arch(arch, given)
        check_arch_settings(arch_cfg)
        for key in ('depths', 'groups', 'level2_post_norm_block_ids'):
            if arch_cfg[key] is not None:
                arch_cfg[key] = list(arch_cfg[key])
        depths = arch_cfg['depths']
        num_levels = len(depths)
        out_indices = tuple(out_indices)
        if not out_indices or any(not 0 <= i < num_levels for i in out_indices):
            raise ValueError(f'out_indices must be stage indices in [0, {num_levels}), '
                             f'got {out_indices}')
        if not -1 <= frozen_stages <= num_levels:
            raise ValueError(f'frozen_stages must be in [-1, {num_levels}], '
                             f'got {frozen_stages}')

        #: The name of the variant (lower case), or None.
        self.arch = arch.lower() if isinstance(arch, str) else None
        #: Every constructor argument that shapes the model, as resolved.
        self.settings: Dict[str, Any] = dict(
            core_op=core_op, **arch_cfg, drop_rate=drop_rate,
            drop_path_type=drop_path_type, act_layer=act_layer,
            out_indices=list(out_indices), frozen_stages=frozen_stages)
        self.out_indices = out_indices
        self.frozen_stages = frozen_stages
        self.dcn_cls = get_dcn_class(core_op)
        # The reference model's attributes (its classification head and
        # detection code read them); the other arguments are in `settings`.
        self.channels: int = arch_cfg['channels']
        self.depths: List[int] = depths
        self.num_levels = num_levels
        self.num_features = int(self.channels * 2**(num_levels - 1))

        self.patch_embed = StemLayer(in_chans=3, out_chans=self.channels, act_layer=act_layer,
                                     norm_layer=arch_cfg['norm_layer'])
        self.pos_drop = nn.Dropout(p=drop_rate)
        rates = drop_path_rates(arch_cfg['drop_path_rate'], sum(depths), drop_path_type)
        # the arguments every stage takes as they are; the others are split per stage
        shared = {k: arch_cfg[k] for k in STAGE_KEYS}
        self.levels = nn.ModuleList()
        for i, depth in enumerate(depths):
            first = sum(depths[:i])
            ids = (arch_cfg['level2_post_norm_block_ids']
                   if arch_cfg['level2_post_norm'] and i == 2 else None)
            self.levels.append(InternImageStage(
                self.dcn_cls, channels=self.channels * 2**i, depth=depth,
                groups=arch_cfg['groups'][i], downsample=i < num_levels - 1, drop=drop_rate,
                drop_path=rates[first:first + depth], act_layer=act_layer,
                post_norm_block_ids=ids, **shared))

        self.init_from_scratch()
        self._freeze_stages()

    # -- initialisation -------------------------------------------------
    def init_from_scratch(self) -> None:
        """Linear: trunc-normal(0.02) weight, zero bias; LayerNorm: 1 / 0; then
        each DCNv3 module's own ``_reset_parameters`` (in that order)."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for m in self.modules():
            if isinstance(m, self.dcn_cls):
                m._reset_parameters()

    def init_weights(self) -> None:
        """Initialise from scratch, apply any non-Pretrained ``init_cfg``, then
        load the Pretrained checkpoint if one is configured."""
        cfgs = self.init_cfg if isinstance(self.init_cfg, list) else (
            [self.init_cfg] if self.init_cfg else [])
        pretrained = [c for c in cfgs if c.get('type') == 'Pretrained']
        others = [c for c in cfgs if c.get('type') != 'Pretrained']
        if len(pretrained) > 1:
            raise ValueError('InternImage: init_cfg has more than one Pretrained entry')
        self.init_from_scratch()
        if others:
            initialize(self, others)
        if pretrained:
            cfg = pretrained[0]
            if 'checkpoint' not in cfg:
                raise ValueError("InternImage: a Pretrained init_cfg needs 'checkpoint'")
            load_pretrained(self, cfg['checkpoint'],
                            map_location=cfg.get('map_location', 'cpu'),
                            prefix=cfg.get('prefix'), strict=cfg.get('strict', True))
        self._is_init = True

    # -- freezing -------------------------------------------------------
    def _freeze_stages(self) -> None:
        if self.frozen_stages < 0:
            return
        frozen = [self.patch_embed] + [self.levels[i] for i in range(self.frozen_stages)]
        for module in frozen:
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True) -> 'InternImage':
        """Set the mode; frozen stages stay in eval mode."""
        super().train(mode)
        self._freeze_stages()
        return self

    # -- forward --------------------------------------------------------
    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """(N, 3, H, W) -> tuple of NCHW features, one per ``out_indices``."""
        x = self.pos_drop(self.patch_embed(x))
        outs = []
        last = max(self.out_indices)
        for i, level in enumerate(self.levels):
            x, out = level(x)
            if i in self.out_indices:
                outs.append(out.permute(0, 3, 1, 2).contiguous())
            if i == last:
                break
        return tuple(outs)

    # -- layer-wise lr decay ---------------------------------------------
    @property
    def num_layers(self) -> int:
        """The number of blocks, ``sum(depths)``."""
        return sum(self.depths)

    def get_layer_depth(self, param_name: str, prefix: str = 'backbone.') -> Tuple[int, int]:
        """The layer id of a parameter, for layer-wise lr decay.

        Ids run from 0 (the stem) to ``num_layers + 1`` (everything outside
        the backbone); block j of stage s has ``1 + sum(depths[:s]) + j``.
        Kept from the reference's rules:

        - a stage's ``norm`` and ``downsample`` take the id of the first block
          of the next stage, ``1 + sum(depths[:s + 1])``; the last stage's
          ``norm`` takes the id of the previous stage's norm,
          ``1 + sum(depths[:-1])``;
        - ``post_norms.k`` of a stage takes the id of the stage's block k.

        Head parameters the reference puts in layer 0 (DINO's and
        Mask2Former's level embeddings, ...) are the optimizer
        constructor's business (``LAYER0_HEAD_PREFIXES``).

        Args:
            param_name: the parameter's name in the whole model.
            prefix: the backbone's prefix in the model's parameter names.

        Returns:
            ``(layer_id, num_layer_ids)`` with ``num_layer_ids = num_layers + 2``.
        """
        depths = self.depths
        total = self.num_layers + 2
        if not param_name.startswith(prefix):
            return total - 1, total
        parts = param_name[len(prefix):].split('.')
        if parts[0] == 'patch_embed':
            return 0, total
        if parts[0] == 'levels' and len(parts) > 3:
            stage, part = int(parts[1]), parts[2]
            if part in ('downsample', 'norm'):
                return 1 + sum(depths[:min(stage + 1, len(depths) - 1)]), total
            return int(parts[3]) + 1 + sum(depths[:stage]), total
        return total - 1, total
