// Native CPU kernels of DCNv3 (forward and backward), float32 and float64;
// float16/bfloat16 run through float32.
//
// Per output pixel, in two steps:
//   1. `locate` computes the sampling data of up to kChunk points (position,
//      mask-weighted bilinear weights, corner offsets) as structure of
//      arrays, vectorised across points.
//   2. Per group, the channel work runs along its contiguous D channels in
//      blocks of 1, 2 or 4 SIMD vectors (a compile-time count, so that the
//      accumulators stay in registers), then scalar blocks for the rest.
//      Points with all four corners inside the image (nearly all) take the
//      straight path; other corners read a row of zeros and, in the backward
//      pass, write a scratch row.
// Forward is parallel over output pixels. Backward is parallel over (image,
// group) pairs: the input-gradient scatter of one pair touches only that
// image's channels of that group, so no two threads write to the same
// element and no atomics are needed.
//
// Every kernel is compiled once per instruction set (cpu_isa.h) with GNU
// vector extensions (simd.h); at::parallel_for needs -fopenmp (it is an
// OpenMP pragma in ATen's headers) and FMA contraction -ffp-contract=fast.
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "../dcnv3.h"
#include "cpu_isa.h"
#include "simd.h"

namespace dcnv3 {
namespace cpu {
namespace {

// Kernel taps of the points k = grp * P + i * kh + j: the regular grid
// offsets -half + i * dilation (x) and -half + j * dilation (y), as in
// sample_location.
template <typename T>
struct Taps {
  std::vector<T> x, y;
  Taps(const Geometry& g, int64_t groups) {
    for (int64_t grp = 0; grp < groups; ++grp) {
      for (int i = 0; i < g.kw; ++i) {
        for (int j = 0; j < g.kh; ++j) {
          x.push_back(static_cast<T>(tap(i, g.dw, g.kw)));
          y.push_back(static_cast<T>(tap(j, g.dh, g.kh)));
        }
      }
    }
  }
};

// Points are located kChunk at a time.
constexpr int kChunk = 64;

// Sampling data of up to kChunk points: the fractional position (lx, ly) in
// the square of the four corners (y0x0, y0x1, y1x0, y1x1), their bilinear
// weights, the point's mask (0 for a point outside the image), the corners'
// element offsets (y * W + x) * C in the image (-1 outside it) and whether
// all four are inside (-1) or not (0).
//
// The mask multiplies the bilinear sum (m * sum_q w_q x_q), as in the
// definition: corners outside the image read a row of zeros, so they add
// exactly 0 even when m is infinite, and a point outside the image adds
// exactly 0 whatever its mask.
// Structure of arrays, so that `locate` vectorises across points; fixed
// capacity, so that every array sits at a constant offset from one base.
template <typename T>
struct alignas(64) Points {
  T lx[kChunk], ly[kChunk];
  T m[kChunk];
  T w[4][kChunk];
  int32_t at[4][kChunk];
  int32_t inside[kChunk];
};

// Constants of `locate`; move_to() sets the output pixel.
template <typename T>
struct Frame {
  T cx = T(0), cy = T(0), scale, h, w;
  int32_t width, last_y, last_x, channels;
  int64_t x_origin, y_origin, sw, sh;

  explicit Frame(const Geometry& g)
      : scale(static_cast<T>(g.offset_scale)),
        h(static_cast<T>(g.H)),
        w(static_cast<T>(g.W)),
        width(static_cast<int32_t>(g.W)),
        last_y(static_cast<int32_t>(g.H - 1)),
        last_x(static_cast<int32_t>(g.W - 1)),
        channels(static_cast<int32_t>(g.C())),
        x_origin(half_extent(g.dw, g.kw) - g.pw),
        y_origin(half_extent(g.dh, g.kh) - g.ph),
        sw(g.sw),
        sh(g.sh) {}

