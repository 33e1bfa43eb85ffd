// Fixed-width SIMD vectors for the CPU kernels, as GNU vector extensions
// (GCC and Clang): the code is written once and compiles to SSE2, AVX2
// or NEON depending on the target of the function it is inlined into.
//
// Simd<T, VB> is a vector V of VB bytes (L = VB / sizeof(T) lanes) with an
// int32 vector I of as many lanes (pixel indices) and the mask type M of V's
// comparisons. VB == sizeof(T) is the scalar case (V = T, I = int32_t,
// M = bool), used for the tails that are shorter than one vector; the
// kernels are written once for both.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <utility>

#define DCNV3_INLINE inline __attribute__((always_inline))

namespace dcnv3 {
namespace cpu {

template <typename T, int VB, bool kScalar = (VB == sizeof(T))>
struct Simd {
  static constexpr int L = VB / static_cast<int>(sizeof(T));
  typedef T V __attribute__((vector_size(VB)));
  typedef int32_t I __attribute__((vector_size(L * sizeof(int32_t))));
  using M = decltype(V{} < V{});

  static DCNV3_INLINE V zero() { return V{}; }
  static DCNV3_INLINE I ints(int32_t v) { return I{} + v; }
  static DCNV3_INLINE V load(const T* p) {
    V v;
    std::memcpy(&v, p, sizeof(V));  // unaligned load
    return v;
  }
  static DCNV3_INLINE void store(T* p, V v) { std::memcpy(p, &v, sizeof(V)); }
  static DCNV3_INLINE void store(int32_t* p, I v) { std::memcpy(p, &v, sizeof(I)); }

  // Even and odd elements of p[0, 2L): the x and y of interleaved pairs.
  static DCNV3_INLINE void load_pairs(const T* p, V* even, V* odd) {
    const V a = load(p), b = load(p + L);
    pairs(a, b, even, odd, std::make_index_sequence<L>{});
  }
  // Lane-wise m ? a : b for a mask of V's comparisons.
  static DCNV3_INLINE V select(M m, V a, V b) { return m ? a : b; }
  // floor(v) for |v| < 2^31, and as int32.
  static DCNV3_INLINE V floor(V v) {
    const V t = __builtin_convertvector(__builtin_convertvector(v, I), V);
    return v < t ? t - T(1) : t;
  }
  static DCNV3_INLINE I to_int(V v) { return __builtin_convertvector(v, I); }

  // out[i] += sum of the lanes of v_i, for four vectors at once (a
  // transposing add tree: far fewer shuffles than four separate reductions).
  static DCNV3_INLINE void hsum4_add(V a, V b, V c, V d, T* out) {
    if constexpr (L == 2) {
      const auto ab = __builtin_shufflevector(a, b, 0, 2) + __builtin_shufflevector(a, b, 1, 3);
      const auto cd = __builtin_shufflevector(c, d, 0, 2) + __builtin_shufflevector(c, d, 1, 3);
      out[0] += ab[0], out[1] += ab[1], out[2] += cd[0], out[3] += cd[1];
    } else if constexpr (L == 4) {
      const V ab = __builtin_shufflevector(a, b, 0, 1, 4, 5) +
                   __builtin_shufflevector(a, b, 2, 3, 6, 7);
      const V cd = __builtin_shufflevector(c, d, 0, 1, 4, 5) +
                   __builtin_shufflevector(c, d, 2, 3, 6, 7);
      const V r = __builtin_shufflevector(ab, cd, 0, 2, 4, 6) +
                  __builtin_shufflevector(ab, cd, 1, 3, 5, 7);
      add4(r, out);
    } else if constexpr (L == 8) {
#if defined(__x86_64__)
      if constexpr (sizeof(T) == 4) {
        // Only instantiated in AVX2 code: vhaddps is the cheapest tree.
        const V ab = __builtin_ia32_haddps256(a, b), cd = __builtin_ia32_haddps256(c, d);
        const V u = __builtin_ia32_haddps256(ab, cd);  // [a b c d | a b c d]
        add4(__builtin_shufflevector(u, u, 0, 1, 2, 3) +
                 __builtin_shufflevector(u, u, 4, 5, 6, 7),
             out);
        return;
      }
#endif
      // [a | b] and [c | d] folded to 4 lanes each, then to 2, then to 1.
      const V ab = __builtin_shufflevector(a, b, 0, 1, 2, 3, 8, 9, 10, 11) +
                   __builtin_shufflevector(a, b, 4, 5, 6, 7, 12, 13, 14, 15);
      const V cd = __builtin_shufflevector(c, d, 0, 1, 2, 3, 8, 9, 10, 11) +
                   __builtin_shufflevector(c, d, 4, 5, 6, 7, 12, 13, 14, 15);
      const V u = __builtin_shufflevector(ab, cd, 0, 1, 8, 9, 4, 5, 12, 13) +
                  __builtin_shufflevector(ab, cd, 2, 3, 10, 11, 6, 7, 14, 15);
      // u = [a a c c b b d d]
      const auto r = __builtin_shufflevector(u, u, 0, 4, 2, 6) +
                     __builtin_shufflevector(u, u, 1, 5, 3, 7);
      add4(r, out);
    } else {
      static_assert(L == 2 || L == 4 || L == 8, "unsupported width");
    }
  }

 private:
  template <typename V4>
  static DCNV3_INLINE void add4(V4 r, T* out) {
    V4 o;
    std::memcpy(&o, out, sizeof(o));
    o += r;
    std::memcpy(out, &o, sizeof(o));
  }
  template <size_t... K>
  static DCNV3_INLINE void pairs(V a, V b, V* even, V* odd, std::index_sequence<K...>) {
    *even = __builtin_shufflevector(a, b, (2 * K)...);
    *odd = __builtin_shufflevector(a, b, (2 * K + 1)...);
  }
};

// The scalar case: one lane.
template <typename T, int VB>
struct Simd<T, VB, true> {
  static constexpr int L = 1;
  typedef T V;
  typedef int32_t I;
  typedef bool M;

  static DCNV3_INLINE V zero() { return T(0); }
  static DCNV3_INLINE I ints(int32_t v) { return v; }
  static DCNV3_INLINE V load(const T* p) { return *p; }
  static DCNV3_INLINE void store(T* p, V v) { *p = v; }
  static DCNV3_INLINE void store(int32_t* p, I v) { *p = v; }
  static DCNV3_INLINE void load_pairs(const T* p, V* even, V* odd) {
    *even = p[0], *odd = p[1];
  }
  static DCNV3_INLINE V select(M m, V a, V b) { return m ? a : b; }
  static DCNV3_INLINE V floor(V v) { return std::floor(v); }
  static DCNV3_INLINE I to_int(V v) { return static_cast<int32_t>(v); }
  static DCNV3_INLINE void hsum4_add(V a, V b, V c, V d, T* out) {
    out[0] += a, out[1] += b, out[2] += c, out[3] += d;
  }
};

}  // namespace cpu
}  // namespace dcnv3
