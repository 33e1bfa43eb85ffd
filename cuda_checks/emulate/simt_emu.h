// A small software model of the CUDA execution model, used only to run the
// DCNv3 kernels of ops_dcnv3/src/cuda/dcnv3_kernels.cuh on the host (DCNV3_EMULATE) where no
// GPU is available. Every thread of a block is a std::thread; __syncthreads
// is a block-wide barrier and __shfl_xor_sync a warp-wide exchange between
// two barriers, so a kernel that lets some lanes skip a barrier or a shuffle
// deadlocks here (caught by a watchdog) instead of silently working.
// Global-memory accesses are checked against the registered buffers (bounds
// and alignment of each vector access); shared memory is an exactly sized
// heap block (use -fsanitize=address to check its bounds).
#pragma once

#include <barrier>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

struct EmuDim3 {
  unsigned x = 0, y = 1, z = 1;
};

inline thread_local EmuDim3 threadIdx;
inline thread_local EmuDim3 blockIdx;
inline EmuDim3 blockDim;
inline EmuDim3 gridDim;

namespace dcnv3_emu {

struct Block {
  explicit Block(unsigned threads, size_t smem_bytes)
      : bar(threads), xchg(threads), smem(new unsigned char[smem_bytes ? smem_bytes : 1]) {
    for (unsigned w = 0; w < threads / 32; ++w) {
      warp_bars.emplace_back(std::make_unique<std::barrier<>>(32));
    }
  }
  std::barrier<> bar;
  std::vector<std::unique_ptr<std::barrier<>>> warp_bars;
  std::vector<double> xchg;
  std::unique_ptr<unsigned char[]> smem;
};

inline thread_local Block* current_block = nullptr;
inline std::mutex atomic_mutex;

struct Region {
  const char* begin;
  const char* end;
  std::string name;
};
inline std::vector<Region> regions;

inline void register_region(const void* p, size_t bytes, const std::string& name) {
  const char* b = static_cast<const char*>(p);
  regions.push_back({b, b + bytes, name});
}
inline void clear_regions() { regions.clear(); }

[[noreturn]] inline void fail(const char* what, const void* p, size_t bytes) {
  std::fprintf(stderr, "EMULATOR: %s: %zu bytes at %p (thread %u of block %u)\n",
               what, bytes, p, threadIdx.x, blockIdx.x);
  std::abort();
}

template <typename T>
inline void check_access(const T* p, int n) {
  const size_t bytes = sizeof(T) * static_cast<size_t>(n);
  // Vector accesses (Pack<T, n>) must be aligned to their size.
  if (reinterpret_cast<uintptr_t>(p) % bytes != 0) fail("misaligned access", p, bytes);
  const char* b = reinterpret_cast<const char*>(p);
  for (const Region& r : regions) {
    if (b >= r.begin && b + bytes <= r.end) return;
  }
  fail("out-of-bounds global access", p, bytes);
}

// Runs kernel(args...) on a grid of `grid` blocks of `threads` threads; all
// blocks run concurrently (each thread a std::thread).
template <typename Kernel, typename... Args>
void launch(unsigned grid, unsigned threads, size_t smem, Kernel kernel, Args... args) {
  if (threads % 32 != 0) fail("block size not a multiple of 32", nullptr, 0);
  blockDim.x = threads;
  gridDim.x = grid;
  std::vector<std::unique_ptr<Block>> blocks;
  for (unsigned b = 0; b < grid; ++b) blocks.emplace_back(std::make_unique<Block>(threads, smem));
  std::vector<std::thread> pool;
  pool.reserve(static_cast<size_t>(grid) * threads);
  for (unsigned b = 0; b < grid; ++b) {
    for (unsigned t = 0; t < threads; ++t) {
      Block* blk = blocks[b].get();
      pool.emplace_back([=] {
        threadIdx.x = t;
        blockIdx.x = b;
        current_block = blk;
        // A thread that returns while others still wait at a barrier leaves
        // them stuck: the watchdog of the test driver reports the deadlock.
        kernel(args...);
      });
    }
  }
  for (std::thread& th : pool) th.join();
}

}  // namespace dcnv3_emu

#define DCNV3_EMU_CHECK_ACCESS(ptr, n) ::dcnv3_emu::check_access((ptr), (n))

inline void __syncthreads() { dcnv3_emu::current_block->bar.arrive_and_wait(); }

template <typename T>
inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask) {
  if (mask != 0xffffffffu) dcnv3_emu::fail("partial shuffle mask", nullptr, 0);
  dcnv3_emu::Block& b = *dcnv3_emu::current_block;
  const unsigned t = threadIdx.x, w = t / 32, lane = t % 32;
  b.xchg[t] = static_cast<double>(v);  // exact for float and double
  b.warp_bars[w]->arrive_and_wait();
  const T r = static_cast<T>(b.xchg[w * 32 + (lane ^ static_cast<unsigned>(lane_mask))]);
  b.warp_bars[w]->arrive_and_wait();
  return r;
}

template <typename T>
inline T atomicAdd(T* p, T v) {
  std::lock_guard<std::mutex> lock(dcnv3_emu::atomic_mutex);
  const T old = *p;
  *p = old + v;
  return old;
}

namespace dcnv3 {
namespace cuda {
template <typename T>
inline T* shared_memory() {
  return reinterpret_cast<T*>(dcnv3_emu::current_block->smem.get());
}
}  // namespace cuda
}  // namespace dcnv3