  // Centre of output pixel (ho, wo)'s kernel, as in sample_location.
  void move_to(int64_t ho, int64_t wo) {
    cx = static_cast<T>(wo * sw + x_origin);
    cy = static_cast<T>(ho * sh + y_origin);
  }
};

// Sampling data of points [p, p + L) (one vector of lanes): the arithmetic of
// sample_location and bilinear_corners (dcnv3_math.h), branch-free.
template <typename T, int VB>
DCNV3_INLINE void locate_lanes(const Frame<T>& f, const T* tap_x, const T* tap_y,
                               const T* off, const T* m, Points<T>& pts, int p) {
  using S = Simd<T, VB>;
  using V = typename S::V;
  using I = typename S::I;
  V off_x, off_y;
  S::load_pairs(off + 2 * p, &off_x, &off_y);
  V x = f.cx + (S::load(tap_x + p) + off_x) * f.scale;
  V y = f.cy + (S::load(tap_y + p) + off_y) * f.scale;
  // Points with y <= -1, y >= H, x <= -1, x >= W (or NaN) touch no pixel;
  // they are moved to y = -3, where all four corners fall outside.
  const auto in = (y > T(-1)) & (x > T(-1)) & (y < f.h) & (x < f.w);
  x = S::select(in, x, S::zero());
  y = S::select(in, y, S::zero() + T(-3));
  const V xf = S::floor(x), yf = S::floor(y);
  const I x0 = S::to_int(xf), y0 = S::to_int(yf);
  const V lx = x - xf, ly = y - yf;
  const V hx = T(1) - lx, hy = T(1) - ly;
  S::store(pts.m + p, S::select(in, S::load(m + p), S::zero()));
  S::store(pts.lx + p, lx);
  S::store(pts.ly + p, ly);
  S::store(pts.w[0] + p, hy * hx);
  S::store(pts.w[1] + p, hy * lx);
  S::store(pts.w[2] + p, ly * hx);
  S::store(pts.w[3] + p, ly * lx);
  const auto top = y0 >= 0, bottom = (y0 >= -1) & (y0 < f.last_y);
  const auto left = x0 >= 0, right = x0 < f.last_x;
  const I base = (y0 * f.width + x0) * f.channels;
  const int32_t dx = f.channels, dy = f.width * f.channels;
  S::store(pts.at[0] + p, (top & left) ? base : S::ints(-1));
  S::store(pts.at[1] + p, (top & right) ? base + dx : S::ints(-1));
  S::store(pts.at[2] + p, (bottom & left) ? base + dy : S::ints(-1));
  S::store(pts.at[3] + p, (bottom & right) ? base + dy + dx : S::ints(-1));
  S::store(pts.inside + p, (top & bottom & left & right) ? S::ints(-1) : S::ints(0));
}

// Sampling data of n <= kChunk points of one output pixel, whose kernel
// taps are tap_x/y[p], offsets off[2p], off[2p + 1] and masks m[p]: full
// vectors of VB bytes, then narrower ones down to 16 bytes, then single
// points.
template <typename T, int VB>
DCNV3_INLINE void locate(const Frame<T>& f, const T* tap_x, const T* tap_y,
                         const T* off, const T* m, int n, Points<T>& pts,
                         int p = 0) {
  constexpr int L = VB / static_cast<int>(sizeof(T));
  for (; p + L <= n; p += L) locate_lanes<T, VB>(f, tap_x, tap_y, off, m, pts, p);
  if (p < n && n >= L) {
    // The last few points as one full vector that overlaps the previous one
    // (recomputing a few points is cheaper than the narrow and scalar tails).
    locate_lanes<T, VB>(f, tap_x, tap_y, off, m, pts, n - L);
    return;
  }
  if constexpr (VB > 16) {
    locate<T, VB / 2>(f, tap_x, tap_y, off, m, n, pts, p);
  } else {
    for (; p < n; ++p) {
      locate_lanes<T, sizeof(T)>(f, tap_x, tap_y, off, m, pts, p);
    }
  }
}

// p[0, n) = 0 with vector stores (short runs: cheaper than a memset call).
template <typename T, int VB>
DCNV3_INLINE void zero_run(T* p, int64_t n) {
  using S = Simd<T, VB>;
  int64_t i = 0;
  for (; i + S::L <= n; i += S::L) S::store(p + i, S::zero());
  for (; i < n; ++i) p[i] = T(0);
}

// A block of NCH vectors of VB bytes; VB == sizeof(T) is a scalar block.
template <int VB_, int NCH_>
struct Block {
  static constexpr int kVB = VB_, kNCH = NCH_;
};

// Calls fn(d, Block) for blocks covering channels [0, D): as many 4-, 2- and
// 1-vector blocks as fit, then scalar blocks for the rest.
template <typename T, int VB, typename Fn>
DCNV3_INLINE void for_each_block(int64_t D, Fn&& fn) {
  constexpr int L = VB / static_cast<int>(sizeof(T));
  constexpr int S = static_cast<int>(sizeof(T));
  int64_t d = 0;
  for (; D - d >= 4 * L; d += 4 * L) fn(d, Block<VB, 4>{});
  if (D - d >= 2 * L) fn(d, Block<VB, 2>{}), d += 2 * L;
  if (D - d >= L) fn(d, Block<VB, 1>{}), d += L;
  for (; D - d >= 4; d += 4) fn(d, Block<S, 4>{});
  if (D - d >= 2) fn(d, Block<S, 2>{}), d += 2;
  if (D - d >= 1) fn(d, Block<S, 1>{});
}

// Forward of one block of channels of one group at one output pixel: adds
// (or writes, when `first`) the sum over points [k, k + n) of
// m * (sum over corners of w * x[corner]) to out.
template <typename T, int VB, int NCH>
DCNV3_INLINE void forward_block(const T* __restrict__ xg, const T* zeros,
                                const Points<T>& pts, int k, int n, bool first,
                                T* __restrict__ out) {
  using S = Simd<T, VB>;
  using V = typename S::V;
  constexpr int L = S::L;
  V acc[NCH];
  for (int c = 0; c < NCH; ++c) acc[c] = first ? S::zero() : S::load(out + c * L);
  for (int p = k; p < k + n; ++p) {
    const T* a[4];
    const bool inside = pts.inside[p] != 0;
    for (int q = 0; q < 4; ++q) {
      const int32_t at = pts.at[q][p];
      a[q] = __builtin_expect(inside, 1) ? xg + at : (at >= 0 ? xg + at : zeros);
    }
    const T m = pts.m[p];
    for (int c = 0; c < NCH; ++c) {
      acc[c] += (S::load(a[0] + c * L) * pts.w[0][p] + S::load(a[1] + c * L) * pts.w[1][p] +
                 S::load(a[2] + c * L) * pts.w[2][p] + S::load(a[3] + c * L) * pts.w[3][p]) *
                m;
    }
  }
  for (int c = 0; c < NCH; ++c) S::store(out + c * L, acc[c]);
}

// Backward of one block of channels of one group at one output pixel, for
// points [0, n): adds m * w * grad_out into the input gradient at every corner,
// and the corner dot products <grad_out, x[corner]> of point p to
// dots[4 p + q].
template <typename T, int VB, int NCH>
DCNV3_INLINE void backward_block(const T* __restrict__ xg, T* gxg,
                                 const T* __restrict__ go, const T* zeros,
                                 T* const scratch[4], const Points<T>& pts, int n,
                                 T* dots) {
  using S = Simd<T, VB>;
  using V = typename S::V;
  constexpr int L = S::L;
  V gov[NCH];
  for (int c = 0; c < NCH; ++c) gov[c] = S::load(go + c * L);
  for (int p = 0; p < n; ++p) {
    const T* a[4];
    T* b[4];
    T w[4];
    const bool inside = pts.inside[p] != 0;
    for (int q = 0; q < 4; ++q) {
      const int32_t at = pts.at[q][p];
      if (__builtin_expect(inside, 1)) {
        a[q] = xg + at, b[q] = gxg + at;
      } else {
        a[q] = at >= 0 ? xg + at : zeros;
        b[q] = at >= 0 ? gxg + at : scratch[q];
      }
      w[q] = pts.w[q][p] * pts.m[p];
    }
    V s[4] = {S::zero(), S::zero(), S::zero(), S::zero()};
    for (int c = 0; c < NCH; ++c) {
      for (int q = 0; q < 4; ++q) {
        s[q] += gov[c] * S::load(a[q] + c * L);
        S::store(b[q] + c * L, S::load(b[q] + c * L) + gov[c] * w[q]);
      }
    }
    S::hsum4_add(s[0], s[1], s[2], s[3], dots + 4 * p);
  }
}

// Offset and mask gradients of points [0, n) from their corner dot products
// s_q: d/dm = sum_q w_q s_q, d/dy and d/dx by the derivatives of the weights
// (times the mask, 0 for points outside the image: they have no gradient).
template <typename T>
DCNV3_INLINE void offset_mask_grads(const Points<T>& pts, const T* dots, T scale,
                                    int n, T* __restrict__ goff,
                                    T* __restrict__ gm) {
  const T* m = pts.m;
  for (int p = 0; p < n; ++p) {
    const T lx = pts.lx[p], ly = pts.ly[p];
    const T hx = T(1) - lx, hy = T(1) - ly;
    const T* sp = dots + 4 * p;
    const T s0 = sp[0], s1 = sp[1], s2 = sp[2], s3 = sp[3];
    const T top = hx * s0 + lx * s1, bottom = hx * s2 + lx * s3;
    gm[p] = hy * top + ly * bottom;
    goff[2 * p] = m[p] * (hy * (s1 - s0) + ly * (s3 - s2)) * scale;
    goff[2 * p + 1] = m[p] * (bottom - top) * scale;
  }
}

// Output pixels [begin, end) of the forward pass. A pixel's G * P points
// are located kChunk at a time; each chunk is then worked through group by
// group (a group's points may straddle two chunks).
template <typename T, int VB>
DCNV3_INLINE void forward_range(const Geometry& g, const T* x, const T* off,
                                const T* mask, T* out, int64_t begin,
                                int64_t end) {
  const int64_t C = g.C(), D = g.D, G = g.G, P = g.P();
  const Taps<T> taps(g, G);
  const std::vector<T> zeros(D, T(0));
  Points<T> pts;
  Frame<T> frame(g);
  for (int64_t t = begin; t < end; ++t) {
    const int64_t n = t / (g.Ho * g.Wo), ho = (t / g.Wo) % g.Ho, wo = t % g.Wo;
    frame.move_to(ho, wo);
    const T* xn = x + n * g.H * g.W * C;
    for (int64_t k0 = 0; k0 < G * P; k0 += kChunk) {
      const int count = static_cast<int>(std::min<int64_t>(kChunk, G * P - k0));
      locate<T, VB>(frame, taps.x.data() + k0, taps.y.data() + k0,
                    off + (t * G * P + k0) * 2, mask + t * G * P + k0, count, pts);
      for (int64_t k = k0; k < k0 + count;) {
        const int64_t grp = k / P, stop = std::min((grp + 1) * P, k0 + count);
        for_each_block<T, VB>(D, [&](int64_t d, auto blk) {
          using B = decltype(blk);
          forward_block<T, B::kVB, B::kNCH>(
              xn + grp * D + d, zeros.data() + d, pts, static_cast<int>(k - k0),
              static_cast<int>(stop - k), k == grp * P, out + t * C + grp * D + d);
        });
        k = stop;
      }
    }
  }
}

// (image, group) tasks [begin, end) of the backward pass.
template <typename T, int VB>
DCNV3_INLINE void backward_range(const Geometry& g, const T* x, const T* off,
                                 const T* mask, const T* gout, T* gx,
                                 T* goff, T* gm, int64_t begin, int64_t end) {
  const int64_t C = g.C(), D = g.D, G = g.G, P = g.P();
  const int64_t hw_in = g.H * g.W, hw_out = g.Ho * g.Wo;
  const T scale = static_cast<T>(g.offset_scale);
  const Taps<T> taps(g, 1);
  constexpr int64_t kAhead = 4;  // pixels to prefetch ahead
  std::vector<T> zeros(D, T(0)), scratch_rows(4 * D);
  Points<T> pts;
  Frame<T> frame(g);
  alignas(64) T dots[4 * kChunk];
  for (int64_t task = begin; task < end; ++task) {
    const int64_t n = task / G, grp = task % G;
    const T* xg = x + n * hw_in * C + grp * D;
    T* gxg = gx + n * hw_in * C + grp * D;
    for (int64_t i = 0; i < hw_in; ++i) zero_run<T, VB>(gxg + i * C, D);
    for (int64_t s = 0; s < hw_out; ++s) {
      const int64_t tg = (n * hw_out + s) * G + grp;  // (pixel, group) index
      // This task reads every G-th run of offsets, masks and output
      // gradients: fetch the ones a few pixels ahead.
      if (s + kAhead < hw_out) {
        const int64_t ahead = tg + kAhead * G;
        __builtin_prefetch(off + ahead * P * 2);
        __builtin_prefetch(off + ahead * P * 2 + P * 2 - 1);
        __builtin_prefetch(mask + ahead * P);
        __builtin_prefetch(gout + ahead * D);
      }
      frame.move_to(s / g.Wo, s % g.Wo);
      for (int64_t k0 = 0; k0 < P; k0 += kChunk) {
        const int count = static_cast<int>(std::min<int64_t>(kChunk, P - k0));
        const T* m = mask + tg * P + k0;
        locate<T, VB>(frame, taps.x.data() + k0, taps.y.data() + k0,
                      off + (tg * P + k0) * 2, m, count, pts);
        zero_run<T, VB>(dots, 4 * count);
        for_each_block<T, VB>(D, [&](int64_t d, auto blk) {
          using B = decltype(blk);
          T* const scratch[4] = {scratch_rows.data() + d, scratch_rows.data() + D + d,
                                 scratch_rows.data() + 2 * D + d,
                                 scratch_rows.data() + 3 * D + d};
          backward_block<T, B::kVB, B::kNCH>(xg + d, gxg + d, gout + tg * D + d,
                                             zeros.data() + d, scratch, pts, count,
                                             dots);
        });
        offset_mask_grads<T>(pts, dots, scale, count, goff + (tg * P + k0) * 2,
                             gm + tg * P + k0);
      }
    }
  }
}

// The range workers, one copy per instruction set. `flatten` inlines every
// helper into them, so that all of it is compiled for their target.
#define DCNV3_RANGE_WORKERS(ISA, ATTRIBUTES, VB)                                 \
  template <typename T>                                                          \
  ATTRIBUTES void forward_##ISA(const Geometry& g, const T* x, const T* off,     \
                                const T* mask, T* out, int64_t begin,            \
                                int64_t end) {                                   \
    forward_range<T, VB>(g, x, off, mask, out, begin, end);                      \
  }                                                                              \
  template <typename T>                                                          \
  ATTRIBUTES void backward_##ISA(const Geometry& g, const T* x, const T* off,    \
                                 const T* mask, const T* gout, T* gx, T* goff,   \
                                 T* gm, int64_t begin, int64_t end) {            \
    backward_range<T, VB>(g, x, off, mask, gout, gx, goff, gm, begin, end);      \
  }

DCNV3_RANGE_WORKERS(baseline, __attribute__((flatten)), 16)
#if defined(DCNV3_X86_KERNELS)
DCNV3_RANGE_WORKERS(avx2, __attribute__((flatten, target("avx2,fma"))), 32)
#endif
#undef DCNV3_RANGE_WORKERS

template <typename T>
void forward_kernel(const Geometry& g, const T* x, const T* off, const T* mask,
                    T* out) {
  const Isa isa = current_isa();
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, g.C() * g.P()));
  at::parallel_for(0, g.N * g.Ho * g.Wo, grain, [&](int64_t begin, int64_t end) {
    switch (isa) {
#if defined(DCNV3_X86_KERNELS)
      case Isa::kAvx2: return forward_avx2<T>(g, x, off, mask, out, begin, end);
#endif
      default: return forward_baseline<T>(g, x, off, mask, out, begin, end);
    }
  });
}

