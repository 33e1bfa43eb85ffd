"""The compiled DCNv3 op as an autograd Function (reference-compatible API)."""
from typing import Optional, Tuple

import torch
from torch.autograd import Function
from torch.autograd.function import once_differentiable

from .._ext import ext
from .checks import _positive_int, autocast_inputs, check_args


class DCNv3Function(Function):
    """``DCNv3Function.apply(input, offset, mask, kernel_h, kernel_w, stride_h,
    stride_w, pad_h, pad_w, dilation_h, dilation_w, group, group_channels,
    offset_scale, im2col_step)``, the reference's 15 positional arguments.

    Tensors are channels-last (see SPEC-dcnv3.md); any batch size works for
    any ``im2col_step`` (a memory knob of the reference, unused on the CPU).
    Non-contiguous inputs are accepted. Under ``torch.autocast`` the op runs in
    the autocast dtype; half types accumulate in float32.
    """

    @classmethod
    def apply(cls, input, offset, mask, *args):  # type: ignore[override]
        input, offset, mask = autocast_inputs(input, offset, mask)
        return super().apply(input, offset, mask, *args)

    @staticmethod
    def forward(ctx, input: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor,
                kernel_h: int, kernel_w: int, stride_h: int, stride_w: int,
                pad_h: int, pad_w: int, dilation_h: int, dilation_w: int,
                group: int, group_channels: int, offset_scale: float,
                im2col_step: int) -> torch.Tensor:
        check_args(input, offset, mask, kernel_h, kernel_w, stride_h, stride_w,
                   pad_h, pad_w, dilation_h, dilation_w, group, group_channels,
                   offset_scale)
        _positive_int('im2col_step', im2col_step)
        ctx.args = (kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w,
                    dilation_h, dilation_w, group, group_channels,
                    float(offset_scale))
        ctx.im2col_step = im2col_step
        input, offset, mask = input.contiguous(), offset.contiguous(), mask.contiguous()
        ctx.save_for_backward(input, offset, mask)
        return ext().dcnv3_forward(input, offset, mask, *ctx.args, im2col_step)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output: torch.Tensor) -> Tuple[Optional[torch.Tensor], ...]:
        input, offset, mask = ctx.saved_tensors
        grad_input, grad_offset, grad_mask = ext().dcnv3_backward(
            input, offset, mask, *ctx.args,
            grad_output.contiguous().to(input.dtype), ctx.im2col_step)
        return (grad_input, grad_offset, grad_mask) + (None,) * 12
