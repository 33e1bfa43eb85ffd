"""The InternImage block (DCNv3 + MLP with residuals) and stage (a stack of
blocks, optional extra norms, and the downsampling to the next stage).

All tensors here are channels-last (N, H, W, C).
"""
from typing import List, Optional, Sequence, Tuple, Type, Union

import torch
import torch.utils.checkpoint as cp
from mmcv.cnn.bricks import DropPath
from torch import nn

from ops_dcnv3.modules import norm_layer_with_permutes

from .layers import MLP, DownsampleLayer


class InternImageBlock(nn.Module):
    """One block: ``x + dp(dcn-branch)`` then ``x + dp(mlp-branch)``.

    The branch layout (pre-norm, post-norm, layer scale, res-post-norm)
    follows SPEC-internimage.md. Parameters keep the reference names
    (``norm1.0``, ``dcn``, ``norm2.0``, ``mlp``, ``gamma1``, ``gamma2``,
    ``res_post_norm1.0``, ``res_post_norm2.0``).
    """

    def __init__(self, dcn_cls: Type[nn.Module], channels: int, groups: int,
                 mlp_ratio: float = 4., drop: float = 0., drop_path: float = 0.,
                 act_layer: str = 'GELU', norm_layer: str = 'LN', post_norm: bool = False,
                 layer_scale: Optional[float] = None, offset_scale: float = 1.0,
                 with_cp: bool = False, dw_kernel_size: Optional[int] = None,
                 res_post_norm: bool = False, center_feature_scale: bool = False) -> None:
        super().__init__()
        self.channels = channels
        self.groups = groups
        self.mlp_ratio = mlp_ratio
        self.with_cp = with_cp
        self.post_norm = post_norm
        self.res_post_norm = res_post_norm
        self.use_layer_scale = layer_scale is not None

        self.norm1 = norm_layer_with_permutes(channels, norm_layer)
        self.dcn = dcn_cls(
            channels=channels, kernel_size=3, dw_kernel_size=dw_kernel_size, stride=1,
            pad=1, dilation=1, group=groups, offset_scale=offset_scale,
            act_layer=act_layer, norm_layer=norm_layer,
            center_feature_scale=center_feature_scale)
        self.drop_path = DropPath(drop_path) if drop_path > 0. else nn.Identity()
        self.norm2 = norm_layer_with_permutes(channels, norm_layer)
        self.mlp = MLP(channels, int(channels * mlp_ratio), act_layer=act_layer, drop=drop)
        if self.use_layer_scale:
            self.gamma1 = nn.Parameter(torch.full((channels, ), float(layer_scale)))
            self.gamma2 = nn.Parameter(torch.full((channels, ), float(layer_scale)))
        if res_post_norm:
            self.res_post_norm1 = norm_layer_with_permutes(channels, norm_layer)
            self.res_post_norm2 = norm_layer_with_permutes(channels, norm_layer)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        dp = self.drop_path
        if self.use_layer_scale:
            if self.post_norm:
                x = x + dp(self.gamma1 * self.norm1(self.dcn(x)))
                return x + dp(self.gamma2 * self.norm2(self.mlp(x)))
            x = x + dp(self.gamma1 * self.dcn(self.norm1(x)))
            return x + dp(self.gamma2 * self.mlp(self.norm2(x)))
        if self.post_norm:
            x = x + dp(self.norm1(self.dcn(x)))
            return x + dp(self.norm2(self.mlp(x)))
        if self.res_post_norm:
            x = x + dp(self.res_post_norm1(self.dcn(self.norm1(x))))
            return x + dp(self.res_post_norm2(self.mlp(self.norm2(x))))
        x = x + dp(self.dcn(self.norm1(x)))
        return x + dp(self.mlp(self.norm2(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.with_cp and x.requires_grad:
            return cp.checkpoint(self._forward, x, use_reentrant=False)
        return self._forward(x)


class InternImageStage(nn.Module):
    """``blocks``, optional ``post_norms`` (after chosen blocks), ``norm`` and
    ``downsample``.

    :meth:`forward` returns ``(input to the next stage, stage output)``.
    """

    def __init__(self, dcn_cls: Type[nn.Module], channels: int, depth: int, groups: int,
                 downsample: bool = True, mlp_ratio: float = 4., drop: float = 0.,
                 drop_path: Union[float, Sequence[float]] = 0., act_layer: str = 'GELU',
                 norm_layer: str = 'LN', post_norm: bool = False,
                 offset_scale: float = 1.0, layer_scale: Optional[float] = None,
                 with_cp: bool = False, dw_kernel_size: Optional[int] = None,
                 post_norm_block_ids: Optional[Sequence[int]] = None,
                 res_post_norm: bool = False, center_feature_scale: bool = False) -> None:
        super().__init__()
        self.channels = channels
        self.depth = depth
        self.post_norm = post_norm
        self.center_feature_scale = center_feature_scale
        rates = (list(drop_path) if isinstance(drop_path, (list, tuple))
                 else [drop_path] * depth)
        if len(rates) != depth:
            raise ValueError(f'got {len(rates)} drop-path rates for {depth} blocks')
        self.blocks = nn.ModuleList([
            InternImageBlock(
                dcn_cls, channels, groups, mlp_ratio=mlp_ratio, drop=drop,
                drop_path=rates[i], act_layer=act_layer, norm_layer=norm_layer,
                post_norm=post_norm, layer_scale=layer_scale, offset_scale=offset_scale,
                with_cp=with_cp, dw_kernel_size=dw_kernel_size,
                res_post_norm=res_post_norm, center_feature_scale=center_feature_scale)
            for i in range(depth)
        ])
        self.has_norm = not post_norm or center_feature_scale
        if self.has_norm:
            self.norm = norm_layer_with_permutes(channels, 'LN')
        self.post_norm_block_ids: Optional[List[int]] = (
            None if post_norm_block_ids is None else list(post_norm_block_ids))
        if self.post_norm_block_ids is not None:
            bad = [i for i in self.post_norm_block_ids if not 0 <= i < depth]
            if bad:
                raise ValueError(f'level2_post_norm_block_ids {bad} are outside the '
                                 f'{depth} blocks of the stage')
            self.post_norms = nn.ModuleList(
                [norm_layer_with_permutes(channels, 'LN') for _ in self.post_norm_block_ids])
        self.downsample = DownsampleLayer(channels, norm_layer) if downsample else None

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        ids = self.post_norm_block_ids
        for i, block in enumerate(self.blocks):
            x = block(x)
            if ids is not None and i in ids:
                x = self.post_norms[ids.index(i)](x)
        if self.has_norm:
            x = self.norm(x)
        out = x
        if self.downsample is not None:
            x = self.downsample(x)
        return x, out