template <typename T>
void backward_kernel(const Geometry& g, const T* x, const T* off, const T* mask,
                     const T* gout, T* gx, T* goff, T* gm) {
  const Isa isa = current_isa();
  at::parallel_for(0, g.N * g.G, 1, [&](int64_t begin, int64_t end) {
    switch (isa) {
#if defined(DCNV3_X86_KERNELS)
      case Isa::kAvx2:
        return backward_avx2<T>(g, x, off, mask, gout, gx, goff, gm, begin, end);
#endif
      default:
        return backward_baseline<T>(g, x, off, mask, gout, gx, goff, gm, begin, end);
    }
  });
}

bool is_reduced(const at::Tensor& t) {
  return t.scalar_type() == at::kHalf || t.scalar_type() == at::kBFloat16;
}

void check_cpu_geometry(const Geometry& g) {
  // Element offsets within one image are 32-bit (they vectorise twice as
  // wide as 64-bit ones).
  TORCH_CHECK_VALUE(g.H * g.W * g.C() <= std::numeric_limits<int32_t>::max(),
                    "DCNv3: the CPU kernel takes at most 2^31 - 1 elements per "
                    "image, got H * W * C = ", g.H, " * ", g.W, " * ", g.C());
}

}  // namespace
}  // namespace cpu

