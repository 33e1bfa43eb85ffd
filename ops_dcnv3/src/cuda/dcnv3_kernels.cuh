// CUDA kernels of DCNv3 (forward and backward), all dtypes.
//
// The sampling geometry and the bilinear weights come from ../dcnv3_math.h
// (whose formulas the CPU kernel restates vectorised). This header holds only
// the kernels and the device helpers they need. It is written against a
// handful of CUDA primitives (threadIdx, blockIdx, __syncthreads,
// __shfl_xor_sync, atomicAdd and the dynamic shared memory) so that the very
// same source also compiles for the host under DCNV3_EMULATE, where the
// emulator (cuda_checks/emulate/ at the repository root, not part of the
// package) runs it on a software SIMT model with bounds checks (see
// simt_emu.h there). Without DCNV3_EMULATE it is plain CUDA.
//
// Work decomposition
// ------------------
// A "pair" is one (output pixel, group): D output channels that share the P
// sampling points of that group. Pairs are numbered pair = pixel * G + group,
// which is also the order of their data in memory:
//   output / grad_output  channels of the pair:  [pair * D, pair * D + D)
//   offset of the pair:                          [pair * P * 2, ... + P * 2)
//   mask of the pair:                            [pair * P, ... + P)
// so a run of consecutive pairs owns one contiguous slice of each tensor.
//
// Each pair is covered by TPG ("threads per group", a power of two <= 32)
// consecutive threads of one warp. Thread `lane` of the pair handles the
// channel vectors v = lane, lane + TPG, ... (v < D / V), each vector being V
// consecutive channels (V * sizeof(scalar_t) <= 16 bytes) loaded and stored
// with one vector instruction along the NHWC channel run. The host picks the
// largest V that divides D and keeps every vector access aligned (else V = 1,
// the scalar fallback), then TPG = min(32, next_pow2(D / V)); lanes with
// v >= D / V (e.g. D = 5 -> V = 1, TPG = 8: 3 idle lanes) only take part in
// the synchronisation.
//
// A block of kThreads threads handles kThreads / TPG consecutive pairs (a
// "tile"), tiles are strided over the grid. The tile's offsets and masks
// (one contiguous slice each) are first staged in shared memory with
// coalesced loads, converted to the accumulation type (float for
// half/bfloat16/float, double for double): every offset and mask value is
// read from global memory once. Each of the TPG threads of a pair then reads
// the pair's (offset_x, offset_y, mask) triples from shared memory (a
// broadcast) and computes the sampling location and the bilinear corners
// itself: the TPG-fold redundant arithmetic (a few dozen instructions per
// point) is cheaper than publishing four 64-bit indices and twelve weights
// per point through shared memory, and the op is bound by memory traffic.
// When the P points of all the tile's pairs do not fit the shared-memory
// budget, they are processed in chunks of `pc` points.
//
// Forward: each thread accumulates its V channels over the P points in
// registers (float32 for half types) and writes them once; nothing is
// zero-filled beforehand (the output is fully overwritten).
//
// Backward: per point, each thread computes for its V channels the dot
// products s_q = <grad_out, x at corner q> of the four corners, forms the
// partial mask/offset gradients from them, and scatters grad_out * m * w_q
// into the input gradient with atomicAdd (a float32 buffer for half types,
// cast once at the end by the host; on sm_90+ as float2/float4 vector
// atomics). The partial mask/offset gradients are summed over the TPG lanes
// of the pair with a butterfly of warp shuffles (no atomics), lane 0 keeps
// the result in shared memory, and the tile's offset and mask gradients are
// written back with coalesced stores.
//
// All element offsets are 64-bit (tensors may exceed 2^31 elements).
#pragma once

#include <ATen/OpMathType.h>

#include <cstdint>

#include "../dcnv3_math.h"
#include "dcnv3_plan.h"

#if defined(DCNV3_EMULATE)
#include "simt_emu.h"  // cuda_checks/emulate/, on the emulator's include path
#define DCNV3_DEVICE inline
#define DCNV3_GLOBAL
#else
#define DCNV3_DEVICE __device__ __forceinline__
#define DCNV3_GLOBAL __global__ __launch_bounds__(::dcnv3::cuda::kThreads)
#define DCNV3_EMU_CHECK_ACCESS(ptr, n) ((void)0)
#endif

