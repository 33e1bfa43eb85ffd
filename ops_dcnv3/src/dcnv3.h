// Entry points of the DCNv3 op, shared by the binding and the kernels.
#pragma once

#include <torch/extension.h>

#include <vector>

#include "dcnv3_math.h"

namespace dcnv3 {

// Validates the tensors and hyper-parameters and returns the geometry.
// Raises c10::Error (a Python RuntimeError/ValueError) naming the problem.
Geometry check_and_make_geometry(const at::Tensor& input,
                                 const at::Tensor& offset,
                                 const at::Tensor& mask, int64_t kh,
                                 int64_t kw, int64_t sh, int64_t sw,
                                 int64_t ph, int64_t pw, int64_t dh,
                                 int64_t dw, int64_t group,
                                 int64_t group_channels, double offset_scale);

at::Tensor forward_cpu(const at::Tensor& input, const at::Tensor& offset,
                       const at::Tensor& mask, const Geometry& g);
std::vector<at::Tensor> backward_cpu(const at::Tensor& input,
                                     const at::Tensor& offset,
                                     const at::Tensor& mask,
                                     const at::Tensor& grad_output,
                                     const Geometry& g);

#ifdef WITH_CUDA
at::Tensor forward_cuda(const at::Tensor& input, const at::Tensor& offset,
                        const at::Tensor& mask, const Geometry& g);
std::vector<at::Tensor> backward_cuda(const at::Tensor& input,
                                      const at::Tensor& offset,
                                      const at::Tensor& mask,
                                      const at::Tensor& grad_output,
                                      const Geometry& g);
#endif

}  // namespace dcnv3
