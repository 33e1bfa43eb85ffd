"""DCNv3 as a registered PyTorch operator: ``torch.ops.ops_dcnv3.dcnv3``.

Registered with :mod:`torch.library` when :mod:`ops_dcnv3` is imported, so
that ``torch.compile`` (no graph break), ``torch.export``, ``torch.jit.trace``
(FLOP counters), ``torch.onnx`` and ``torch.library.opcheck`` see one opaque
operator instead of a Python ``autograd.Function``.

Two operators:

- ``ops_dcnv3::dcnv3(Tensor input, Tensor offset, Tensor mask, int kernel_h,
  int kernel_w, int stride_h, int stride_w, int pad_h, int pad_w,
  int dilation_h, int dilation_w, int group, int group_channels,
  float offset_scale, int im2col_step) -> Tensor`` -- the forward pass;
- ``ops_dcnv3::dcnv3_backward(Tensor grad_output, Tensor input,
  Tensor offset, Tensor mask, <the same 12 scalars>) -> (Tensor, Tensor,
  Tensor)`` -- the gradients of input, offset and mask.

Each has:

- a CPU and a CUDA kernel (the compiled extension ``ops_dcnv3._C``; a clear
  RuntimeError when it is not built -- the pure-PyTorch path is
  ``dcnv3_core_pytorch``);
- a fake (meta) implementation that validates the arguments with
  :func:`~ops_dcnv3.functions.checks.check_args` and gives the output shapes,
  so tracing works even where the extension is not built;
- an autograd formula (``register_autograd``); the backward operator itself
  is not differentiable: a second-order gradient raises a RuntimeError that
  names it.

Autocast: inside ``torch.autocast(device_type, dtype)`` the floating inputs
are cast to the autocast ``dtype`` of their device (read at call time, so
float16 and bfloat16 both work) and the op runs, and returns, in that dtype;
the half-precision kernels accumulate in float32. This is an Autocast kernel
of the operator itself (AutocastCPU and AutocastCUDA dispatch keys), not a
cast in a Python wrapper, so it also applies to ``torch.ops.ops_dcnv3.dcnv3``
called directly and inside compiled graphs.
"""
from typing import Any, Tuple

import torch
from torch import Tensor

from .._ext import ext
from .checks import _positive_int, check_args

NAMESPACE = 'ops_dcnv3'
#: Schema of the forward operator (other tools, e.g. ONNX translations, are
#: written against it: keep it stable).
FORWARD_SCHEMA = (
    '(Tensor input, Tensor offset, Tensor mask, int kernel_h, int kernel_w, '
    'int stride_h, int stride_w, int pad_h, int pad_w, int dilation_h, '
    'int dilation_w, int group, int group_channels, float offset_scale, '
    'int im2col_step) -> Tensor')
BACKWARD_SCHEMA = (
    '(Tensor grad_output, Tensor input, Tensor offset, Tensor mask, '
    'int kernel_h, int kernel_w, int stride_h, int stride_w, int pad_h, '
    'int pad_w, int dilation_h, int dilation_w, int group, int group_channels, '
    'float offset_scale, int im2col_step) -> (Tensor, Tensor, Tensor)')
#: Devices with a compiled kernel (CUDA only when the extension has it).
DEVICE_TYPES = ('cpu', 'cuda')
#: Devices whose autocast the op follows.
AUTOCAST_DEVICE_TYPES = ('cpu', 'cuda')


def _check(input: Tensor, offset: Tensor, mask: Tensor, args: Tuple[Any, ...],
           im2col_step: int, allow_meta: bool = False):
    """check_args on the op's arguments, plus im2col_step; returns the geometry.
    The fake implementations pass ``allow_meta`` (shape inference only)."""
    geometry = check_args(input, offset, mask, *args, allow_meta=allow_meta)
    _positive_int('im2col_step', im2col_step)
    return geometry


# ---------------------------------------------------------------- forward


@torch.library.custom_op(f'{NAMESPACE}::dcnv3', mutates_args=(),
                         device_types=DEVICE_TYPES, schema=FORWARD_SCHEMA)
def dcnv3(input: Tensor, offset: Tensor, mask: Tensor, kernel_h: int,
          kernel_w: int, stride_h: int, stride_w: int, pad_h: int, pad_w: int,
          dilation_h: int, dilation_w: int, group: int, group_channels: int,
          offset_scale: float, im2col_step: int) -> Tensor:
    """DCNv3 forward: samples ``input`` (N, H, W, G*D) at the offset kernel
    points and sums them weighted by ``mask``; returns (N, Ho, Wo, G*D).

    Args:
        input: channels-last input, (N, H, W, group * group_channels).
        offset: (N, Ho, Wo, group * kernel_h * kernel_w * 2), (x, y) pairs in
            pixels, scaled by ``offset_scale``.
        mask: (N, Ho, Wo, group * kernel_h * kernel_w) weights of the points.
        kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dilation_h,
            dilation_w: the sampling grid, as for a convolution.
        group: number of groups G.
        group_channels: channels per group D.
        offset_scale: factor applied to the offsets.
        im2col_step: batch chunk of the reference CUDA kernel (a memory knob;
            any batch size works with any value).
    """
    args = (kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dilation_h,
            dilation_w, group, group_channels, float(offset_scale))
    _check(input, offset, mask, args, im2col_step)
    return ext().dcnv3_forward(input.contiguous(), offset.contiguous(),
                               mask.contiguous(), *args, im2col_step)


