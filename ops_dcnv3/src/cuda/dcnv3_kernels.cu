// Launchers of the DCNv3 kernels (dcnv3_kernels.cuh) for each vector width,
// instantiated for double, float, c10::Half and c10::BFloat16. Only light c10
// headers are included here, so nvcc compiles this file quickly.
#include <c10/cuda/CUDAException.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <type_traits>

#include "dcnv3_kernels.cuh"
#include "dcnv3_launch.h"

namespace dcnv3 {
namespace cuda {

namespace {

// Calls f(std::integral_constant<int, V>()) for the plan's vector width;
// widths wider than 16 bytes are never planned (pick_vec_width).
template <typename scalar_t, typename F>
void with_vec_width(int vec, F&& f) {
  constexpr int kMax = static_cast<int>(16 / sizeof(scalar_t));
  if constexpr (kMax >= 8) {
    if (vec == 8) return f(std::integral_constant<int, 8>());
  }
  if constexpr (kMax >= 4) {
    if (vec == 4) return f(std::integral_constant<int, 4>());
  }
  if (vec == 2) return f(std::integral_constant<int, 2>());
  if (vec == 1) return f(std::integral_constant<int, 1>());
  TORCH_CHECK(false, "DCNv3: internal error: vector width ", vec,
              " for an element of ", sizeof(scalar_t), " bytes");
}

}  // namespace

template <typename scalar_t>
void launch_forward(const scalar_t* input, const scalar_t* offset,
                    const scalar_t* mask, scalar_t* output, const Plan& plan,
                    cudaStream_t stream) {
  if (plan.grid == 0) return;
  with_vec_width<scalar_t>(plan.vec, [&](auto vc) {
    constexpr int V = decltype(vc)::value;
    dcnv3_forward_kernel<scalar_t, V><<<plan.grid, kThreads, plan.smem, stream>>>(
        input, offset, mask, output, plan.args);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
}

template <typename scalar_t>
void launch_backward(const scalar_t* input, const scalar_t* offset,
                     const scalar_t* mask, const scalar_t* grad_output,
                     at::opmath_type<scalar_t>* grad_input,
                     scalar_t* grad_offset, scalar_t* grad_mask,
                     const Plan& plan, cudaStream_t stream) {
  if (plan.grid == 0) return;
  with_vec_width<scalar_t>(plan.vec, [&](auto vc) {
    constexpr int V = decltype(vc)::value;
    dcnv3_backward_kernel<scalar_t, V><<<plan.grid, kThreads, plan.smem, stream>>>(
        input, offset, mask, grad_output, grad_input, grad_offset, grad_mask,
        plan.args);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
}

#define DCNV3_INSTANTIATE(T)                                                   \
  template void launch_forward<T>(const T*, const T*, const T*, T*,          \
                                  const Plan&, cudaStream_t);                 \
  template void launch_backward<T>(const T*, const T*, const T*, const T*,   \
                                   at::opmath_type<T>*, T*, T*, const Plan&, \
                                   cudaStream_t);

DCNV3_INSTANTIATE(double)
DCNV3_INSTANTIATE(float)
DCNV3_INSTANTIATE(c10::Half)
DCNV3_INSTANTIATE(c10::BFloat16)
#undef DCNV3_INSTANTIATE

}  // namespace cuda
}  // namespace dcnv3
