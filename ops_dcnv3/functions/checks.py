"""Argument checks shared by the compiled op and the pure-PyTorch path."""
from typing import NamedTuple, Tuple

import torch


class Geometry(NamedTuple):
    """Sizes of one DCNv3 call."""
    N: int
    H: int
    W: int
    Ho: int
    Wo: int
    G: int
    D: int
    P: int


def _positive_int(name: str, value, allow_zero: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            import operator
            value = operator.index(value)
        except TypeError:
            raise TypeError(f'DCNv3: {name} must be an int, got '
                            f'{type(value).__name__}') from None
    if value < 0 or (value == 0 and not allow_zero):
        bound = '>= 0' if allow_zero else '> 0'
        raise ValueError(f'DCNv3: {name} must be {bound}, got {value}')
    return value


def check_args(input: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor,
               kernel_h: int, kernel_w: int, stride_h: int, stride_w: int,
               pad_h: int, pad_w: int, dilation_h: int, dilation_w: int,
               group: int, group_channels: int, offset_scale: float,
               same_dtype: bool = True) -> Geometry:
    """Validates a DCNv3 call and returns its geometry.

    Raises ValueError (shapes, sizes), TypeError (types, dtypes) or
    RuntimeError-free: every message names the offending argument.
    """
    for name, t in (('input', input), ('offset', offset), ('mask', mask)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f'DCNv3: {name} must be a Tensor, got {type(t).__name__}')
        if t.dim() != 4:
            raise ValueError(f'DCNv3: {name} must be 4-D channels-last (N, H, W, C), '
                             f'got shape {tuple(t.shape)}')
        if not t.is_floating_point():
            raise TypeError(f'DCNv3: {name} must be a floating-point tensor, got {t.dtype}')
    kh = _positive_int('kernel_h', kernel_h)
    kw = _positive_int('kernel_w', kernel_w)
    sh = _positive_int('stride_h', stride_h)
    sw = _positive_int('stride_w', stride_w)
    ph = _positive_int('pad_h', pad_h, allow_zero=True)
    pw = _positive_int('pad_w', pad_w, allow_zero=True)
    dh = _positive_int('dilation_h', dilation_h)
    dw = _positive_int('dilation_w', dilation_w)
    G = _positive_int('group', group)
    D = _positive_int('group_channels', group_channels)
    if not isinstance(offset_scale, (int, float)) or isinstance(offset_scale, bool):
        raise TypeError(f'DCNv3: offset_scale must be a float, got {type(offset_scale).__name__}')

    N, H, W, C = input.shape
    if C != G * D:
        raise ValueError(f'DCNv3: input has {C} channels, expected group * group_channels '
                         f'= {G} * {D} = {G * D}')
    Ho = (H + 2 * ph - (dh * (kh - 1) + 1)) // sh + 1
    Wo = (W + 2 * pw - (dw * (kw - 1) + 1)) // sw + 1
    if Ho <= 0 or Wo <= 0:
        raise ValueError(f'DCNv3: input of size {H}x{W} gives an empty output ({Ho}x{Wo}) '
                         f'for kernel {kh}x{kw}, pad ({ph}, {pw}), dilation ({dh}, {dw})')
    P = kh * kw
    for name, t, c in (('offset', offset, G * P * 2), ('mask', mask, G * P)):
        expected: Tuple[int, ...] = (N, Ho, Wo, c)
        if tuple(t.shape) != expected:
            raise ValueError(f'DCNv3: {name} must have shape {expected} for input '
                             f'{tuple(input.shape)}, got {tuple(t.shape)}')
    if offset.device != input.device or mask.device != input.device:
        raise ValueError('DCNv3: input, offset and mask must be on the same device, got '
                         f'{input.device}, {offset.device}, {mask.device}')
    if same_dtype and not (offset.dtype == mask.dtype == input.dtype):
        raise TypeError('DCNv3: input, offset and mask must have the same dtype, got '
                        f'{input.dtype}, {offset.dtype}, {mask.dtype}')
    return Geometry(N, H, W, Ho, Wo, G, D, P)


def autocast_inputs(*tensors: torch.Tensor) -> Tuple[torch.Tensor, ...]:
    """Casts floating tensors to the autocast dtype when autocast is on for
    their device; the op then runs (and returns) in that dtype."""
    device_type = tensors[0].device.type
    if not torch.is_autocast_enabled(device_type):
        return tensors
    dtype = torch.get_autocast_dtype(device_type)
    return tuple(t.to(dtype) if t.is_floating_point() else t for t in tensors)
