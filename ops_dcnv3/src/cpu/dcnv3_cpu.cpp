// Native CPU kernels of DCNv3 (forward and backward), float32 and float64;
// float16/bfloat16 run through float32. Built with -fopenmp: at::parallel_for
// is an OpenMP pragma in ATen's headers, ignored without it.
//
// Forward is parallel over output pixels; each pixel writes its own C output
// channels. Backward is parallel over (image, group) pairs: the input-gradient
// scatter of one pair touches only that image's channels of that group, so
// no two threads write to the same element and no atomics are needed. The
// innermost loops run along the contiguous D channels of a group.
#include <ATen/Parallel.h>

#include <vector>

#include "../dcnv3.h"

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define DCNV3_CLONES __attribute__((target_clones("arch=haswell", "default")))
#else
#define DCNV3_CLONES
#endif
#define DCNV3_ALWAYS_INLINE inline __attribute__((always_inline))

namespace dcnv3 {

namespace {

template <typename T>
struct PointAt {
  Corners<T> c;
  T m;  // mask value
};

template <typename T>
inline PointAt<T> point_at(const Geometry& g, const T* off_px, const T* m_px,
                           int64_t ho, int64_t wo, int64_t grp, int i, int j) {
  const int64_t P = g.P();
  const int64_t p = static_cast<int64_t>(i) * g.kh + j;
  const int64_t k = grp * P + p;
  T y, x;
  sample_location<T>(g, ho, wo, i, j, off_px[2 * k], off_px[2 * k + 1], &y, &x);
  return {bilinear_corners<T>(y, x, g.H, g.W, g.C()), m_px[k]};
}

// Output pixels [begin, end) of the forward pass.
template <typename T>
DCNV3_ALWAYS_INLINE void forward_range(const Geometry& g, const T* __restrict__ x,
                                       const T* __restrict__ off,
                                       const T* __restrict__ mask,
                                       T* __restrict__ out, int64_t begin,
                                       int64_t end) {
  const int64_t C = g.C(), D = g.D, P = g.P();
  const int64_t hw_out = g.Ho * g.Wo;
    for (int64_t t = begin; t < end; ++t) {
      const int64_t n = t / hw_out;
      const int64_t ho = (t % hw_out) / g.Wo;
      const int64_t wo = t % g.Wo;
      const T* xn = x + n * g.H * g.W * C;
      const T* off_px = off + t * g.G * P * 2;
      const T* m_px = mask + t * g.G * P;
      T* o = out + t * C;
      for (int64_t grp = 0; grp < g.G; ++grp) {
        T* og = o + grp * D;
        const T* xg = xn + grp * D;
        for (int64_t d = 0; d < D; ++d) og[d] = T(0);
        for (int i = 0; i < g.kw; ++i) {
          for (int j = 0; j < g.kh; ++j) {
            const PointAt<T> pt = point_at<T>(g, off_px, m_px, ho, wo, grp, i, j);
            if (!pt.c.any) continue;
            const T w0 = pt.m * pt.c.w[0], w1 = pt.m * pt.c.w[1];
            const T w2 = pt.m * pt.c.w[2], w3 = pt.m * pt.c.w[3];
            const T* a0 = xg + pt.c.idx[0];
            const T* a1 = xg + pt.c.idx[1];
            const T* a2 = xg + pt.c.idx[2];
            const T* a3 = xg + pt.c.idx[3];
#pragma omp simd
            for (int64_t d = 0; d < D; ++d) {
              og[d] += w0 * a0[d] + w1 * a1[d] + w2 * a2[d] + w3 * a3[d];
            }
          }
        }
      }
    }
}

// (image, group) tasks [begin, end) of the backward pass.
template <typename T>
DCNV3_ALWAYS_INLINE void backward_range(
    const Geometry& g, const T* __restrict__ x, const T* __restrict__ off,
    const T* __restrict__ mask, const T* __restrict__ gout, T* __restrict__ gx_in,
    T* __restrict__ goff, T* __restrict__ gmask, int64_t begin, int64_t end) {
  const int64_t C = g.C(), D = g.D, P = g.P();
  const int64_t hw_out = g.Ho * g.Wo;
  const T scale = static_cast<T>(g.offset_scale);
  // A zero row read by outside corners, and rows they write to.
  std::vector<T> zero_row(D, T(0)), scratch_rows(4 * D);
  const T* zeros = zero_row.data();
  T* scratch[4] = {scratch_rows.data(), scratch_rows.data() + D,
                   scratch_rows.data() + 2 * D, scratch_rows.data() + 3 * D};
    for (int64_t task = begin; task < end; ++task) {
      const int64_t n = task / g.G;
      const int64_t grp = task % g.G;
      const T* xg = x + n * g.H * g.W * C + grp * D;
      T* gxg = gx_in + n * g.H * g.W * C + grp * D;
      for (int64_t s = 0; s < hw_out; ++s) {
        const int64_t t = n * hw_out + s;
        const int64_t ho = s / g.Wo, wo = s % g.Wo;
        const T* off_px = off + t * g.G * P * 2;
        const T* m_px = mask + t * g.G * P;
        T* goff_px = goff + t * g.G * P * 2;
        T* gm_px = gmask + t * g.G * P;
        const T* go = gout + t * C + grp * D;
        for (int i = 0; i < g.kw; ++i) {
          for (int j = 0; j < g.kh; ++j) {
            const int64_t k = grp * P + static_cast<int64_t>(i) * g.kh + j;
            const PointAt<T> pt = point_at<T>(g, off_px, m_px, ho, wo, grp, i, j);
            if (!pt.c.any) {
              gm_px[k] = T(0);
              goff_px[2 * k] = T(0);
              goff_px[2 * k + 1] = T(0);
              continue;
            }
            // One pass over the group's D channels for the four corners:
            // s[q] = <grad_out, x at q>, and grad_out * m * w[q] scattered
            // into the input gradient. Corners outside the image read a
            // zero row and write a scratch row, which keeps the loop
            // branch-free and its four destinations distinct.
            const Corners<T>& c = pt.c;
            const T* v[4];
            T* dst[4];
            T wq[4];
            for (int q = 0; q < 4; ++q) {
              const bool inside = c.w[q] != T(0) || c.wy[q] != T(0) || c.wx[q] != T(0);
              v[q] = inside ? xg + c.idx[q] : zeros;
              dst[q] = inside ? gxg + c.idx[q] : scratch[q];
              wq[q] = pt.m * c.w[q];
            }
            const T *v0 = v[0], *v1 = v[1], *v2 = v[2], *v3 = v[3];
            T *d0 = dst[0], *d1 = dst[1], *d2 = dst[2], *d3 = dst[3];
            T s0 = T(0), s1 = T(0), s2 = T(0), s3 = T(0);
#pragma omp simd reduction(+ : s0, s1, s2, s3)
            for (int64_t d = 0; d < D; ++d) {
              const T god = go[d];
              s0 += god * v0[d];
              s1 += god * v1[d];
              s2 += god * v2[d];
              s3 += god * v3[d];
              d0[d] += wq[0] * god;
              d1[d] += wq[1] * god;
              d2[d] += wq[2] * god;
              d3[d] += wq[3] * god;
            }
            const T s[4] = {s0, s1, s2, s3};
            T acc_m = T(0), acc_y = T(0), acc_x = T(0);
            for (int q = 0; q < 4; ++q) {
              acc_m += c.w[q] * s[q];
              acc_y += c.wy[q] * s[q];
              acc_x += c.wx[q] * s[q];
            }
            gm_px[k] = acc_m;
            goff_px[2 * k] = pt.m * acc_x * scale;
            goff_px[2 * k + 1] = pt.m * acc_y * scale;
          }
        }
      }
    }
}

// One copy of the range workers per instruction set (AVX2+FMA and the
// baseline), picked at load time (GCC function multi-versioning).
#define DCNV3_RANGE_WORKERS(T)                                                  \
  DCNV3_CLONES void forward_range_impl(const Geometry& g, const T* x,          \
                                       const T* off, const T* mask, T* out,     \
                                       int64_t begin, int64_t end) {            \
    forward_range<T>(g, x, off, mask, out, begin, end);                         \
  }                                                                             \
  DCNV3_CLONES void backward_range_impl(                                        \
      const Geometry& g, const T* x, const T* off, const T* mask,               \
      const T* gout, T* gx_in, T* goff, T* gmask, int64_t begin, int64_t end) { \
    backward_range<T>(g, x, off, mask, gout, gx_in, goff, gmask, begin, end);   \
  }
DCNV3_RANGE_WORKERS(float)
DCNV3_RANGE_WORKERS(double)
#undef DCNV3_RANGE_WORKERS

template <typename T>
void forward_kernel(const Geometry& g, const T* x, const T* off, const T* mask,
                    T* out) {
  const int64_t work = std::max<int64_t>(1, g.C() * g.P());
  const int64_t grain = std::max<int64_t>(1, 16384 / work);
  at::parallel_for(0, g.N * g.Ho * g.Wo, grain, [&](int64_t begin, int64_t end) {
    forward_range_impl(g, x, off, mask, out, begin, end);
  });
}

template <typename T>
void backward_kernel(const Geometry& g, const T* x, const T* off, const T* mask,
                     const T* gout, T* gx_in, T* goff, T* gmask) {
  at::parallel_for(0, g.N * g.G, 1, [&](int64_t begin, int64_t end) {
    backward_range_impl(g, x, off, mask, gout, gx_in, goff, gmask, begin, end);
  });
}

bool is_reduced(const at::Tensor& t) {
  return t.scalar_type() == at::kHalf || t.scalar_type() == at::kBFloat16;
}

}  // namespace

at::Tensor forward_cpu(const at::Tensor& input, const at::Tensor& offset,
                       const at::Tensor& mask, const Geometry& g) {
  if (is_reduced(input)) {
    return forward_cpu(input.to(at::kFloat), offset.to(at::kFloat),
                       mask.to(at::kFloat), g)
        .to(input.scalar_type());
  }
  auto out = at::empty({g.N, g.Ho, g.Wo, g.C()}, input.options());
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "dcnv3_forward_cpu", [&] {
    forward_kernel<scalar_t>(g, input.data_ptr<scalar_t>(),
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
  if (is_reduced(input)) {
    auto grads = backward_cpu(input.to(at::kFloat), offset.to(at::kFloat),
                              mask.to(at::kFloat), grad_output.to(at::kFloat), g);
    for (auto& t : grads) t = t.to(input.scalar_type());
    return grads;
  }
  auto grad_input = at::zeros_like(input);
  auto grad_offset = at::empty_like(offset);
  auto grad_mask = at::empty_like(mask);
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "dcnv3_backward_cpu", [&] {
    backward_kernel<scalar_t>(
        g, input.data_ptr<scalar_t>(), offset.data_ptr<scalar_t>(),
        mask.data_ptr<scalar_t>(), grad_output.data_ptr<scalar_t>(),
        grad_input.data_ptr<scalar_t>(), grad_offset.data_ptr<scalar_t>(),
        grad_mask.data_ptr<scalar_t>());
  });
  return {grad_input, grad_offset, grad_mask};
}

}  // namespace dcnv3
