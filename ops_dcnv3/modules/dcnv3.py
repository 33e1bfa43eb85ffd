"""The DCNv3 module (SPEC-dcnv3.md), with the reference's parameter names."""
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..functions import DCNv3Function, dcnv3_core_pytorch
from .layers import act_layer_by_name, norm_layer_with_permutes


def _compiled_core(input, offset, mask, *args):
    return DCNv3Function.apply(input, offset, mask, *args, 256)


class _DCNv3Base(nn.Module):
    """Shared body of :class:`DCNv3` and :class:`DCNv3_pytorch`.

    Input and output are channels-last (N, H, W, C).
    """
    core: Callable[..., torch.Tensor]

    def __init__(self, channels: int = 64, kernel_size: int = 3,
                 dw_kernel_size: Optional[int] = None, stride: int = 1, pad: int = 1,
                 dilation: int = 1, group: int = 4, offset_scale: float = 1.0,
                 act_layer: str = 'GELU', norm_layer: str = 'LN',
                 center_feature_scale: bool = False) -> None:
        super().__init__()
        if channels % group != 0:
            raise ValueError(f'channels must be divisible by group, got channels={channels}, '
                             f'group={group}')
        dw_kernel_size = dw_kernel_size if dw_kernel_size is not None else kernel_size
        self.channels = channels
        self.kernel_size = kernel_size
        self.dw_kernel_size = dw_kernel_size
        self.stride = stride
        self.pad = pad
        self.dilation = dilation
        self.group = group
        self.group_channels = channels // group
        self.offset_scale = offset_scale
        self.center_feature_scale = center_feature_scale
        points = kernel_size * kernel_size

        self.dw_conv = nn.Sequential(
            nn.Conv2d(channels, channels, dw_kernel_size, stride=1,
                      padding=(dw_kernel_size - 1) // 2, groups=channels),
            norm_layer_with_permutes(channels, norm_layer, 'channels_first', 'channels_last'),
            act_layer_by_name(act_layer))
        self.offset = nn.Linear(channels, group * points * 2)
        self.mask = nn.Linear(channels, group * points)
        self.input_proj = nn.Linear(channels, channels)
        self.output_proj = nn.Linear(channels, channels)
        if center_feature_scale:
            self.center_feature_scale_proj_weight = nn.Parameter(
                torch.zeros(group, channels))
            self.center_feature_scale_proj_bias = nn.Parameter(torch.zeros(group))
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        for layer in (self.offset, self.mask):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        for layer in (self.input_proj, self.output_proj):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
        if self.center_feature_scale:
            nn.init.zeros_(self.center_feature_scale_proj_weight)
            nn.init.zeros_(self.center_feature_scale_proj_bias)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if input.dim() != 4 or input.shape[-1] != self.channels:
            raise ValueError(f'{type(self).__name__} expects (N, H, W, {self.channels}) '
                             f'channels-last input, got shape {tuple(input.shape)}')
        N, H, W, _ = input.shape
        x = self.input_proj(input)
        x1 = self.dw_conv(input.permute(0, 3, 1, 2))
        offset = self.offset(x1)
        mask = self.mask(x1).reshape(N, H, W, self.group, -1)
        # The op weights x by the mask: keep them in one dtype (autocast may
        # have made them differ).
        mask = F.softmax(mask, -1).reshape(N, H, W, -1).to(x.dtype)
        y = type(self).core(
            x, offset.to(x.dtype), mask, self.kernel_size, self.kernel_size,
            self.stride, self.stride, self.pad, self.pad, self.dilation,
            self.dilation, self.group, self.group_channels, self.offset_scale)
        if self.center_feature_scale:
            scale = torch.sigmoid(F.linear(x1, self.center_feature_scale_proj_weight,
                                           self.center_feature_scale_proj_bias))
            scale = scale.repeat_interleave(self.group_channels, dim=-1).to(y.dtype)
            y = y * (1 - scale) + x * scale
        return self.output_proj(y)


class DCNv3(_DCNv3Base):
    """DCNv3 module on the compiled op (CPU or CUDA kernel)."""
    core = staticmethod(_compiled_core)


class DCNv3_pytorch(_DCNv3Base):
    """DCNv3 module on the pure-PyTorch path; same parameters as :class:`DCNv3`."""
    core = staticmethod(dcnv3_core_pytorch)
