"""The InternImage backbone (SPEC-internimage.md) as an mmengine ``BaseModule``,
registered as ``InternImage`` for mmdet and mmseg.

Module names equal the reference's, so its checkpoints load with
``strict=True`` (``patch_embed``, ``levels.i.blocks.j``, ``levels.i.norm``,
``levels.i.post_norms.k``, ``levels.i.downsample``).
"""
import warnings
from typing import List, Optional, Sequence, Tuple, Union

import torch
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmengine.model.weight_init import initialize
from torch import nn

from .blocks import InternImageStage
from .checkpoint import load_pretrained
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


class InternImage(BaseModule):
    """InternImage backbone: a stride-4 stem and four stages of DCNv3 blocks.

    Takes (N, 3, H, W) and returns a tuple of NCHW feature maps, one per entry
    of ``out_indices`` (stage i: ``channels * 2**i`` channels, stride
    ``4 * 2**i``), each after the stage's final norm and before its
    downsampling.

    Args are those of the reference model (see SPEC-internimage.md), plus
    ``frozen_stages`` (-1: none; k >= 0: ``patch_embed`` and stages 0..k-1
    frozen) and ``init_cfg`` (``dict(type='Pretrained', checkpoint=...)`` loads
    a reference checkpoint, see :mod:`.checkpoint`). The reference-only
    ``use_dcn_v4_op``, ``remove_center`` (must be False), ``use_clip_projector``
    (no effect: the classifier head is not part of the backbone) and
    ``pretrained`` (a path, turned into a Pretrained ``init_cfg``) are accepted.
    """

    def __init__(self,
                 core_op: str = 'DCNv3',
                 channels: int = 64,
                 depths: Sequence[int] = (3, 4, 18, 5),
                 groups: Sequence[int] = (3, 6, 12, 24),
                 mlp_ratio: float = 4.,
                 drop_rate: float = 0.,
                 drop_path_rate: float = 0.2,
                 drop_path_type: str = 'linear',
                 act_layer: str = 'GELU',
                 norm_layer: str = 'LN',
                 layer_scale: Optional[float] = None,
                 offset_scale: float = 1.0,
                 post_norm: bool = False,
                 with_cp: bool = False,
                 dw_kernel_size: Optional[int] = None,
                 level2_post_norm: bool = False,
                 level2_post_norm_block_ids: Optional[Sequence[int]] = None,
                 res_post_norm: bool = False,
                 center_feature_scale: bool = False,
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 frozen_stages: int = -1,
                 init_cfg: InitCfg = None,
                 use_dcn_v4_op: bool = False,
                 use_clip_projector: bool = False,
                 remove_center: bool = False,
                 pretrained: Optional[str] = None) -> None:
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

        depths, groups = list(depths), list(groups)
        if len(depths) != len(groups):
            raise ValueError(f'depths {depths} and groups {groups} differ in length')
        self.num_levels = len(depths)
        out_indices = tuple(out_indices)
        if not out_indices or any(not 0 <= i < self.num_levels for i in out_indices):
            raise ValueError(f'out_indices must be stage indices in [0, {self.num_levels}), '
                             f'got {out_indices}')
        if not -1 <= frozen_stages <= self.num_levels:
            raise ValueError(f'frozen_stages must be in [-1, {self.num_levels}], '
                             f'got {frozen_stages}')

        self.core_op = core_op
        self.dcn_cls = get_dcn_class(core_op)
        self.channels = channels
        self.depths = depths
        self.groups = groups
        self.num_features = int(channels * 2**(self.num_levels - 1))
        self.mlp_ratio = mlp_ratio
        self.post_norm = post_norm
        self.layer_scale = layer_scale
        self.offset_scale = offset_scale
        self.with_cp = with_cp
        self.level2_post_norm_block_ids = level2_post_norm_block_ids
        self.out_indices = out_indices
        self.frozen_stages = frozen_stages

        self.patch_embed = StemLayer(in_chans=3, out_chans=channels, act_layer=act_layer,
                                     norm_layer=norm_layer)
        self.pos_drop = nn.Dropout(p=drop_rate)
        rates = drop_path_rates(drop_path_rate, sum(depths), drop_path_type)
        self.levels = nn.ModuleList()
        for i in range(self.num_levels):
            first = sum(depths[:i])
            ids = level2_post_norm_block_ids if (level2_post_norm and i == 2) else None
            self.levels.append(InternImageStage(
                self.dcn_cls, channels=int(channels * 2**i), depth=depths[i],
                groups=groups[i], downsample=i < self.num_levels - 1, mlp_ratio=mlp_ratio,
                drop=drop_rate, drop_path=rates[first:first + depths[i]],
                act_layer=act_layer, norm_layer=norm_layer, post_norm=post_norm,
                offset_scale=offset_scale, layer_scale=layer_scale, with_cp=with_cp,
                dw_kernel_size=dw_kernel_size, post_norm_block_ids=ids,
                res_post_norm=res_post_norm, center_feature_scale=center_feature_scale))

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
