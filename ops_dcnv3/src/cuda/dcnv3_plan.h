// Launch planning of the DCNv3 CUDA kernels: vector width, threads per
// group, shared-memory chunking and grid size. Plain C++ without CUDA, used
// by the host launcher (dcnv3_cuda.cpp), the kernels (dcnv3_kernels.cuh) and
// the host emulator (cuda_checks/emulate/ at the repository root).
#pragma once

#include <algorithm>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <initializer_list>

#include "../dcnv3_math.h"

namespace dcnv3 {
namespace cuda {

constexpr int kThreads = 256;  // threads per block, a multiple of 32
constexpr int kWarp = 32;

// Arguments of both kernels besides the tensors.
struct KernelArgs {
  Geometry g;
  int tpg;            // threads per (pixel, group) pair: a power of two <= 32
  int pc;             // sampling points per shared-memory chunk, in [1, P]
  int64_t num_pairs;  // N * Ho * Wo * G
  int64_t num_tiles;  // ceil(num_pairs / (kThreads / tpg))
};

struct Plan {
  int vec = 1;        // channels per vector access (V)
  KernelArgs args{};
  unsigned grid = 0;  // blocks; tiles are strided over them
  size_t smem = 0;    // dynamic shared memory per block, bytes
};

inline bool is_aligned(const void* p, size_t bytes) {
  return reinterpret_cast<uintptr_t>(p) % bytes == 0;
}

// Largest V in {16 / sizeof(T), ..., 2, 1} with D % V == 0 and every pointer
// aligned to V * sizeof(T) bytes. Channel runs start at element
// pixel * G * D + group * D (+ a multiple of V) of these tensors, so the two
// conditions keep every vector access of the kernels aligned.
template <typename T>
int pick_vec_width(int64_t D, std::initializer_list<const void*> ptrs) {
  int v = static_cast<int>(16 / sizeof(T));
  for (; v > 1; v /= 2) {
    if (D % v != 0) continue;
    bool ok = true;
    for (const void* p : ptrs) ok = ok && is_aligned(p, v * sizeof(T));
    if (ok) break;
  }
  return v;
}

// Shared memory one block may use while threads_per_sm / kThreads blocks
// still fit on a multiprocessor (full occupancy): at most the 48 KiB that
// need no opt-in, less the 1 KiB per block the hardware reserves on sm_80+.
inline int64_t smem_budget(int smem_per_sm, int threads_per_sm) {
  const int blocks = std::max(1, threads_per_sm / kThreads);
  const int64_t b = std::min<int64_t>(48 * 1024, smem_per_sm / blocks - 1024);
  return std::max<int64_t>(b, 4 * 1024);
}

// bytes_per_point: shared memory per (pair, point): 3 accumulation-type
// values in forward (offset x, y, mask), 6 in backward (and their grads).
inline Plan make_plan(const Geometry& g, int vec, size_t bytes_per_point,
                      int64_t smem_budget_bytes) {
  Plan plan;
  plan.vec = vec;
  KernelArgs& a = plan.args;
  a.g = g;
  const int64_t nvec = g.D / vec;
  int tpg = 1;
  while (tpg < nvec && tpg < kWarp) tpg *= 2;
  a.tpg = tpg;
  const int64_t ppb = kThreads / tpg;  // pairs per tile
  a.num_pairs = g.N * g.Ho * g.Wo * g.G;
  a.num_tiles = (a.num_pairs + ppb - 1) / ppb;
  const int64_t per_point = ppb * static_cast<int64_t>(bytes_per_point);
  a.pc = static_cast<int>(std::max<int64_t>(
      1, std::min<int64_t>(g.P(), smem_budget_bytes / per_point)));
  // <= the budget, or <= 256 pairs * 48 B = 12 KiB when pc == 1.
  plan.smem = static_cast<size_t>(per_point * a.pc);
  plan.grid = static_cast<unsigned>(std::min<int64_t>(a.num_tiles, INT_MAX));
  return plan;
}

}  // namespace cuda
}  // namespace dcnv3
