"""DCNv3 as a registered PyTorch operator: ``torch.ops.ops_dcnv3.dcnv3``.

The operators are registered in C++ by the compiled extension
(``ops_dcnv3/src/dcnv3_op.cpp``, loaded when :mod:`ops_dcnv3` is imported),
so that a call goes through the dispatcher and C++ kernels only, and
``torch.compile`` (no graph break), ``torch.export``, ``torch.jit.trace``
(FLOP counters), ``torch.onnx`` and ``torch.library.opcheck`` see one opaque
operator instead of a Python ``autograd.Function``.

Two operators:

- ``ops_dcnv3::dcnv3(Tensor input, Tensor offset, Tensor mask, int kernel_h,
  int kernel_w, int stride_h, int stride_w, int pad_h, int pad_w,
  int dilation_h, int dilation_w, int group, int group_channels,
  float offset_scale, int im2col_step) -> Tensor`` -- the forward pass;
- ``ops_dcnv3::dcnv3_backward(Tensor grad_output, Tensor input,
  Tensor offset, Tensor mask, <the same 12 scalars>) -> (Tensor, Tensor,
  Tensor)`` -- the gradients of input, offset and mask (``grad_output`` in
  any floating dtype, cast to the input's).

Their kernels, all in C++:

- CPU and CUDA (``src/dcnv3_op.cpp``): the argument checks, once per call,
  with the messages of :func:`~ops_dcnv3.functions.checks.check_args`; a
  copy only of a tensor that is not contiguous. A CPU-only build has a CUDA
  kernel that says it was built without CUDA. Sparse tensors get the checks'
  error naming their layout.
- Autograd (``src/autograd/``): a ``torch::autograd::Function`` whose
  backward calls ``dcnv3_backward``; the backward operator itself is not
  differentiable: a second-order gradient raises a RuntimeError that names
  it.
- AutocastCPU and AutocastCUDA (``src/autocast/``): inside
  ``torch.autocast(device_type, dtype)`` the floating inputs on that device
  are cast to its current autocast ``dtype`` (float16 and bfloat16 both) and
  the op runs, and returns, in that dtype; the half-precision kernels
  accumulate in float32. It applies to ``torch.ops.ops_dcnv3.dcnv3`` called
  directly and inside compiled graphs.

This module adds the fake (meta) implementations: they validate the
arguments with :func:`~ops_dcnv3.functions.checks.check_args` and give the
output shapes, so that tracing works even where the extension is not built.
Without the extension the operators are defined here with the same schemas,
and their CPU and CUDA kernels raise the extension's "not built" error (the
pure-PyTorch path is ``dcnv3_core_pytorch``).
"""
from typing import Any, Tuple

import torch
from torch import Tensor

from .._ext import compiled_available, ext
from .checks import _positive_int, check_args

NAMESPACE = 'ops_dcnv3'
#: Schema of the forward operator (other tools, e.g. ONNX translations, are
#: written against it: keep it stable). The compiled extension defines the
#: operators in C++ with these schemas (``src/dcnv3_op.cpp``; the tests
#: compare the two).
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


def _check(input: Tensor, offset: Tensor, mask: Tensor, args: Tuple[Any, ...],
           im2col_step: int):
    """check_args on a fake call's arguments (meta tensors allowed), plus
    im2col_step; returns the geometry."""
    geometry = check_args(input, offset, mask, *args, allow_meta=True)
    _positive_int('im2col_step', im2col_step)
    return geometry


# ------------------------------------------- definitions without the extension


def _not_built(*args: Any) -> None:
    ext()  # raises the clear "not built" error


if not compiled_available():
    _LIB = torch.library.Library(NAMESPACE, 'DEF')
    for _name, _schema in (('dcnv3', FORWARD_SCHEMA), ('dcnv3_backward', BACKWARD_SCHEMA)):
        _LIB.define(_name + _schema, tags=(torch.Tag.pt2_compliant_tag,))
        for _key in ('CPU', 'CUDA'):
            _LIB.impl(_name, _not_built, _key)


# ---------------------------------------------------------- fake (meta) kernels


@torch.library.register_fake(f'{NAMESPACE}::dcnv3')
def _dcnv3_fake(input, offset, mask, kernel_h, kernel_w, stride_h, stride_w,
                pad_h, pad_w, dilation_h, dilation_w, group, group_channels,
                offset_scale, im2col_step):
    g = _check(input, offset, mask,
               (kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w,
                dilation_h, dilation_w, group, group_channels, offset_scale),
               im2col_step)
    return input.new_empty((g.N, g.Ho, g.Wo, g.G * g.D))


@torch.library.register_fake(f'{NAMESPACE}::dcnv3_backward')
def _dcnv3_backward_fake(grad_output, input, offset, mask, kernel_h, kernel_w,
                         stride_h, stride_w, pad_h, pad_w, dilation_h,
                         dilation_w, group, group_channels, offset_scale,
                         im2col_step):
    g = _check(input, offset, mask,
               (kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w,
                dilation_h, dilation_w, group, group_channels, offset_scale),
               im2col_step)
    expected = (g.N, g.Ho, g.Wo, g.G * g.D)
    if tuple(grad_output.shape) != expected:
        raise ValueError(f'DCNv3: grad_output must have shape {expected}, got '
                         f'{tuple(grad_output.shape)}')
    return (torch.empty_like(input, memory_format=torch.contiguous_format),
            torch.empty_like(offset, memory_format=torch.contiguous_format),
            torch.empty_like(mask, memory_format=torch.contiguous_format))
