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
    """One block: ``x + dp(dcn branch)``, then ``x + dp(mlp branch)``.

    ``dp`` is drop path. The branches, by option (first match wins):

    - layer scale, pre-norm: ``gamma1 * dcn(norm1(x))``, ``gamma2 * mlp(norm2(x))``;
    - layer scale, post-norm: ``gamma1 * norm1(dcn(x))``, ``gamma2 * norm2(mlp(x))``;
    - post-norm: ``norm1(dcn(x))``, ``norm2(mlp(x))``;
    - res-post-norm: ``res_post_norm1(dcn(norm1(x)))``,
      ``res_post_norm2(mlp(norm2(x)))``;
    - otherwise pre-norm: ``dcn(norm1(x))``, ``mlp(norm2(x))``.

    Parameters keep the reference names (``norm1.0``, ``dcn``, ``norm2.0``,
    ``mlp``, ``gamma1``, ``gamma2``, ``res_post_norm1.0``,
    ``res_post_norm2.0``). Input and output are channels-last (N, H, W, C).

    Args:
        dcn_cls: the DCNv3 module class (``ops_dcnv3.modules.DCNv3`` or
            ``DCNv3_pytorch``).
        channels: block width C.
        groups: DCNv3 groups; must divide ``channels``.
        mlp_ratio: MLP hidden width over ``channels``.
        drop: dropout inside the MLP.
        drop_path: drop-path probability of both branches.
        act_layer: 'GELU', 'ReLU' or 'SiLU'.
        norm_layer: 'LN' or 'BN'.
        post_norm: norm after each branch instead of before.
        layer_scale: initial value of ``gamma1``/``gamma2``; None for none.
        offset_scale: scale of the DCNv3 sampling offsets.
        with_cp: recompute the block in the backward pass (saves memory).
        dw_kernel_size: kernel of the DCNv3 depthwise conv (None: 3).
        res_post_norm: an extra norm on each branch before the residual sum.
        center_feature_scale: DCNv3's learnt blend with its input projection.
    """

    def __init__(self, dcn_cls: Type[nn.Module], channels: int, groups: int,
                 mlp_ratio: float = 4., drop: float = 0., drop_path: float = 0.,
                 act_layer: str = 'GELU', norm_layer: str = 'LN', post_norm: bool = False,
                 layer_scale: Optional[float] = None, offset_scale: float = 1.0,
                 with_cp: bool = False, dw_kernel_size: Optional[int] = None,
                 res_post_norm: bool = False, center_feature_scale: bool = False) -> None:
        super().__init__()
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
    """One stage: ``blocks``, optional ``post_norms`` (LNs after chosen
    blocks), the stage ``norm`` (an LN, absent with post-norm unless
    ``center_feature_scale``) and ``downsample`` (3x3 stride-2 conv to twice
    the width, then a norm).

    :meth:`forward` takes channels-last (N, H, W, C) and returns
    ``(input to the next stage, stage output)``; the stage output is taken
    after ``norm``, before ``downsample``.

    Args:
        dcn_cls: the DCNv3 module class of the blocks.
        channels: stage width.
        depth: number of blocks.
        groups: DCNv3 groups of each block.
        downsample: end with the downsampling layer (all stages but the last).
        mlp_ratio: MLP hidden width over ``channels``.
        drop: dropout inside the MLPs.
        drop_path: one drop-path rate for all blocks, or one per block.
        act_layer: 'GELU', 'ReLU' or 'SiLU'.
        norm_layer: 'LN' or 'BN' for the blocks and the downsampling.
        post_norm: the blocks' norm placement (see :class:`InternImageBlock`).
        offset_scale: scale of the DCNv3 sampling offsets.
        layer_scale: initial branch scale of the blocks; None for none.
        with_cp: activation checkpointing of each block.
        dw_kernel_size: kernel of the DCNv3 depthwise conv (None: 3).
        post_norm_block_ids: indices of the blocks followed by an extra LN
            (``post_norms.k`` after block ``post_norm_block_ids[k]``).
        res_post_norm: the blocks' extra branch norms.
        center_feature_scale: DCNv3's learnt blend with its input projection.

    Raises:
        ValueError: ``drop_path`` of the wrong length, or a
            ``post_norm_block_ids`` entry outside the stage.
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
