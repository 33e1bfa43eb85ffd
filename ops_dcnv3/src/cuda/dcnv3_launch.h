// Kernel launchers of DCNv3 (defined in dcnv3_kernels.cu, instantiated for
// double, float, c10::Half and c10::BFloat16), called by dcnv3_cuda.cpp.
// Kept free of ATen tensor headers so that nvcc compiles the kernels quickly.
#pragma once

#include <ATen/OpMathType.h>
#include <cuda_runtime_api.h>

#include "dcnv3_plan.h"

namespace dcnv3 {
namespace cuda {

// output (N, Ho, Wo, G*D) = DCNv3(input, offset, mask); every element written.
template <typename scalar_t>
void launch_forward(const scalar_t* input, const scalar_t* offset,
                    const scalar_t* mask, scalar_t* output, const Plan& plan,
                    cudaStream_t stream);

// grad_input (accumulation type, zero-filled) += scatter; grad_offset and
// grad_mask fully written.
template <typename scalar_t>
void launch_backward(const scalar_t* input, const scalar_t* offset,
                     const scalar_t* mask, const scalar_t* grad_output,
                     at::opmath_type<scalar_t>* grad_input,
                     scalar_t* grad_offset, scalar_t* grad_mask,
                     const Plan& plan, cudaStream_t stream);

}  // namespace cuda
}  // namespace dcnv3
