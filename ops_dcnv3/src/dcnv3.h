// Entry points of the DCNv3 op, shared by the operator registration, the
// Python binding and the kernels.
//
// Layout (as torchvision's csrc/ops):
//   dcnv3_checks.cpp      argument checks (one home for the op's messages)
//   dcnv3_api.cpp         device dispatch, and the pybind module ops_dcnv3._C
//   dcnv3_op.cpp          TORCH_LIBRARY(ops_dcnv3): schemas, CPU/CUDA kernels
//   autograd/, autocast/  the Autograd and AutocastCPU/AutocastCUDA kernels
//   cpu/, cuda/           the compute kernels
#pragma once

#include <torch/extension.h>

#include <tuple>
#include <vector>

#include "dcnv3_math.h"

namespace dcnv3 {

// ---------------------------------------------------------- dcnv3_checks.cpp

// Validates a call (tensors, the 12 scalars) and returns its geometry.
// Raises c10::TypeError / c10::ValueError (Python TypeError / ValueError)
// whose message names the argument, in the order and words of the Python
// checks (ops_dcnv3/functions/checks.py: check_args, then im2col_step).
// Contiguity is not required here (see check_contiguous).
Geometry check_args(const at::Tensor& input, const at::Tensor& offset,
                    const at::Tensor& mask, int64_t kh, int64_t kw, int64_t sh,
                    int64_t sw, int64_t ph, int64_t pw, int64_t dh, int64_t dw,
                    int64_t group, int64_t group_channels, double offset_scale,
                    int64_t im2col_step);

// grad_output of a backward call: a dense tensor of shape (N, Ho, Wo, C) on
// the input's device; floating point, and of the input's dtype when
// same_dtype (the operator casts it, the direct binding does not).
void check_grad_output(const at::Tensor& grad_output, const at::Tensor& input,
                       const Geometry& g, bool same_dtype);

// ValueError "DCNv3: <name> must be contiguous" (the direct binding).
void check_contiguous(const at::Tensor& t, const char* name);

// ------------------------------------------------------------- dcnv3_api.cpp

// Runs the kernel of the tensors' device on checked, contiguous tensors.
at::Tensor forward(const at::Tensor& input, const at::Tensor& offset,
                   const at::Tensor& mask, const Geometry& g);
std::vector<at::Tensor> backward(const at::Tensor& input,
                                 const at::Tensor& offset,
                                 const at::Tensor& mask,
                                 const at::Tensor& grad_output,
                                 const Geometry& g);

// -------------------------------------------------------------- dcnv3_op.cpp

// Calls of the registered operators through the dispatcher (from the
// Autograd and Autocast kernels: they continue below the current key).
namespace ops {
at::Tensor dcnv3(const at::Tensor& input, const at::Tensor& offset,
                 const at::Tensor& mask, int64_t kh, int64_t kw, int64_t sh,
                 int64_t sw, int64_t ph, int64_t pw, int64_t dh, int64_t dw,
                 int64_t group, int64_t group_channels, double offset_scale,
                 int64_t im2col_step);
std::tuple<at::Tensor, at::Tensor, at::Tensor> dcnv3_backward(
    const at::Tensor& grad_output, const at::Tensor& input,
    const at::Tensor& offset, const at::Tensor& mask, int64_t kh, int64_t kw,
    int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh, int64_t dw,
    int64_t group, int64_t group_channels, double offset_scale,
    int64_t im2col_step);
}  // namespace ops

// ------------------------------------------------------------- cpu/, cuda/

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
