// Argument checks of the DCNv3 op: run once per call, before any data is
// touched, by the operator's kernels and by the direct binding. The messages
// are those of the Python checks (ops_dcnv3/functions/checks.py), which
// cover what only Python can see (argument types) and the fake (meta)
// implementation; tests/ops_dcnv3/test_errors.py holds both to them.
#include "dcnv3.h"

#include <cmath>
#include <limits>
#include <sstream>
#include <string>

namespace dcnv3 {

namespace {

// Upper bound (exclusive) of every integer argument: the kernels take them
// as 32-bit values and compute the geometry from them in 64 bits.
constexpr int64_t kIntLimit = int64_t(1) << 31;

// A shape as Python prints a tuple: (2, 5, 6, 36), (5,), ().
std::string py_shape(at::IntArrayRef sizes) {
  std::ostringstream os;
  os << '(';
  for (size_t i = 0; i < sizes.size(); ++i) {
    if (i > 0) os << ", ";
    os << sizes[i];
  }
  if (sizes.size() == 1) os << ',';
  os << ')';
  return os.str();
}

// A dtype as Python prints it: torch.float32.
std::string py_dtype(at::ScalarType dtype) {
  return "torch." + std::string(c10::getDtypeNames(dtype).first);
}

// A layout as Python prints it: torch.sparse_coo.
const char* py_layout(at::Layout layout) {
  switch (layout) {
    case at::kStrided: return "torch.strided";
    case at::kSparse: return "torch.sparse_coo";
    case at::kSparseCsr: return "torch.sparse_csr";
    case at::kSparseCsc: return "torch.sparse_csc";
    case at::kSparseBsr: return "torch.sparse_bsr";
    case at::kSparseBsc: return "torch.sparse_bsc";
    case at::kMkldnn: return "torch._mkldnn";
    case at::kJagged: return "torch.jagged";
    default: return "an unknown layout";
  }
}

// A non-finite double as Python prints it (no "-nan").
const char* py_nonfinite(double v) {
  return std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf");
}

// Python's a // b for b > 0 (C++ rounds towards zero).
int64_t floor_div(int64_t a, int64_t b) {
  const int64_t q = a / b;
  return (a % b != 0 && a < 0) ? q - 1 : q;
}

// A dense floating-point 4-D tensor on the CPU or a GPU.
void check_tensor(const at::Tensor& t, const char* name) {
  TORCH_CHECK_TYPE(t.defined(), "DCNv3: ", name,
                   " must be a torch.Tensor, got an undefined tensor (None)");
  TORCH_CHECK_TYPE(t.layout() == at::kStrided, "DCNv3: ", name,
                   " must be a dense (strided) tensor, got layout ",
                   py_layout(t.layout()));
  TORCH_CHECK_VALUE(!t.is_meta(), "DCNv3: ", name,
                    " is on the meta device (no data); the op needs tensors "
                    "on the CPU or a GPU");
  TORCH_CHECK_VALUE(t.is_cpu() || t.is_cuda(), "DCNv3: ", name, " is on ",
                    t.device(), "; the op has CPU and CUDA kernels only");
  TORCH_CHECK_VALUE(t.dim() == 4, "DCNv3: ", name,
                    " must be 4-D channels-last (N, H, W, C), got shape ",
                    py_shape(t.sizes()));
  TORCH_CHECK_TYPE(at::isFloatingType(t.scalar_type()), "DCNv3: ", name,
                   " must be a floating-point tensor, got ",
                   py_dtype(t.scalar_type()));
}

// An int in [1, 2**31), or [0, 2**31) with allow_zero.
int64_t check_int(const char* name, int64_t v, bool allow_zero = false) {
  TORCH_CHECK_VALUE(v > 0 || (allow_zero && v == 0), "DCNv3: ", name,
                    " must be ", allow_zero ? ">= 0" : "> 0", ", got ", v);
  TORCH_CHECK_VALUE(v < kIntLimit, "DCNv3: ", name, " must be < 2**31, got ", v);
  return v;
}

void check_shape(const at::Tensor& t, const char* name, const at::Tensor& input,
                 int64_t n, int64_t h, int64_t w, int64_t c) {
  TORCH_CHECK_VALUE(t.size(0) == n && t.size(1) == h && t.size(2) == w &&
                        t.size(3) == c,
                    "DCNv3: ", name, " must have shape ",
                    py_shape({n, h, w, c}), " for input ",
                    py_shape(input.sizes()), ", got ", py_shape(t.sizes()));
}

}  // namespace

Geometry check_args(const at::Tensor& input, const at::Tensor& offset,
                    const at::Tensor& mask, int64_t kh, int64_t kw, int64_t sh,
                    int64_t sw, int64_t ph, int64_t pw, int64_t dh, int64_t dw,
                    int64_t group, int64_t group_channels, double offset_scale,
                    int64_t im2col_step) {
  check_tensor(input, "input");
  check_tensor(offset, "offset");
  check_tensor(mask, "mask");
  Geometry g;
  g.kh = static_cast<int>(check_int("kernel_h", kh));
  g.kw = static_cast<int>(check_int("kernel_w", kw));
  g.sh = static_cast<int>(check_int("stride_h", sh));
  g.sw = static_cast<int>(check_int("stride_w", sw));
  g.ph = static_cast<int>(check_int("pad_h", ph, /*allow_zero=*/true));
  g.pw = static_cast<int>(check_int("pad_w", pw, /*allow_zero=*/true));
  g.dh = static_cast<int>(check_int("dilation_h", dh));
  g.dw = static_cast<int>(check_int("dilation_w", dw));
  g.G = check_int("group", group);
  g.D = check_int("group_channels", group_channels);
  TORCH_CHECK_VALUE(std::isfinite(offset_scale),
                    "DCNv3: offset_scale must be finite, got ",
                    py_nonfinite(offset_scale));
  // The float32/16 kernels compute in float: a larger scale is infinite
  // there, and 0 * inf makes the offset gradient NaN.
  TORCH_CHECK_VALUE(std::fabs(offset_scale) <= std::numeric_limits<float>::max(),
                    "DCNv3: offset_scale must be within float32's range "
                    "(|offset_scale| <= 3.4028234663852886e+38)");
  g.offset_scale = offset_scale;

  g.N = input.size(0);
  g.H = input.size(1);
  g.W = input.size(2);
  // As torch's convolutions: only the batch may be empty.
  TORCH_CHECK_VALUE(g.H > 0 && g.W > 0, "DCNv3: input has an empty image (",
                    g.H, "x", g.W, ", shape ", py_shape(input.sizes()),
                    "); only the batch size N may be 0");
  TORCH_CHECK_VALUE(input.size(3) == g.C(), "DCNv3: input has ", input.size(3),
                    " channels, expected group * group_channels = ", g.G,
                    " * ", g.D, " = ", g.C());
  // The integer arguments are below 2^31: no 64-bit overflow.
  g.Ho = floor_div(g.H + 2 * ph - (dh * (kh - 1) + 1), sh) + 1;
  g.Wo = floor_div(g.W + 2 * pw - (dw * (kw - 1) + 1), sw) + 1;
  TORCH_CHECK_VALUE(g.Ho > 0 && g.Wo > 0, "DCNv3: input of size ", g.H, "x",
                    g.W, " gives an empty output (", g.Ho, "x", g.Wo,
                    ") for kernel ", kh, "x", kw, ", pad (", ph, ", ", pw,
                    "), dilation (", dh, ", ", dw, ")");
  TORCH_CHECK_VALUE(g.P() <= std::numeric_limits<int64_t>::max() / 2 / g.G,
                    "DCNv3: kernel ", kh, "x", kw, " with ", g.G,
                    " groups has too many sampling points");
  check_shape(offset, "offset", input, g.N, g.Ho, g.Wo, g.G * g.P() * 2);
  check_shape(mask, "mask", input, g.N, g.Ho, g.Wo, g.G * g.P());
  TORCH_CHECK_VALUE(
      offset.device() == input.device() && mask.device() == input.device(),
      "DCNv3: input, offset and mask must be on the same device, got ",
      input.device(), ", ", offset.device(), ", ", mask.device());
  TORCH_CHECK_TYPE(offset.scalar_type() == input.scalar_type() &&
                       mask.scalar_type() == input.scalar_type(),
                   "DCNv3: input, offset and mask must have the same dtype, got ",
                   py_dtype(input.scalar_type()), ", ",
                   py_dtype(offset.scalar_type()), ", ",
                   py_dtype(mask.scalar_type()));
  check_int("im2col_step", im2col_step);
  return g;
}

void check_grad_output(const at::Tensor& grad_output, const at::Tensor& input,
                       const Geometry& g, bool same_dtype) {
  TORCH_CHECK_TYPE(grad_output.defined(),
                   "DCNv3: grad_output must be a torch.Tensor, got an "
                   "undefined tensor (None)");
  TORCH_CHECK_TYPE(grad_output.layout() == at::kStrided,
                   "DCNv3: grad_output must be a dense (strided) tensor, got "
                   "layout ", py_layout(grad_output.layout()));
  TORCH_CHECK_VALUE(grad_output.device() == input.device(),
                    "DCNv3: grad_output must be on the input's device (",
                    input.device(), "), got ", grad_output.device());
  TORCH_CHECK_VALUE(grad_output.dim() == 4 && grad_output.size(0) == g.N &&
                        grad_output.size(1) == g.Ho &&
                        grad_output.size(2) == g.Wo &&
                        grad_output.size(3) == g.C(),
                    "DCNv3: grad_output must have shape ",
                    py_shape({g.N, g.Ho, g.Wo, g.C()}), ", got ",
                    py_shape(grad_output.sizes()));
  TORCH_CHECK_TYPE(at::isFloatingType(grad_output.scalar_type()),
                   "DCNv3: grad_output must be a floating-point tensor, got ",
                   py_dtype(grad_output.scalar_type()));
  TORCH_CHECK_TYPE(!same_dtype || grad_output.scalar_type() == input.scalar_type(),
                   "DCNv3: grad_output must have the input's dtype (",
                   py_dtype(input.scalar_type()), "), got ",
                   py_dtype(grad_output.scalar_type()));
}

void check_contiguous(const at::Tensor& t, const char* name) {
  TORCH_CHECK_VALUE(t.is_contiguous(), "DCNv3: ", name, " must be contiguous");
}

}  // namespace dcnv3
