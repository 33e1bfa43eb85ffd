// Autocast kernels of ops_dcnv3::dcnv3 (AutocastCPU, AutocastCUDA). Inside
// torch.autocast(device_type, dtype) the floating tensors on that device are
// cast to the device's current autocast dtype (float16 and bfloat16 alike,
// float64 included), and the op runs, and returns, in that dtype (the half
// kernels accumulate in float32). The casts are recorded by autograd: the
// gradients come back in the inputs' own dtypes. The backward operator has
// no Autocast kernel: it runs in the dtype of the forward's saved inputs.
#include "../dcnv3.h"

#include <ATen/autocast_mode.h>
#include <torch/library.h>

namespace dcnv3 {

namespace {

template <c10::DeviceType device>
at::Tensor dcnv3_autocast(const at::Tensor& input, const at::Tensor& offset,
                          const at::Tensor& mask, int64_t kh, int64_t kw,
                          int64_t sh, int64_t sw, int64_t ph, int64_t pw,
                          int64_t dh, int64_t dw, int64_t group,
                          int64_t group_channels, double offset_scale,
                          int64_t im2col_step) {
  c10::impl::ExcludeDispatchKeyGuard no_autocast(
      at::autocast::get_autocast_dispatch_key_from_device_type(device));
  const at::ScalarType dtype = at::autocast::get_autocast_dtype(device);
  const auto cast = [dtype](const at::Tensor& t) {
    return t.defined() && t.device().type() == device &&
                   at::isFloatingType(t.scalar_type()) &&
                   t.scalar_type() != dtype
               ? t.to(dtype)
               : t;
  };
  return ops::dcnv3(cast(input), cast(offset), cast(mask), kh, kw, sh, sw, ph,
                    pw, dh, dw, group, group_channels, offset_scale,
                    im2col_step);
}

}  // namespace

TORCH_LIBRARY_IMPL(ops_dcnv3, AutocastCPU, m) {
  m.impl("dcnv3", dcnv3_autocast<c10::DeviceType::CPU>);
}

TORCH_LIBRARY_IMPL(ops_dcnv3, AutocastCUDA, m) {
  m.impl("dcnv3", dcnv3_autocast<c10::DeviceType::CUDA>);
}

}  // namespace dcnv3
