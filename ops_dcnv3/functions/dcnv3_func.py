"""The compiled DCNv3 op behind the reference-compatible ``DCNv3Function`` API."""
import operator

import torch

from . import library  # noqa: F401  (the operators and their fake kernels)
from .checks import _positive_int, check_args

_OP = torch.ops.ops_dcnv3.dcnv3.default


def dcnv3_op(input: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor,
             kernel_h: int, kernel_w: int, stride_h: int, stride_w: int,
             pad_h: int, pad_w: int, dilation_h: int, dilation_w: int,
             group: int, group_channels: int, offset_scale: float,
             im2col_step: int) -> torch.Tensor:
    """Calls the registered operator ``torch.ops.ops_dcnv3.dcnv3``; errors
    name the bad argument; integer-like scalars such as numpy ints are
    accepted.

    The operator's C++ kernels check the arguments' values, shapes, dtypes
    and devices. Here only what the dispatcher cannot tell apart is looked
    at: that the tensors are tensors and the scalars plain ints and a float
    (it would take a bool for an int, and turn None into an undefined
    tensor). Anything else -- numpy ints, bools, None -- goes through the
    Python checks first (:func:`~ops_dcnv3.functions.checks.check_args`), as
    does a call the dispatcher cannot parse (an int beyond 64 bits).

    Args:
        input: (N, H, W, group * group_channels), channels-last.
        offset: (N, Ho, Wo, group * kernel_h * kernel_w * 2).
        mask: (N, Ho, Wo, group * kernel_h * kernel_w).
        kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dilation_h,
            dilation_w: the sampling grid, as for a convolution.
        group: number of groups.
        group_channels: channels per group.
        offset_scale: factor applied to the offsets.
        im2col_step: the reference's batch chunk (any batch size works).

    Returns:
        (N, Ho, Wo, group * group_channels), in the inputs' dtype (the
        autocast dtype under ``torch.autocast``).
    """
    if not (isinstance(input, torch.Tensor) and isinstance(offset, torch.Tensor)
            and isinstance(mask, torch.Tensor) and type(kernel_h) is int
            and type(kernel_w) is int and type(stride_h) is int
            and type(stride_w) is int and type(pad_h) is int and type(pad_w) is int
            and type(dilation_h) is int and type(dilation_w) is int
            and type(group) is int and type(group_channels) is int
            and type(offset_scale) is float and type(im2col_step) is int):
        scalars = (kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w,
                   dilation_h, dilation_w, group, group_channels)
        # The dtypes are left to the operator: its Autocast kernel makes them
        # agree under torch.autocast.
        check_args(input, offset, mask, *scalars, offset_scale, same_dtype=False)
        _positive_int('im2col_step', im2col_step)
        (kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w,
         group, group_channels, im2col_step) = (
            operator.index(v) for v in scalars + (im2col_step,))
        offset_scale = float(offset_scale)
    try:
        return _OP(input, offset, mask, kernel_h, kernel_w, stride_h, stride_w, pad_h,
                   pad_w, dilation_h, dilation_w, group, group_channels, offset_scale,
                   im2col_step)
    except RuntimeError:
        # The dispatcher's own errors, e.g. an int beyond 64 bits ("expected
        # a value of type 'int' ... found type 'int'"): the Python checks name
        # the argument and the bound. Any other error propagates as it is.
        check_args(input, offset, mask, kernel_h, kernel_w, stride_h, stride_w, pad_h,
                   pad_w, dilation_h, dilation_w, group, group_channels, offset_scale,
                   same_dtype=False)
        _positive_int('im2col_step', im2col_step)
        raise


class DCNv3Function:
    """``DCNv3Function.apply(input, offset, mask, kernel_h, kernel_w, stride_h,
    stride_w, pad_h, pad_w, dilation_h, dilation_w, group, group_channels,
    offset_scale, im2col_step)``, the reference's 15 positional arguments.

    A thin wrapper of the registered operator ``torch.ops.ops_dcnv3.dcnv3``
    (see :mod:`ops_dcnv3.functions.library`): autograd, autocast,
    ``torch.compile``, ``torch.export`` and FLOP counters all see that
    operator. Tensors are channels-last; any batch size works for any
    ``im2col_step``; non-contiguous inputs are accepted. Under
    ``torch.autocast`` the op runs in the autocast dtype; half types
    accumulate in float32. First-order gradients only.

    Unlike the reference this is not a ``torch.autograd.Function`` subclass
    (one would hide the operator from ``torch.compile``); ``apply`` is the
    only entry point, as in the reference's callers.
    """

    apply = staticmethod(dcnv3_op)
