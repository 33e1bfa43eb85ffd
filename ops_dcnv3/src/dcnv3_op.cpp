// The operators ops_dcnv3::dcnv3 and ops_dcnv3::dcnv3_backward: schemas and
// backend kernels. The Autograd kernels are in autograd/, the Autocast ones
// in autocast/, the fake (meta) implementations in Python
// (ops_dcnv3/functions/library.py, named below by set_python_module).
#include "dcnv3.h"

#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

namespace dcnv3 {

namespace {

// Kernel of every backend key: checks once, then runs the tensors' device
// kernel. A copy is made only of a tensor that is not contiguous.
at::Tensor dcnv3_kernel(const at::Tensor& input, const at::Tensor& offset,
                        const at::Tensor& mask, int64_t kh, int64_t kw,
                        int64_t sh, int64_t sw, int64_t ph, int64_t pw,
                        int64_t dh, int64_t dw, int64_t group,
                        int64_t group_channels, double offset_scale,
                        int64_t im2col_step) {
  const Geometry g = check_args(input, offset, mask, kh, kw, sh, sw, ph, pw, dh,
                                dw, group, group_channels, offset_scale,
                                im2col_step);
  return forward(*input.expect_contiguous(), *offset.expect_contiguous(),
                 *mask.expect_contiguous(), g);
}

// grad_output in any floating dtype: cast to the input's.
std::tuple<at::Tensor, at::Tensor, at::Tensor> dcnv3_backward_kernel(
    const at::Tensor& grad_output, const at::Tensor& input,
    const at::Tensor& offset, const at::Tensor& mask, int64_t kh, int64_t kw,
    int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh, int64_t dw,
    int64_t group, int64_t group_channels, double offset_scale,
    int64_t im2col_step) {
  const Geometry g = check_args(input, offset, mask, kh, kw, sh, sw, ph, pw, dh,
                                dw, group, group_channels, offset_scale,
                                im2col_step);
  check_grad_output(grad_output, input, g, /*same_dtype=*/false);
  const at::Tensor grad = grad_output.scalar_type() == input.scalar_type()
                              ? grad_output
                              : grad_output.to(input.scalar_type());
  std::vector<at::Tensor> grads =
      backward(*input.expect_contiguous(), *offset.expect_contiguous(),
               *mask.expect_contiguous(), *grad.expect_contiguous(), g);
  return {std::move(grads[0]), std::move(grads[1]), std::move(grads[2])};
}

}  // namespace

namespace ops {

at::Tensor dcnv3(const at::Tensor& input, const at::Tensor& offset,
                 const at::Tensor& mask, int64_t kh, int64_t kw, int64_t sh,
                 int64_t sw, int64_t ph, int64_t pw, int64_t dh, int64_t dw,
                 int64_t group, int64_t group_channels, double offset_scale,
                 int64_t im2col_step) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("ops_dcnv3::dcnv3", "")
                             .typed<decltype(dcnv3_kernel)>();
  return op.call(input, offset, mask, kh, kw, sh, sw, ph, pw, dh, dw, group,
                 group_channels, offset_scale, im2col_step);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> dcnv3_backward(
    const at::Tensor& grad_output, const at::Tensor& input,
    const at::Tensor& offset, const at::Tensor& mask, int64_t kh, int64_t kw,
    int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh, int64_t dw,
    int64_t group, int64_t group_channels, double offset_scale,
    int64_t im2col_step) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("ops_dcnv3::dcnv3_backward", "")
                             .typed<decltype(dcnv3_backward_kernel)>();
  return op.call(grad_output, input, offset, mask, kh, kw, sh, sw, ph, pw, dh,
                 dw, group, group_channels, offset_scale, im2col_step);
}

}  // namespace ops

// The schemas are stable: ONNX translations and other tools are written
// against them (ops_dcnv3/functions/library.py keeps a copy that the tests
// compare with these).
TORCH_LIBRARY(ops_dcnv3, m) {
  m.set_python_module("ops_dcnv3.functions.library");
  m.def("dcnv3(Tensor input, Tensor offset, Tensor mask, int kernel_h, "
        "int kernel_w, int stride_h, int stride_w, int pad_h, int pad_w, "
        "int dilation_h, int dilation_w, int group, int group_channels, "
        "float offset_scale, int im2col_step) -> Tensor",
        {at::Tag::pt2_compliant_tag});
  m.def("dcnv3_backward(Tensor grad_output, Tensor input, Tensor offset, "
        "Tensor mask, int kernel_h, int kernel_w, int stride_h, int stride_w, "
        "int pad_h, int pad_w, int dilation_h, int dilation_w, int group, "
        "int group_channels, float offset_scale, int im2col_step) "
        "-> (Tensor, Tensor, Tensor)",
        {at::Tag::pt2_compliant_tag});
}

TORCH_LIBRARY_IMPL(ops_dcnv3, CPU, m) {
  m.impl("dcnv3", dcnv3_kernel);
  m.impl("dcnv3_backward", dcnv3_backward_kernel);
}

// Without the CUDA kernels (a CPU-only build) this kernel says so: the
// dispatcher's own "could not run" message would not.
TORCH_LIBRARY_IMPL(ops_dcnv3, CUDA, m) {
  m.impl("dcnv3", dcnv3_kernel);
  m.impl("dcnv3_backward", dcnv3_backward_kernel);
}

// Sparse tensors reach these keys; the checks refuse them with a message
// naming the argument and its layout.
TORCH_LIBRARY_IMPL(ops_dcnv3, SparseCPU, m) {
  m.impl("dcnv3", dcnv3_kernel);
  m.impl("dcnv3_backward", dcnv3_backward_kernel);
}
TORCH_LIBRARY_IMPL(ops_dcnv3, SparseCUDA, m) {
  m.impl("dcnv3", dcnv3_kernel);
  m.impl("dcnv3_backward", dcnv3_backward_kernel);
}
TORCH_LIBRARY_IMPL(ops_dcnv3, SparseCsrCPU, m) {
  m.impl("dcnv3", dcnv3_kernel);
  m.impl("dcnv3_backward", dcnv3_backward_kernel);
}
TORCH_LIBRARY_IMPL(ops_dcnv3, SparseCsrCUDA, m) {
  m.impl("dcnv3", dcnv3_kernel);
  m.impl("dcnv3_backward", dcnv3_backward_kernel);
}

}  // namespace dcnv3
