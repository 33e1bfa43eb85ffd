"""The DCNv3 module, with the reference's parameter names (checkpoint keys)."""
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..functions import DCNv3Function, dcnv3_core_pytorch
from ..functions.checks import _positive_int, check_offset_scale
from .layers import act_layer_by_name, norm_layer_with_permutes

#: im2col_step the modules pass to the compiled op (the reference's value; a
#: memory knob only, any batch size works).
IM2COL_STEP = 256


def _compiled_core(input, offset, mask, *args):
    return DCNv3Function.apply(input, offset, mask, *args, IM2COL_STEP)


class _DCNv3Base(nn.Module):
    """Shared body of :class:`DCNv3` and :class:`DCNv3_pytorch` (arguments:
    see :class:`DCNv3`)."""
    core: Callable[..., torch.Tensor]

    def __init__(self, channels: int = 64, kernel_size: int = 3,
                 dw_kernel_size: Optional[int] = None, stride: int = 1, pad: int = 1,
                 dilation: int = 1, group: int = 4, offset_scale: float = 1.0,
                 act_layer: str = 'GELU', norm_layer: str = 'LN',
                 center_feature_scale: bool = False) -> None:
        super().__init__()
        channels = _positive_int('channels', channels)
        group = _positive_int('group', group)
        kernel_size = _positive_int('kernel_size', kernel_size)
        stride = _positive_int('stride', stride)
        pad = _positive_int('pad', pad, allow_zero=True)
        dilation = _positive_int('dilation', dilation)
        if channels % group != 0:
            raise ValueError(f'channels must be divisible by group, got channels={channels}, '
                             f'group={group}')
        dw_kernel_size = _positive_int('dw_kernel_size', dw_kernel_size
                                       if dw_kernel_size is not None else kernel_size)
        if dw_kernel_size % 2 == 0:
            raise ValueError(f'DCNv3: dw_kernel_size must be odd (it keeps the image size), '
                             f'got {dw_kernel_size}' + ('' if dw_kernel_size != kernel_size
                                                        else ' (from kernel_size)'))
        if stride != 1:
            raise ValueError(f'DCNv3: stride must be 1 (offsets and masks are computed per '
                             f'input pixel, so the output keeps the input size), got {stride}')
        if 2 * pad != dilation * (kernel_size - 1):
            raise ValueError(
                'DCNv3: the output must keep the input size: 2 * pad must equal '
                f'dilation * (kernel_size - 1), got pad={pad}, dilation={dilation}, '
                f'kernel_size={kernel_size}')
        check_offset_scale(offset_scale)
        if not isinstance(center_feature_scale, bool):
            raise TypeError('DCNv3: center_feature_scale must be a bool, got '
                            f'{type(center_feature_scale).__name__}')
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
        if input.dim() != 4 or input.shape[-1] != self.channels or 0 in input.shape[1:3]:
            raise ValueError(f'{type(self).__name__} expects (N, H, W, {self.channels}) '
                             'channels-last input with H, W > 0, got shape '
                             f'{tuple(input.shape)}')
        N, H, W, _ = input.shape
        x = self.input_proj(input)
        x1 = self.dw_conv(input.permute(0, 3, 1, 2))
        offset = self.offset(x1)
        points = self.kernel_size * self.kernel_size
        mask = self.mask(x1).reshape(N, H, W, self.group, points)
        # The op weights x by the mask: keep them in one dtype (autocast may
        # have made them differ).
        mask = F.softmax(mask, -1).reshape(N, H, W, self.group * points).to(x.dtype)
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
    """DCNv3 module on the compiled op (CPU or CUDA kernel).

    Input and output are channels-last (N, H, W, C); N may be 0. The module
    computes one offset and mask per input pixel, so the op's output must
    have the input's size: ``stride == 1`` and
    ``2 * pad == dilation * (kernel_size - 1)`` (e.g. kernel 3, pad 1,
    dilation 1), with an odd ``dw_kernel_size``. Other values raise a
    ValueError naming them when the module is built.

    Args:
        channels: input and output channels C (> 0, divisible by ``group``).
        kernel_size: the deformable kernel's size k (P = k * k points).
        dw_kernel_size: the depthwise convolution's kernel (odd; default
            ``kernel_size``).
        stride: must be 1 (see above).
        pad: the op's padding; ``2 * pad == dilation * (kernel_size - 1)``.
        dilation: the kernel grid's dilation.
        group: the groups G; each has its own offsets and masks.
        offset_scale: finite float scaling the kernel grid and the offsets.
        act_layer: activation after the depthwise convolution ('GELU',
            'ReLU' or 'SiLU').
        norm_layer: norm after the depthwise convolution ('LN' or 'BN').
        center_feature_scale: blend the op's output with the projected input
            by a learned per-group scale.
    """
    core = staticmethod(_compiled_core)


class DCNv3_pytorch(_DCNv3Base):
    """DCNv3 module on the pure-PyTorch path; the same parameters, checks and
    results as :class:`DCNv3`.

    Args:
        channels, kernel_size, dw_kernel_size, stride, pad, dilation, group,
            offset_scale, act_layer, norm_layer, center_feature_scale: as for
            :class:`DCNv3`.
    """
    core = staticmethod(dcnv3_core_pytorch)