// float2/float4 atomicAdd exist on sm_90+ (CUDA 12.x headers and later).
#if !defined(DCNV3_EMULATE) && !defined(DCNV3_NO_VECTOR_ATOMICS) &&      \
    defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900 &&                    \
    (__CUDACC_VER_MAJOR__ > 12 ||                                        \
     (__CUDACC_VER_MAJOR__ == 12 && __CUDACC_VER_MINOR__ >= 4))
#define DCNV3_VECTOR_ATOMICS 1
#else
#define DCNV3_VECTOR_ATOMICS 0
#endif

namespace dcnv3 {
namespace cuda {

#if !defined(DCNV3_EMULATE)
// The dynamic shared memory of the block, as an array of T.
template <typename T>
__device__ __forceinline__ T* shared_memory() {
  extern __shared__ __align__(16) unsigned char dcnv3_smem[];
  return reinterpret_cast<T*>(dcnv3_smem);
}
#endif

// V consecutive elements, aligned to their total size (<= 16 bytes), so that
// a load or store of one Pack is a single vector instruction.
template <typename T, int V>
struct alignas(sizeof(T) * V) Pack {
  T v[V];
};

template <int V, typename T, typename A>
DCNV3_DEVICE void load_vec(const T* __restrict__ p, A (&out)[V]) {
  DCNV3_EMU_CHECK_ACCESS(p, V);
  const Pack<T, V> pk = *reinterpret_cast<const Pack<T, V>*>(p);
#pragma unroll
  for (int e = 0; e < V; ++e) out[e] = static_cast<A>(pk.v[e]);
}

template <int V, typename T, typename A>
DCNV3_DEVICE void store_vec(T* __restrict__ p, const A (&in)[V]) {
  DCNV3_EMU_CHECK_ACCESS(p, V);
  Pack<T, V> pk;
#pragma unroll
  for (int e = 0; e < V; ++e) pk.v[e] = static_cast<T>(in[e]);
  *reinterpret_cast<Pack<T, V>*>(p) = pk;
}

// p[e] += val[e] atomically for e < V (p is aligned to V elements).
template <int V>
DCNV3_DEVICE void atomic_add_vec(float* p, const float (&val)[V]) {
  DCNV3_EMU_CHECK_ACCESS(p, V);
#if DCNV3_VECTOR_ATOMICS
  if constexpr (V % 4 == 0) {
#pragma unroll
    for (int t = 0; t < V / 4; ++t) {
      atomicAdd(reinterpret_cast<float4*>(p) + t,
                make_float4(val[4 * t], val[4 * t + 1], val[4 * t + 2],
                            val[4 * t + 3]));
    }
  } else if constexpr (V == 2) {
    atomicAdd(reinterpret_cast<float2*>(p), make_float2(val[0], val[1]));
  } else {
#pragma unroll
    for (int e = 0; e < V; ++e) atomicAdd(p + e, val[e]);
  }
#else
#pragma unroll
  for (int e = 0; e < V; ++e) atomicAdd(p + e, val[e]);
#endif
}

template <int V>
DCNV3_DEVICE void atomic_add_vec(double* p, const double (&val)[V]) {
  DCNV3_EMU_CHECK_ACCESS(p, V);
#pragma unroll
  for (int e = 0; e < V; ++e) atomicAdd(p + e, val[e]);
}

// Sum of v over the `tpg` lanes of a pair (aligned runs of tpg lanes, tpg a
// power of two <= 32); every lane gets the sum. All 32 lanes of the warp
// must call it together (the callers' loops are uniform across the block).
template <typename A>
DCNV3_DEVICE A group_sum(A v, int tpg) {
  for (int o = tpg >> 1; o > 0; o >>= 1) {
    v += __shfl_xor_sync(0xffffffffu, v, o);
  }
  return v;
}

// Stages points [p0, p0 + pcur) of pairs [pair0, pair0 + np) in shared
// memory: s[(l * pc + pp) * 3 + {0, 1, 2}] = (offset_x, offset_y, mask) of
// pair pair0 + l, point p0 + pp. Consecutive threads read consecutive
// elements of global memory (one contiguous run when pcur == P).
template <typename scalar_t, typename acc_t>
DCNV3_DEVICE void stage_points(acc_t* __restrict__ s,
                               const scalar_t* __restrict__ offset,
                               const scalar_t* __restrict__ mask,
                               int64_t P, int64_t pair0, int np, int64_t p0,
                               int pcur, int pc) {
  const int n_off = np * pcur * 2;
  for (int e = threadIdx.x; e < n_off; e += blockDim.x) {
    const int l = e / (2 * pcur);
    const int r = e - l * (2 * pcur);
    const scalar_t* src = offset + (pair0 + l) * P * 2 + p0 * 2 + r;
    DCNV3_EMU_CHECK_ACCESS(src, 1);
    s[(l * pc + (r >> 1)) * 3 + (r & 1)] = static_cast<acc_t>(*src);
  }
  const int n_mask = np * pcur;
  for (int e = threadIdx.x; e < n_mask; e += blockDim.x) {
    const int l = e / pcur;
    const int r = e - l * pcur;
    const scalar_t* src = mask + (pair0 + l) * P + p0 + r;
    DCNV3_EMU_CHECK_ACCESS(src, 1);
    s[(l * pc + r) * 3 + 2] = static_cast<acc_t>(*src);
  }
}

// The pair's output pixel (n, ho, wo) and group.
struct PairPos {
  int64_t n, ho, wo, grp;
};

DCNV3_DEVICE PairPos decode_pair(const Geometry& g, int64_t pair) {
  PairPos r;
  const int64_t pix = pair / g.G;
  r.grp = pair - pix * g.G;
  const int64_t hw = g.Ho * g.Wo;
  r.n = pix / hw;
  const int64_t s = pix - r.n * hw;
  r.ho = s / g.Wo;
  r.wo = s - r.ho * g.Wo;
  return r;
}

// output[n, ho, wo, g*D + d] = sum_p mask * bilinear(input[n, :, :, g*D + d]).
// Dynamic shared memory: (kThreads / tpg) * pc * 3 acc_t.
template <typename scalar_t, int V>
DCNV3_GLOBAL void dcnv3_forward_kernel(const scalar_t* __restrict__ input,
                                       const scalar_t* __restrict__ offset,
                                       const scalar_t* __restrict__ mask,
                                       scalar_t* __restrict__ output,
                                       const KernelArgs a) {
  using acc_t = at::opmath_type<scalar_t>;
  acc_t* s_pts = shared_memory<acc_t>();
  const Geometry& g = a.g;
  const int tpg = a.tpg, pc = a.pc;
  const int ppb = static_cast<int>(blockDim.x) / tpg;  // pairs per tile
  const int pl = static_cast<int>(threadIdx.x) / tpg;  // pair within tile
  const int lane = static_cast<int>(threadIdx.x) - pl * tpg;
  const int64_t C = g.C(), D = g.D, P = g.P();
  const int64_t nvec = D / V;
  const int kiters = static_cast<int>((nvec + tpg - 1) / tpg);
  const bool one_chunk = pc >= P;
  const acc_t* sp = s_pts + static_cast<int64_t>(pl) * pc * 3;

  for (int64_t tile = blockIdx.x; tile < a.num_tiles; tile += gridDim.x) {
    const int64_t pair0 = tile * ppb;
    const int np = static_cast<int>(
        a.num_pairs - pair0 < ppb ? a.num_pairs - pair0 : ppb);
    const bool active = pl < np;
    const int64_t pair = pair0 + pl;
    PairPos pos{0, 0, 0, 0};
    if (active) pos = decode_pair(g, pair);
    const scalar_t* x_g = input + pos.n * g.H * g.W * C + pos.grp * D;

    for (int k = 0; k < kiters; ++k) {
      const int64_t v = lane + static_cast<int64_t>(k) * tpg;
      const bool vec_active = active && v < nvec;
      acc_t acc[V];
#pragma unroll
      for (int e = 0; e < V; ++e) acc[e] = acc_t(0);

      for (int64_t p0 = 0; p0 < P; p0 += pc) {
        const int pcur = static_cast<int>(P - p0 < pc ? P - p0 : pc);
        // With a single chunk the staged points serve every k of the tile.
        if (!one_chunk || k == 0) {
          __syncthreads();  // everyone is done with the previous contents
          stage_points<scalar_t, acc_t>(s_pts, offset, mask, P, pair0, np,
                                        p0, pcur, pc);
          __syncthreads();
        }
        if (!vec_active) continue;
        int i = static_cast<int>(p0 / g.kh);
        int j = static_cast<int>(p0 - static_cast<int64_t>(i) * g.kh);
        for (int pp = 0; pp < pcur; ++pp) {
          const acc_t ox = sp[pp * 3], oy = sp[pp * 3 + 1], m = sp[pp * 3 + 2];
          acc_t ys, xs;
          sample_location<acc_t>(g, pos.ho, pos.wo, i, j, ox, oy, &ys, &xs);
          if (++j == g.kh) {
            j = 0;
            ++i;
          }
          const Corners<acc_t> c = bilinear_corners<acc_t>(ys, xs, g.H, g.W, C);
          if (!c.any) continue;  // outside: adds exactly 0, whatever m is
          // m * (bilinear sum), as in the definition (and the CPU kernel):
          // corners outside are skipped, so an infinite m meets no 0 weight.
          acc_t sample[V];
#pragma unroll
          for (int e = 0; e < V; ++e) sample[e] = acc_t(0);
#pragma unroll
          for (int q = 0; q < 4; ++q) {
            if (!c.valid[q]) continue;
            acc_t val[V];
            load_vec<V>(x_g + c.idx[q] + v * V, val);
#pragma unroll
            for (int e = 0; e < V; ++e) sample[e] += c.w[q] * val[e];
          }
#pragma unroll
          for (int e = 0; e < V; ++e) acc[e] += m * sample[e];
        }
      }
      if (vec_active) store_vec<V>(output + pair * D + v * V, acc);
    }
  }
}

// Gradients of input, offset and mask. grad_input (acc_t: a float32 buffer
// for half types) must be zero-filled; grad_offset and grad_mask are fully
// overwritten. Dynamic shared memory: (kThreads / tpg) * pc * 6 acc_t.
template <typename scalar_t, int V>
DCNV3_GLOBAL void dcnv3_backward_kernel(
    const scalar_t* __restrict__ input, const scalar_t* __restrict__ offset,
    const scalar_t* __restrict__ mask, const scalar_t* __restrict__ grad_output,
    at::opmath_type<scalar_t>* __restrict__ grad_input,
    scalar_t* __restrict__ grad_offset, scalar_t* __restrict__ grad_mask,
    const KernelArgs a) {
  using acc_t = at::opmath_type<scalar_t>;
  const Geometry& g = a.g;
  const int tpg = a.tpg, pc = a.pc;
  const int ppb = static_cast<int>(blockDim.x) / tpg;
  const int pl = static_cast<int>(threadIdx.x) / tpg;
  const int lane = static_cast<int>(threadIdx.x) - pl * tpg;
  const int64_t C = g.C(), D = g.D, P = g.P();
  const int64_t nvec = D / V;
  const int kiters = static_cast<int>((nvec + tpg - 1) / tpg);
  const acc_t scale = static_cast<acc_t>(g.offset_scale);
  acc_t* s_pts = shared_memory<acc_t>();                   // staged inputs
  acc_t* s_grad = s_pts + static_cast<int64_t>(ppb) * pc * 3;  // their grads
  const acc_t* sp = s_pts + static_cast<int64_t>(pl) * pc * 3;
  acc_t* sg = s_grad + static_cast<int64_t>(pl) * pc * 3;

  for (int64_t tile = blockIdx.x; tile < a.num_tiles; tile += gridDim.x) {
    const int64_t pair0 = tile * ppb;
    const int np = static_cast<int>(
        a.num_pairs - pair0 < ppb ? a.num_pairs - pair0 : ppb);
    const bool active = pl < np;
    const int64_t pair = pair0 + pl;
    PairPos pos{0, 0, 0, 0};
    if (active) pos = decode_pair(g, pair);
    const int64_t img = pos.n * g.H * g.W * C + pos.grp * D;
    const scalar_t* x_g = input + img;
    acc_t* gx_g = grad_input + img;

    for (int64_t p0 = 0; p0 < P; p0 += pc) {
      const int pcur = static_cast<int>(P - p0 < pc ? P - p0 : pc);
      __syncthreads();  // previous chunk's s_pts / s_grad are consumed
      stage_points<scalar_t, acc_t>(s_pts, offset, mask, P, pair0, np, p0,
                                    pcur, pc);
      __syncthreads();

      for (int k = 0; k < kiters; ++k) {
        const int64_t v = lane + static_cast<int64_t>(k) * tpg;
        const bool vec_active = active && v < nvec;
        acc_t go[V];
        if (vec_active) {
          load_vec<V>(grad_output + pair * D + v * V, go);
        } else {
#pragma unroll
          for (int e = 0; e < V; ++e) go[e] = acc_t(0);
        }
        int i = static_cast<int>(p0 / g.kh);
        int j = static_cast<int>(p0 - static_cast<int64_t>(i) * g.kh);
        // Uniform loop: every thread of the block runs all pcur iterations
        // (the shuffles in group_sum need all 32 lanes of each warp).
        for (int pp = 0; pp < pcur; ++pp) {
          acc_t g_m = acc_t(0), g_x = acc_t(0), g_y = acc_t(0), m = acc_t(0);
          if (vec_active) {
            const acc_t ox = sp[pp * 3], oy = sp[pp * 3 + 1];
            m = sp[pp * 3 + 2];
            acc_t ys, xs;
            sample_location<acc_t>(g, pos.ho, pos.wo, i, j, ox, oy, &ys, &xs);
            const Corners<acc_t> c =
                bilinear_corners<acc_t>(ys, xs, g.H, g.W, C);
            // A point outside has no gradients, whatever its mask.
            if (!c.any) m = acc_t(0);
            if (c.any) {
#pragma unroll
              for (int q = 0; q < 4; ++q) {
                if (!c.valid[q]) continue;  // touches no pixel
                acc_t val[V];
                load_vec<V>(x_g + c.idx[q] + v * V, val);
                acc_t s = acc_t(0);
#pragma unroll
                for (int e = 0; e < V; ++e) s += go[e] * val[e];
                g_m += c.w[q] * s;
                g_y += c.wy[q] * s;
                g_x += c.wx[q] * s;
                const acc_t wq = m * c.w[q];
                if (wq != acc_t(0)) {
                  acc_t add[V];
#pragma unroll
                  for (int e = 0; e < V; ++e) add[e] = wq * go[e];
                  atomic_add_vec<V>(gx_g + c.idx[q] + v * V, add);
                }
              }
            }
          }
          if (++j == g.kh) {
            j = 0;
            ++i;
          }
          g_m = group_sum(g_m, tpg);
          g_x = group_sum(g_x, tpg);
          g_y = group_sum(g_y, tpg);
          // Lane 0 of an active pair is always vec_active (v = k * tpg < nvec
          // for k < kiters), so its m is the pair's mask value.
          if (active && lane == 0) {
            const acc_t vx = g_x * m * scale, vy = g_y * m * scale;
            acc_t* d = sg + pp * 3;
            if (k == 0) {
              d[0] = vx;
              d[1] = vy;
              d[2] = g_m;
            } else {
              d[0] += vx;
              d[1] += vy;
              d[2] += g_m;
            }
          }
        }
      }

      __syncthreads();  // s_grad of the chunk is complete
      const int n_off = np * pcur * 2;
      for (int e = threadIdx.x; e < n_off; e += blockDim.x) {
        const int l = e / (2 * pcur);
        const int r = e - l * (2 * pcur);
        scalar_t* dst = grad_offset + (pair0 + l) * P * 2 + p0 * 2 + r;
        DCNV3_EMU_CHECK_ACCESS(dst, 1);
        *dst = static_cast<scalar_t>(s_grad[(l * pc + (r >> 1)) * 3 + (r & 1)]);
      }
      const int n_mask = np * pcur;
      for (int e = threadIdx.x; e < n_mask; e += blockDim.x) {
        const int l = e / pcur;
        const int r = e - l * pcur;
        scalar_t* dst = grad_mask + (pair0 + l) * P + p0 + r;
        DCNV3_EMU_CHECK_ACCESS(dst, 1);
        *dst = static_cast<scalar_t>(s_grad[(l * pc + r) * 3 + 2]);
      }
    }
  }
}

}  // namespace cuda
}  // namespace dcnv3
