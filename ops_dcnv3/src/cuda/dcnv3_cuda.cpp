// CUDA entry points of DCNv3: forward_cuda and backward_cuda (see dcnv3.h).
// dcnv3_api.cpp has already checked shapes, dtypes, contiguity and that all
// tensors are on one device; this file allocates the results, picks the
// launch plan (dcnv3_plan.h) on the input's device and current stream, and
// calls the kernels (dcnv3_kernels.cuh, design notes there).
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "../dcnv3.h"
#include "dcnv3_launch.h"

namespace dcnv3 {

namespace {

// Shared-memory budget of one block on the current device.
int64_t device_smem_budget() {
  int dev = 0, smem_per_sm = 0, threads_per_sm = 0;
  C10_CUDA_CHECK(cudaGetDevice(&dev));
  C10_CUDA_CHECK(cudaDeviceGetAttribute(
      &smem_per_sm, cudaDevAttrMaxSharedMemoryPerMultiprocessor, dev));
  C10_CUDA_CHECK(cudaDeviceGetAttribute(
      &threads_per_sm, cudaDevAttrMaxThreadsPerMultiProcessor, dev));
  return cuda::smem_budget(smem_per_sm, threads_per_sm);
}

void check_on(const at::Tensor& t, const char* name, const at::Tensor& input) {
  TORCH_CHECK_VALUE(t.is_cuda() && t.device() == input.device(), "DCNv3: ",
                    name, " is on ", t.device(), " but input is on ",
                    input.device(), "; all tensors must be on the same device");
}

bool is_reduced(at::ScalarType t) {
  return t == at::kHalf || t == at::kBFloat16;
}

}  // namespace

at::Tensor forward_cuda(const at::Tensor& input, const at::Tensor& offset,
                        const at::Tensor& mask, const Geometry& g) {
  check_on(input, "input", input);
  check_on(offset, "offset", input);
  check_on(mask, "mask", input);
  const c10::cuda::CUDAGuard guard(input.device());
  // Every element is written by the kernel: no zero-fill.
  at::Tensor output = at::empty({g.N, g.Ho, g.Wo, g.C()}, input.options());
  if (output.numel() == 0) return output;
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const int64_t budget = device_smem_budget();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, input.scalar_type(), "dcnv3_forward_cuda", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        const scalar_t* x = input.const_data_ptr<scalar_t>();
        scalar_t* out = output.mutable_data_ptr<scalar_t>();
        const int vec = cuda::pick_vec_width<scalar_t>(g.D, {x, out});
        const cuda::Plan plan = cuda::make_plan(g, vec, 3 * sizeof(acc_t), budget);
        cuda::launch_forward<scalar_t>(x, offset.const_data_ptr<scalar_t>(),
                                       mask.const_data_ptr<scalar_t>(), out,
                                       plan, stream);
      });
  return output;
}

std::vector<at::Tensor> backward_cuda(const at::Tensor& input,
                                      const at::Tensor& offset,
                                      const at::Tensor& mask,
                                      const at::Tensor& grad_output,
                                      const Geometry& g) {
  check_on(input, "input", input);
  check_on(offset, "offset", input);
  check_on(mask, "mask", input);
  check_on(grad_output, "grad_output", input);
  const c10::cuda::CUDAGuard guard(input.device());
  const at::ScalarType dtype = input.scalar_type();
  // The input gradient is a scatter (atomicAdd) into a zero-filled buffer of
  // the accumulation type: float32 for half types, cast once at the end.
  at::Tensor grad_buf =
      at::zeros(input.sizes(),
                input.options().dtype(is_reduced(dtype) ? at::kFloat : dtype));
  // Fully overwritten by the kernel.
  at::Tensor grad_offset = at::empty(offset.sizes(), offset.options());
  at::Tensor grad_mask = at::empty(mask.sizes(), mask.options());
  if (grad_mask.numel() > 0) {
    const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
    const int64_t budget = device_smem_budget();
    AT_DISPATCH_FLOATING_TYPES_AND2(
        at::kHalf, at::kBFloat16, dtype, "dcnv3_backward_cuda", [&] {
          using acc_t = at::opmath_type<scalar_t>;
          const scalar_t* x = input.const_data_ptr<scalar_t>();
          const scalar_t* go = grad_output.const_data_ptr<scalar_t>();
          // grad_buf is a fresh allocation whose elements are at least as
          // wide as scalar_t: aligned for every V that suits x and go.
          const int vec = cuda::pick_vec_width<scalar_t>(g.D, {x, go});
          const cuda::Plan plan =
              cuda::make_plan(g, vec, 6 * sizeof(acc_t), budget);
          cuda::launch_backward<scalar_t>(
              x, offset.const_data_ptr<scalar_t>(),
              mask.const_data_ptr<scalar_t>(), go,
              grad_buf.mutable_data_ptr<acc_t>(),
              grad_offset.mutable_data_ptr<scalar_t>(),
              grad_mask.mutable_data_ptr<scalar_t>(), plan, stream);
        });
  }
  at::Tensor grad_input = is_reduced(dtype) ? grad_buf.to(dtype) : grad_buf;
  return {grad_input, grad_offset, grad_mask};
}

}  // namespace dcnv3
