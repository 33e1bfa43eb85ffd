// Python binding: argument checks and device dispatch of the DCNv3 op.
#include "dcnv3.h"
#include "cpu/cpu_isa.h"

#include <cmath>
#include <limits>

namespace dcnv3 {

namespace {

void check_tensor(const at::Tensor& t, const char* name, int64_t n,
                  int64_t h, int64_t w, int64_t c) {
  TORCH_CHECK_VALUE(t.dim() == 4, "DCNv3: ", name,
                    " must be 4-D (N, H, W, C), got shape ", t.sizes());
  TORCH_CHECK_VALUE(t.size(0) == n && t.size(1) == h && t.size(2) == w &&
                        t.size(3) == c,
                    "DCNv3: ", name, " must have shape (", n, ", ", h, ", ",
                    w, ", ", c, "), got ", t.sizes());
  TORCH_CHECK_VALUE(t.is_contiguous(), "DCNv3: ", name,
                    " must be contiguous");
}

}  // namespace

Geometry check_and_make_geometry(const at::Tensor& input,
                                 const at::Tensor& offset,
                                 const at::Tensor& mask, int64_t kh, int64_t kw,
                                 int64_t sh, int64_t sw, int64_t ph, int64_t pw,
                                 int64_t dh, int64_t dw, int64_t group,
                                 int64_t group_channels, double offset_scale) {
  constexpr int64_t kLimit = int64_t(1) << 31;  // kernel parameters are 32-bit
  TORCH_CHECK_VALUE(kh > 0 && kw > 0 && kh < kLimit && kw < kLimit,
                    "DCNv3: kernel size must be in [1, 2^31), got (", kh, ", ", kw, ")");
  TORCH_CHECK_VALUE(sh > 0 && sw > 0 && sh < kLimit && sw < kLimit,
                    "DCNv3: stride must be in [1, 2^31), got (", sh, ", ", sw, ")");
  TORCH_CHECK_VALUE(dh > 0 && dw > 0 && dh < kLimit && dw < kLimit,
                    "DCNv3: dilation must be in [1, 2^31), got (", dh, ", ", dw, ")");
  TORCH_CHECK_VALUE(ph >= 0 && pw >= 0 && ph < kLimit && pw < kLimit,
                    "DCNv3: padding must be in [0, 2^31), got (", ph, ", ", pw, ")");
  TORCH_CHECK_VALUE(group > 0 && group_channels > 0,
                    "DCNv3: group and group_channels must be positive");
  TORCH_CHECK_VALUE(std::isfinite(offset_scale),
                    "DCNv3: offset_scale must be finite, got ", offset_scale);
  TORCH_CHECK_VALUE(input.dim() == 4, "DCNv3: input must be 4-D (N, H, W, C), got shape ",
                    input.sizes());
  Geometry g;
  g.N = input.size(0);
  g.H = input.size(1);
  g.W = input.size(2);
  g.G = group;
  g.D = group_channels;
  g.kh = static_cast<int>(kh); g.kw = static_cast<int>(kw);
  g.sh = static_cast<int>(sh); g.sw = static_cast<int>(sw);
  g.ph = static_cast<int>(ph); g.pw = static_cast<int>(pw);
  g.dh = static_cast<int>(dh); g.dw = static_cast<int>(dw);
  g.offset_scale = offset_scale;
  TORCH_CHECK_VALUE(input.size(3) == group * group_channels,
                    "DCNv3: input has ", input.size(3),
                    " channels, expected group * group_channels = ", group,
                    " * ", group_channels);
  TORCH_CHECK_VALUE(g.H > 0 && g.W > 0, "DCNv3: input has an empty image (",
                    g.H, "x", g.W, "); only the batch size N may be 0");
  // All terms are below 2^33 (products below 2^62): no 64-bit overflow.
  g.Ho = (g.H + 2 * ph - (dh * (kh - 1) + 1)) / sh + 1;
  g.Wo = (g.W + 2 * pw - (dw * (kw - 1) + 1)) / sw + 1;
  TORCH_CHECK_VALUE(g.Ho > 0 && g.Wo > 0, "DCNv3: output size (", g.Ho, ", ",
                    g.Wo, ") is empty for input ", input.sizes());
  TORCH_CHECK_VALUE(g.P() <= std::numeric_limits<int64_t>::max() / 2 / g.G,
                    "DCNv3: kernel ", kh, "x", kw, " with ", g.G,
                    " groups has too many sampling points");
  check_tensor(input, "input", g.N, g.H, g.W, g.C());
  check_tensor(offset, "offset", g.N, g.Ho, g.Wo, g.G * g.P() * 2);
  check_tensor(mask, "mask", g.N, g.Ho, g.Wo, g.G * g.P());
  TORCH_CHECK_TYPE(offset.scalar_type() == input.scalar_type() &&
                       mask.scalar_type() == input.scalar_type(),
                   "DCNv3: input, offset and mask must have the same dtype, got ",
                   input.scalar_type(), ", ", offset.scalar_type(), ", ",
                   mask.scalar_type());
  TORCH_CHECK_VALUE(offset.device() == input.device() &&
                        mask.device() == input.device(),
                    "DCNv3: input, offset and mask must be on the same device, got ",
                    input.device(), ", ", offset.device(), ", ", mask.device());
  return g;
}

at::Tensor dcnv3_forward(const at::Tensor& input, const at::Tensor& offset,
                         const at::Tensor& mask, int64_t kh, int64_t kw,
                         int64_t sh, int64_t sw, int64_t ph, int64_t pw,
                         int64_t dh, int64_t dw, int64_t group,
                         int64_t group_channels, double offset_scale,
                         int64_t im2col_step) {
  TORCH_CHECK_VALUE(im2col_step > 0, "DCNv3: im2col_step must be positive");
  const Geometry g = check_and_make_geometry(input, offset, mask, kh, kw, sh, sw,
                                             ph, pw, dh, dw, group,
                                             group_channels, offset_scale);
  if (input.is_cuda()) {
#ifdef WITH_CUDA
    return forward_cuda(input, offset, mask, g);
#else
    TORCH_CHECK(false, "DCNv3: ops_dcnv3 was built without CUDA support; "
                       "rebuild it with a CUDA toolkit (FORCE_CUDA=1)");
#endif
  }
  TORCH_CHECK_VALUE(input.device().is_cpu(), "DCNv3: unsupported device ",
                    input.device());
  return forward_cpu(input, offset, mask, g);
}

std::vector<at::Tensor> dcnv3_backward(
    const at::Tensor& input, const at::Tensor& offset, const at::Tensor& mask,
    int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw,
    int64_t dh, int64_t dw, int64_t group, int64_t group_channels, double offset_scale,
    const at::Tensor& grad_output, int64_t im2col_step) {
  TORCH_CHECK_VALUE(im2col_step > 0, "DCNv3: im2col_step must be positive");
  const Geometry g = check_and_make_geometry(input, offset, mask, kh, kw, sh, sw,
                                             ph, pw, dh, dw, group,
                                             group_channels, offset_scale);
  check_tensor(grad_output, "grad_output", g.N, g.Ho, g.Wo, g.C());
  TORCH_CHECK_TYPE(grad_output.scalar_type() == input.scalar_type(),
                   "DCNv3: grad_output dtype ", grad_output.scalar_type(),
                   " differs from input dtype ", input.scalar_type());
  TORCH_CHECK_VALUE(grad_output.device() == input.device(),
                    "DCNv3: grad_output is on ", grad_output.device(),
                    ", input on ", input.device());
  if (input.is_cuda()) {
#ifdef WITH_CUDA
    return backward_cuda(input, offset, mask, grad_output, g);
#else
    TORCH_CHECK(false, "DCNv3: ops_dcnv3 was built without CUDA support");
#endif
  }
  return backward_cpu(input, offset, mask, grad_output, g);
}

bool with_cuda() {
#ifdef WITH_CUDA
  return true;
#else
  return false;
#endif
}

}  // namespace dcnv3

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "DCNv3 deformable convolution kernels (CPU and, if built, CUDA)";
  m.def("dcnv3_forward", &dcnv3::dcnv3_forward, "DCNv3 forward");
  m.def("dcnv3_backward", &dcnv3::dcnv3_backward,
        "DCNv3 backward: grads of input, offset, mask");
  m.def("with_cuda", &dcnv3::with_cuda, "whether CUDA kernels were built");
  m.def("cpu_isa", &dcnv3::cpu::current_isa_name,
        "instruction set the CPU kernels run with");
  m.def("supported_cpu_isas", &dcnv3::cpu::supported_isa_names,
        "instruction sets this build and CPU can run the CPU kernels with");
  m.def("set_cpu_isa", &dcnv3::cpu::set_isa,
        "run the CPU kernels with this instruction set (tests, benchmarks)");
}