@dcnv3.register_fake
def _dcnv3_fake(input, offset, mask, kernel_h, kernel_w, stride_h, stride_w,
                pad_h, pad_w, dilation_h, dilation_w, group, group_channels,
                offset_scale, im2col_step):
    g = _check(input, offset, mask,
               (kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w,
                dilation_h, dilation_w, group, group_channels, offset_scale),
               im2col_step, allow_meta=True)
    return input.new_empty((g.N, g.Ho, g.Wo, g.G * g.D))


# --------------------------------------------------------------- backward


@torch.library.custom_op(f'{NAMESPACE}::dcnv3_backward', mutates_args=(),
                         device_types=DEVICE_TYPES, schema=BACKWARD_SCHEMA)
def dcnv3_backward(grad_output: Tensor, input: Tensor, offset: Tensor,
                   mask: Tensor, kernel_h: int, kernel_w: int, stride_h: int,
                   stride_w: int, pad_h: int, pad_w: int, dilation_h: int,
                   dilation_w: int, group: int, group_channels: int,
                   offset_scale: float, im2col_step: int
                   ) -> Tuple[Tensor, Tensor, Tensor]:
    """Gradients of :func:`dcnv3` w.r.t. input, offset and mask.

    Args:
        grad_output: gradient of the output, (N, Ho, Wo, G*D), in any
            floating dtype (cast to the input's).
        input, offset, mask, kernel_h ... im2col_step: the forward call's
            arguments.
    """
    args = (kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dilation_h,
            dilation_w, group, group_channels, float(offset_scale))
    _check(input, offset, mask, args, im2col_step)
    grad_input, grad_offset, grad_mask = ext().dcnv3_backward(
        input.contiguous(), offset.contiguous(), mask.contiguous(), *args,
        grad_output.to(input.dtype).contiguous(), im2col_step)
    return grad_input, grad_offset, grad_mask


@dcnv3_backward.register_fake
def _dcnv3_backward_fake(grad_output, input, offset, mask, kernel_h, kernel_w,
                         stride_h, stride_w, pad_h, pad_w, dilation_h,
                         dilation_w, group, group_channels, offset_scale,
                         im2col_step):
    g = _check(input, offset, mask,
               (kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w,
                dilation_h, dilation_w, group, group_channels, offset_scale),
               im2col_step, allow_meta=True)
    expected = (g.N, g.Ho, g.Wo, g.G * g.D)
    if tuple(grad_output.shape) != expected:
        raise ValueError(f'DCNv3: grad_output must have shape {expected}, got '
                         f'{tuple(grad_output.shape)}')
    return (torch.empty_like(input, memory_format=torch.contiguous_format),
            torch.empty_like(offset, memory_format=torch.contiguous_format),
            torch.empty_like(mask, memory_format=torch.contiguous_format))


# --------------------------------------------------------------- autograd


def _setup_context(ctx, inputs, output) -> None:
    input, offset, mask = inputs[:3]
    ctx.scalars = tuple(inputs[3:])
    ctx.save_for_backward(input, offset, mask)


def _backward(ctx, grad_output: Tensor):
    input, offset, mask = ctx.saved_tensors
    grads = torch.ops.ops_dcnv3.dcnv3_backward(grad_output, input, offset, mask,
                                               *ctx.scalars)
    return tuple(grads) + (None,) * len(ctx.scalars)


dcnv3.register_autograd(_backward, setup_context=_setup_context)


def _no_double_backward_setup(ctx, inputs, output) -> None:
    pass


def _no_double_backward(ctx, *grads):
    raise RuntimeError(
        'DCNv3: double backward (a gradient of the gradient) is not supported '
        'by the compiled op ops_dcnv3::dcnv3 (its backward, '
        'ops_dcnv3::dcnv3_backward, is not differentiable); use the '
        "pure-PyTorch path (core_op='DCNv3_pytorch', dcnv3_core_pytorch) for "
        'higher-order gradients')


dcnv3_backward.register_autograd(_no_double_backward,
                                 setup_context=_no_double_backward_setup)


# --------------------------------------------------------------- autocast


def _register_autocast(op_name: str, device_type: str) -> None:
    """Autocast kernel: cast floating inputs to the device's current autocast
    dtype, then run the op with autocast off for that device."""
    op = getattr(getattr(torch.ops, NAMESPACE), op_name).default
    key_name = 'Autocast' + torch._C._dispatch_key_for_device(device_type)
    key = getattr(torch._C.DispatchKey, key_name)

    def cast_and_call(*args):
        dtype = torch.get_autocast_dtype(device_type)
        args = tuple(a.to(dtype) if isinstance(a, Tensor) and a.is_floating_point()
                     and a.device.type == device_type else a for a in args)
        with torch._C._ExcludeDispatchKeyGuard(torch._C.DispatchKeySet(key)):
            return op(*args)

    def kernel(_keyset, *args, **kwargs):
        if kwargs:  # the dispatcher passes every argument positionally
            raise TypeError(f'{op}: unexpected keyword arguments {list(kwargs)}')
        return cast_and_call(*args)

    _LIB.impl(op_name, kernel, key_name, with_keyset=True)
    # The Python dispatcher (active while torch.compile/export trace) looks
    # up py_kernels first.
    if op.has_kernel_for_dispatch_key(key) and key in op.py_kernels:
        op.py_kernels.pop(key)
    op.py_impl(key)(cast_and_call)


_LIB = torch.library.Library(NAMESPACE, 'FRAGMENT')
for _device_type in AUTOCAST_DEVICE_TYPES:
    if torch._C._is_autocast_available(_device_type):
        _register_autocast('dcnv3', _device_type)