at::Tensor forward_cpu(const at::Tensor& input, const at::Tensor& offset,
                       const at::Tensor& mask, const Geometry& g) {
  if (cpu::is_reduced(input)) {
    return forward_cpu(input.to(at::kFloat), offset.to(at::kFloat),
                       mask.to(at::kFloat), g)
        .to(input.scalar_type());
  }
  cpu::check_cpu_geometry(g);
  auto out = at::empty({g.N, g.Ho, g.Wo, g.C()}, input.options());
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "dcnv3_forward_cpu", [&] {
    cpu::forward_kernel<scalar_t>(g, input.data_ptr<scalar_t>(),
                                  offset.data_ptr<scalar_t>(),
                                  mask.data_ptr<scalar_t>(),
                                  out.data_ptr<scalar_t>());
  });
  return out;
}

std::vector<at::Tensor> backward_cpu(const at::Tensor& input,
                                     const at::Tensor& offset,
                                     const at::Tensor& mask,
                                     const at::Tensor& grad_output,
                                     const Geometry& g) {
  if (cpu::is_reduced(input)) {
    auto grads = backward_cpu(input.to(at::kFloat), offset.to(at::kFloat),
                              mask.to(at::kFloat), grad_output.to(at::kFloat), g);
    for (auto& t : grads) t = t.to(input.scalar_type());
    return grads;
  }
  cpu::check_cpu_geometry(g);
  // Every element is written by the kernel (the input gradient is zeroed by
  // the task that owns it).
  auto grad_input = at::empty_like(input);
  auto grad_offset = at::empty_like(offset);
  auto grad_mask = at::empty_like(mask);
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "dcnv3_backward_cpu", [&] {
    cpu::backward_kernel<scalar_t>(
        g, input.data_ptr<scalar_t>(), offset.data_ptr<scalar_t>(),
        mask.data_ptr<scalar_t>(), grad_output.data_ptr<scalar_t>(),
        grad_input.data_ptr<scalar_t>(), grad_offset.data_ptr<scalar_t>(),
        grad_mask.data_ptr<scalar_t>());
  });
  return {grad_input, grad_offset, grad_mask};
}

}  // namespace dcnv3
