// Sampling-point geometry and bilinear weights of DCNv3: the scalar
// definition of where each point samples and with which weights.
//
// Who uses what: the CUDA kernels (cuda/dcnv3_kernels.cuh) call
// sample_location and bilinear_corners; the CPU kernel (cpu/dcnv3_cpu.cpp)
// uses Geometry and the 64-bit grid helpers (half_extent, tap) and restates
// the per-point arithmetic vectorised across
// points (locate_lanes: one SIMD lane per point, no per-point branches), so
// a change to the formulas here must be mirrored there. Both kernels are
// checked against the reference results (tests/ops_dcnv3).
//
// Conventions (docs/dcnv3.md): tensors are channels-last, input
// (N, H, W, G*D), offset (N, Ho, Wo, G*P*2), mask (N, Ho, Wo, G*P). Point
// p = i*kh + j runs with the x (width) index i outer and the y (height)
// index j inner. Pixel (y, x) has its centre at (y, x); neighbours outside
// the image contribute 0.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__) || defined(__HIPCC__)
#define DCNV3_HD __host__ __device__ __forceinline__
#else
#define DCNV3_HD inline
#endif

namespace dcnv3 {

// Problem geometry; every index computed from it is 64-bit. The kernel
// parameters are below 2^31 (checked by the binding), but their sums and
// products (e.g. pad + dilation * (kernel - 1) / 2) are not: compute those in
// 64 bits (half_extent, tap).
struct Geometry {
  int64_t N, H, W, Ho, Wo;
  int64_t G, D;  // groups, channels per group
  int kh, kw, sh, sw, ph, pw, dh, dw;
  double offset_scale;

  DCNV3_HD int64_t C() const { return G * D; }
  DCNV3_HD int64_t P() const { return static_cast<int64_t>(kh) * kw; }
};

// Four bilinear corners of one sampling point. Corners outside the image get
// weight 0 (and index 0, so reads stay in bounds), which makes the per-channel
// loops branch-free:
//   value      = sum_c w[c]  * x[idx[c] + d]
//   d value/dy = sum_c wy[c] * x[idx[c] + d]
//   d value/dx = sum_c wx[c] * x[idx[c] + d]
// idx[c] is the element offset of the corner pixel's channel 0 within one
// image, i.e. (y * W + x) * C.
//
// A corner outside the image touches no pixel (valid[c] false): kernels skip
// it rather than multiply its zero weight, so that it adds exactly 0 even
// when the mask is infinite. Corners inside with weight 0 (a point on an
// integer coordinate) are read, as grid_sample reads them.
template <typename acc_t>
struct Corners {
  int64_t idx[4];
  acc_t w[4];
  acc_t wy[4];
  acc_t wx[4];
  bool valid[4];  // corner inside the image
  bool any;       // false when the point lies entirely outside the image
};

// (dilation * (kernel - 1)) / 2, the distance of the kernel's first tap
// from its centre, in 64 bits.
DCNV3_HD int64_t half_extent(int dilation, int kernel) {
  return (static_cast<int64_t>(dilation) * (kernel - 1)) / 2;
}

// Offset -half + i * dilation of tap i from the kernel's centre, in 64 bits.
DCNV3_HD int64_t tap(int i, int dilation, int kernel) {
  return static_cast<int64_t>(i) * dilation - half_extent(dilation, kernel);
}

// Sampling location (y, x) in input pixel coordinates of point (i, j) for
// output pixel (ho, wo), given the learned offsets (off_x, off_y).
template <typename acc_t>
DCNV3_HD void sample_location(const Geometry& g, int64_t ho, int64_t wo,
                              int i, int j, acc_t off_x, acc_t off_y,
                              acc_t* y, acc_t* x) {
  const acc_t scale = static_cast<acc_t>(g.offset_scale);
  const acc_t cx = static_cast<acc_t>(wo * g.sw - g.pw + half_extent(g.dw, g.kw));
  const acc_t cy = static_cast<acc_t>(ho * g.sh - g.ph + half_extent(g.dh, g.kh));
  const acc_t gx = static_cast<acc_t>(tap(i, g.dw, g.kw));
  const acc_t gy = static_cast<acc_t>(tap(j, g.dh, g.kh));
  *x = cx + (gx + off_x) * scale;
  *y = cy + (gy + off_y) * scale;
}

// Bilinear corners of location (y, x) in an H x W image with C channels per
// pixel. Points with y <= -1, y >= H, x <= -1 or x >= W (and NaN) touch no
// pixel and get `any = false` with all weights zero.
template <typename acc_t>
DCNV3_HD Corners<acc_t> bilinear_corners(acc_t y, acc_t x, int64_t H,
                                         int64_t W, int64_t C) {
  Corners<acc_t> c;
  const bool inside = y > acc_t(-1) && x > acc_t(-1) &&
                      y < static_cast<acc_t>(H) && x < static_cast<acc_t>(W);
  c.any = inside;
  if (!inside) {
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      c.idx[k] = 0;
      c.w[k] = c.wy[k] = c.wx[k] = acc_t(0);
      c.valid[k] = false;
    }
    return c;
  }
  const acc_t yf = std::floor(y);
  const acc_t xf = std::floor(x);
  const int64_t y0 = static_cast<int64_t>(yf);
  const int64_t x0 = static_cast<int64_t>(xf);
  const int64_t y1 = y0 + 1;
  const int64_t x1 = x0 + 1;
  const acc_t ly = y - yf, lx = x - xf;
  const acc_t hy = acc_t(1) - ly, hx = acc_t(1) - lx;

  const bool vy0 = y0 >= 0, vy1 = y1 <= H - 1;
  const bool vx0 = x0 >= 0, vx1 = x1 <= W - 1;
  const bool valid[4] = {vy0 && vx0, vy0 && vx1, vy1 && vx0, vy1 && vx1};
  const int64_t yy[4] = {y0, y0, y1, y1};
  const int64_t xx[4] = {x0, x1, x0, x1};
  const acc_t w[4] = {hy * hx, hy * lx, ly * hx, ly * lx};
  const acc_t wy[4] = {-hx, -lx, hx, lx};
  const acc_t wx[4] = {-hy, hy, -ly, ly};
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    c.valid[k] = valid[k];
    c.idx[k] = valid[k] ? (yy[k] * W + xx[k]) * C : 0;
    c.w[k] = valid[k] ? w[k] : acc_t(0);
    c.wy[k] = valid[k] ? wy[k] : acc_t(0);
    c.wx[k] = valid[k] ? wx[k] : acc_t(0);
  }
  return c;
}

}  // namespace dcnv3
