"""The compiled DCNv3 op behind the reference-compatible ``DCNv3Function`` API."""
import operator

import torch

from .checks import _positive_int, check_args
from .library import dcnv3 as _registered_dcnv3  # noqa: F401  (registers the ops)


def dcnv3_op(input: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor,
             kernel_h: int, kernel_w: int, stride_h: int, stride_w: int,
             pad_h: int, pad_w: int, dilation_h: int, dilation_w: int,
             group: int, group_channels: int, offset_scale: float,
             im2col_step: int) -> torch.Tensor:
    """Calls the registered operator ``torch.ops.ops_dcnv3.dcnv3`` after
    validating the arguments (errors name the bad argument; integer-like
    scalars such as numpy ints are accepted).

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
    scalars = (kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w,
               dilation_h, dilation_w, group, group_channels)
    # Names the bad argument; the dtypes are checked by the operator itself,
    # after its Autocast kernel has made them agree under torch.autocast.
    check_args(input, offset, mask, *scalars, offset_scale, same_dtype=False)
    _positive_int('im2col_step', im2col_step)
    ints = [operator.index(v) for v in scalars + (im2col_step,)]
    return torch.ops.ops_dcnv3.dcnv3(input, offset, mask, *ints[:10],
                                     float(offset_scale), ints[10])


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
