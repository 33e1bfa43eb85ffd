"""Argument checks of the pure-PyTorch path and the operator's fake kernels.

The pure-PyTorch path and the fake (meta) kernels of
``torch.ops.ops_dcnv3.dcnv3`` call :func:`check_args` before touching the
data; the operator's C++ kernels run the same checks with the same messages
(``ops_dcnv3/src/dcnv3_checks.cpp``), and ``DCNv3Function.apply`` uses these
for what only Python sees (argument types). So bad input gets the same
error, naming the argument, from every path (``tests/ops_dcnv3/test_errors.py``).
"""
import math
import numbers
import operator
from typing import Any, NamedTuple, Tuple

import torch

#: Upper bound (exclusive) of every integer argument: the kernels take them
#: as 32-bit values and compute the geometry from them in 64 bits.
INT_LIMIT = 2 ** 31
#: The largest float32 (``torch.finfo(torch.float32).max``): the bound of
#: ``offset_scale``, which the float32 and float16 kernels hold as a float.
FLOAT32_MAX = 3.4028234663852886e+38

TENSOR_NAMES = ('input', 'offset', 'mask')


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


def _positive_int(name: str, value: Any, allow_zero: bool = False) -> int:
    """``value`` as an int in ``[1, 2**31)`` (``[0, 2**31)`` with
    ``allow_zero``); TypeError for bools and non-integers, ValueError out of
    range."""
    if isinstance(value, bool):
        raise TypeError(f'DCNv3: {name} must be an int, got bool ({value})')
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f'DCNv3: {name} must be an int, got '
                        f'{type(value).__name__}') from None
    if value < 0 or (value == 0 and not allow_zero):
        bound = '>= 0' if allow_zero else '> 0'
        raise ValueError(f'DCNv3: {name} must be {bound}, got {value}')
    if value >= INT_LIMIT:
        raise ValueError(f'DCNv3: {name} must be < 2**31, got {value}')
    return value


def check_offset_scale(offset_scale: Any) -> float:
    """``offset_scale`` as a finite float; TypeError for bools and
    non-numbers, ValueError for NaN, infinities and magnitudes beyond
    float32's range."""
    if isinstance(offset_scale, bool) or not isinstance(offset_scale, numbers.Real):
        raise TypeError('DCNv3: offset_scale must be a float, got '
                        f'{type(offset_scale).__name__}')
    value = float(offset_scale)
    if not math.isfinite(value):
        raise ValueError(f'DCNv3: offset_scale must be finite, got {value}')
    if abs(value) > FLOAT32_MAX:  # infinite in the float32/16 kernels
        raise ValueError("DCNv3: offset_scale must be within float32's range "
                         f'(|offset_scale| <= {FLOAT32_MAX!r})')
    return value


def check_tensor(name: str, t: Any, allow_meta: bool = False) -> torch.Tensor:
    """``t`` if it is a dense tensor with data; a TypeError naming ``name``
    for anything else (None, numpy arrays, sparse tensors), a ValueError for
    a tensor on the meta device unless ``allow_meta`` (shape-only tracing:
    the operator's fake implementation)."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f'DCNv3: {name} must be a torch.Tensor, got {type(t).__name__}')
    if t.layout != torch.strided:
        raise TypeError(f'DCNv3: {name} must be a dense (strided) tensor, got layout '
                        f'{t.layout}')
    if t.device.type == 'meta' and not allow_meta:
        raise ValueError(f'DCNv3: {name} is on the meta device (no data); the op needs '
                         'tensors on the CPU or a GPU')
    return t


def check_args(input: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor,
               kernel_h: int, kernel_w: int, stride_h: int, stride_w: int,
               pad_h: int, pad_w: int, dilation_h: int, dilation_w: int,
               group: int, group_channels: int, offset_scale: float,
               same_dtype: bool = True, allow_meta: bool = False) -> Geometry:
    """Validates a DCNv3 call and returns its geometry.

    Args:
        input, offset, mask: the op's tensors, channels-last (see
            :func:`~ops_dcnv3.functions.dcnv3_core_pytorch`).
        kernel_h, kernel_w, stride_h, stride_w, dilation_h, dilation_w,
            group, group_channels: ints in ``[1, 2**31)``.
        pad_h, pad_w: ints in ``[0, 2**31)``.
        offset_scale: a finite float within float32's range.
        same_dtype: also require one dtype for the three tensors.
        allow_meta: accept meta tensors (shape inference only), when all
            three are.

    Returns:
        The call's :class:`Geometry`.

    Raises:
        TypeError: a wrong type (not a tensor, sparse, integer dtype, a bool
            or float where an int belongs, mixed dtypes).
        ValueError: a wrong value or shape (out of range, NaN or infinite
            offset_scale, meta device, mixed devices, empty image, empty
            output, shapes that do not match). Every message names the
            argument.
    """
    tensors = (input, offset, mask)
    if allow_meta and any(isinstance(t, torch.Tensor) and t.device.type != 'meta'
                          for t in tensors):
        allow_meta = False  # meta mixed with data: the meta one is the error
    for name, t in zip(TENSOR_NAMES, tensors):
        check_tensor(name, t, allow_meta)
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
    check_offset_scale(offset_scale)

    N, H, W, C = input.shape
    if H == 0 or W == 0:
        # As torch's convolutions: only the batch may be empty.
        raise ValueError(f'DCNv3: input has an empty image ({H}x{W}, shape '
                         f'{tuple(input.shape)}); only the batch size N may be 0')
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
    their device; the op then runs (and returns) in that dtype.

    The arguments are checked first (:func:`check_tensor`, named ``input``,
    ``offset``, ``mask`` by position), so that None, numpy arrays, sparse and
    meta tensors get the op's error rather than one from torch.
    """
    for name, t in zip(TENSOR_NAMES, tensors):
        check_tensor(name, t)
    device_type = tensors[0].device.type
    if not torch.is_autocast_enabled(device_type):
        return tensors
    dtype = torch.get_autocast_dtype(device_type)
    return tuple(t.to(dtype) if t.is_floating_point() else t for t in tensors)
