// Autograd kernels of ops_dcnv3::dcnv3 and ops_dcnv3::dcnv3_backward
// (torch::autograd::Function). First-order gradients only: the backward
// operator is not differentiable and says so when asked.
#include "../dcnv3.h"

#include <torch/autograd.h>
#include <torch/library.h>

namespace dcnv3 {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::Variable;
using torch::autograd::variable_list;

class DCNv3Function : public torch::autograd::Function<DCNv3Function> {
 public:
  static variable_list forward(AutogradContext* ctx, const Variable& input,
                               const Variable& offset, const Variable& mask,
                               int64_t kh, int64_t kw, int64_t sh, int64_t sw,
                               int64_t ph, int64_t pw, int64_t dh, int64_t dw,
                               int64_t group, int64_t group_channels,
                               double offset_scale, int64_t im2col_step) {
    at::AutoDispatchBelowADInplaceOrView guard;
    at::Tensor output = ops::dcnv3(input, offset, mask, kh, kw, sh, sw, ph, pw,
                                   dh, dw, group, group_channels, offset_scale,
                                   im2col_step);
    ctx->save_for_backward({input, offset, mask});
    ctx->saved_data["ints"] = c10::List<int64_t>(
        {kh, kw, sh, sw, ph, pw, dh, dw, group, group_channels, im2col_step});
    ctx->saved_data["offset_scale"] = offset_scale;
    return {output};
  }

  static variable_list backward(AutogradContext* ctx,
                                const variable_list& grad_outputs) {
    const variable_list saved = ctx->get_saved_variables();
    const c10::List<int64_t> s = ctx->saved_data["ints"].toIntList();
    auto [grad_input, grad_offset, grad_mask] = ops::dcnv3_backward(
        grad_outputs[0], saved[0], saved[1], saved[2], s[0], s[1], s[2], s[3],
        s[4], s[5], s[6], s[7], s[8], s[9],
        ctx->saved_data["offset_scale"].toDouble(), s[10]);
    variable_list grads(15);  // none for the 12 scalars
    grads[0] = std::move(grad_input);
    grads[1] = std::move(grad_offset);
    grads[2] = std::move(grad_mask);
    return grads;
  }
};

// Makes the gradients of dcnv3_backward's outputs an error that names the
// way out (the pure-PyTorch path is twice differentiable).
class DCNv3BackwardFunction
    : public torch::autograd::Function<DCNv3BackwardFunction> {
 public:
  static variable_list forward(AutogradContext* /*ctx*/,
                               const Variable& grad_output,
                               const Variable& input, const Variable& offset,
                               const Variable& mask, int64_t kh, int64_t kw,
                               int64_t sh, int64_t sw, int64_t ph, int64_t pw,
                               int64_t dh, int64_t dw, int64_t group,
                               int64_t group_channels, double offset_scale,
                               int64_t im2col_step) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [grad_input, grad_offset, grad_mask] = ops::dcnv3_backward(
        grad_output, input, offset, mask, kh, kw, sh, sw, ph, pw, dh, dw, group,
        group_channels, offset_scale, im2col_step);
    return {grad_input, grad_offset, grad_mask};
  }

  static variable_list backward(AutogradContext* /*ctx*/,
                                const variable_list& /*grad_outputs*/) {
    TORCH_CHECK(false,
                "DCNv3: double backward (a gradient of the gradient) is not "
                "supported by the compiled op ops_dcnv3::dcnv3 (its backward, "
                "ops_dcnv3::dcnv3_backward, is not differentiable); use the "
                "pure-PyTorch path (core_op='DCNv3_pytorch', "
                "dcnv3_core_pytorch) for higher-order gradients");
  }
};

// Whether a call has a graph for autograd to record: grad mode is on and a
// tensor needs a gradient. Forward-mode AD (a tensor with a tangent) is
// refused: the op has no forward derivative.
bool needs_autograd(const char* op,
                    std::initializer_list<const at::Tensor*> tensors) {
  const bool grad_mode = at::GradMode::is_enabled();
  bool needed = false;
  for (const at::Tensor* t : tensors) {
    if (!t->defined()) continue;
    TORCH_CHECK(!t->_fw_grad(/*level=*/0).defined(), "DCNv3: forward-mode AD "
                "(a tensor with a tangent, torch.func.jvp) is not supported by "
                "the compiled op ", op, "; use the pure-PyTorch path "
                "(core_op='DCNv3_pytorch', dcnv3_core_pytorch)");
    needed = needed || (grad_mode && t->requires_grad());
  }
  return needed;
}

at::Tensor dcnv3_autograd(const at::Tensor& input, const at::Tensor& offset,
                          const at::Tensor& mask, int64_t kh, int64_t kw,
                          int64_t sh, int64_t sw, int64_t ph, int64_t pw,
                          int64_t dh, int64_t dw, int64_t group,
                          int64_t group_channels, double offset_scale,
                          int64_t im2col_step) {
  if (!needs_autograd("ops_dcnv3::dcnv3", {&input, &offset, &mask})) {
    // No graph to record (no_grad, inference, or no input needs a gradient):
    // straight to the backend kernel.
    at::AutoDispatchBelowADInplaceOrView guard;
    return ops::dcnv3(input, offset, mask, kh, kw, sh, sw, ph, pw, dh, dw,
                      group, group_channels, offset_scale, im2col_step);
  }
  return DCNv3Function::apply(input, offset, mask, kh, kw, sh, sw, ph, pw, dh,
                              dw, group, group_channels, offset_scale,
                              im2col_step)[0];
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> dcnv3_backward_autograd(
    const at::Tensor& grad_output, const at::Tensor& input,
    const at::Tensor& offset, const at::Tensor& mask, int64_t kh, int64_t kw,
    int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh, int64_t dw,
    int64_t group, int64_t group_channels, double offset_scale,
    int64_t im2col_step) {
  if (!needs_autograd("ops_dcnv3::dcnv3_backward",
                      {&grad_output, &input, &offset, &mask})) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return ops::dcnv3_backward(grad_output, input, offset, mask, kh, kw, sh, sw,
                               ph, pw, dh, dw, group, group_channels,
                               offset_scale, im2col_step);
  }
  variable_list grads = DCNv3BackwardFunction::apply(
      grad_output, input, offset, mask, kh, kw, sh, sw, ph, pw, dh, dw, group,
      group_channels, offset_scale, im2col_step);
  return {grads[0], grads[1], grads[2]};
}

}  // namespace

TORCH_LIBRARY_IMPL(ops_dcnv3, Autograd, m) {
  m.impl("dcnv3", dcnv3_autograd);
  m.impl("dcnv3_backward", dcnv3_backward_autograd);
}

}  // namespace dcnv3
