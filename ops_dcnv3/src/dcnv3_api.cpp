// Device dispatch of the DCNv3 kernels, and the Python binding
// ops_dcnv3._C: its direct entry points dcnv3_forward / dcnv3_backward
// (checked, contiguous tensors required) and the CPU instruction-set knobs.
// The registered operator torch.ops.ops_dcnv3.dcnv3 is in dcnv3_op.cpp.
#include "dcnv3.h"
#include "cpu/cpu_isa.h"

namespace dcnv3 {

#ifndef WITH_CUDA
namespace {

[[noreturn]] void no_cuda() {
  TORCH_CHECK(false, "DCNv3: ops_dcnv3 was built without CUDA support; "
                     "rebuild it with a CUDA toolkit (FORCE_CUDA=1)");
}

}  // namespace
#endif

at::Tensor forward(const at::Tensor& input, const at::Tensor& offset,
                   const at::Tensor& mask, const Geometry& g) {
  if (input.is_cuda()) {
#ifdef WITH_CUDA
    return forward_cuda(input, offset, mask, g);
#else
    no_cuda();
#endif
  }
  return forward_cpu(input, offset, mask, g);
}

std::vector<at::Tensor> backward(const at::Tensor& input,
                                 const at::Tensor& offset,
                                 const at::Tensor& mask,
                                 const at::Tensor& grad_output,
                                 const Geometry& g) {
  if (input.is_cuda()) {
#ifdef WITH_CUDA
    return backward_cuda(input, offset, mask, grad_output, g);
#else
    no_cuda();
#endif
  }
  return backward_cpu(input, offset, mask, grad_output, g);
}

namespace {

// The binding's entry points: the operator's checks, and contiguous
// tensors of one dtype (no copies, no casts).
at::Tensor dcnv3_forward(const at::Tensor& input, const at::Tensor& offset,
                         const at::Tensor& mask, int64_t kh, int64_t kw,
                         int64_t sh, int64_t sw, int64_t ph, int64_t pw,
                         int64_t dh, int64_t dw, int64_t group,
                         int64_t group_channels, double offset_scale,
                         int64_t im2col_step) {
  const Geometry g = check_args(input, offset, mask, kh, kw, sh, sw, ph, pw, dh,
                                dw, group, group_channels, offset_scale,
                                im2col_step);
  check_contiguous(input, "input");
  check_contiguous(offset, "offset");
  check_contiguous(mask, "mask");
  return forward(input, offset, mask, g);
}

std::vector<at::Tensor> dcnv3_backward(
    const at::Tensor& input, const at::Tensor& offset, const at::Tensor& mask,
    int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw,
    int64_t dh, int64_t dw, int64_t group, int64_t group_channels,
    double offset_scale, const at::Tensor& grad_output, int64_t im2col_step) {
  const Geometry g = check_args(input, offset, mask, kh, kw, sh, sw, ph, pw, dh,
                                dw, group, group_channels, offset_scale,
                                im2col_step);
  check_grad_output(grad_output, input, g, /*same_dtype=*/true);
  check_contiguous(input, "input");
  check_contiguous(offset, "offset");
  check_contiguous(mask, "mask");
  check_contiguous(grad_output, "grad_output");
  return backward(input, offset, mask, grad_output, g);
}

bool with_cuda() {
#ifdef WITH_CUDA
  return true;
#else
  return false;
#endif
}

}  // namespace

}  // namespace dcnv3

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "DCNv3 deformable convolution kernels (CPU and, if built, CUDA); "
            "importing it registers the operators torch.ops.ops_dcnv3.*";
  m.def("dcnv3_forward", &dcnv3::dcnv3_forward,
        "DCNv3 forward (contiguous tensors, no autograd)");
  m.def("dcnv3_backward", &dcnv3::dcnv3_backward,
        "DCNv3 backward: grads of input, offset, mask (contiguous tensors)");
  m.def("with_cuda", &dcnv3::with_cuda, "whether CUDA kernels were built");
  m.def("cpu_isa", &dcnv3::cpu::current_isa_name,
        "instruction set the CPU kernels run with");
  m.def("supported_cpu_isas", &dcnv3::cpu::supported_isa_names,
        "instruction sets this build and CPU can run the CPU kernels with");
  m.def("set_cpu_isa", &dcnv3::cpu::set_isa,
        "run the CPU kernels with this instruction set (tests, benchmarks)");
}
