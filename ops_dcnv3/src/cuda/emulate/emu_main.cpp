// Host emulation test of the DCNv3 CUDA kernels (no GPU needed).
//
// Compiles ../dcnv3_kernels.cuh for the host with DCNV3_EMULATE (see
// simt_emu.h), runs the forward and backward kernels exactly as the launcher
// plans them (vector width from the real pointers, threads per group,
// shared-memory chunking) on small random cases, and compares every output
// and gradient with a direct double-precision evaluation of the op's definition
// (built on the shared dcnv3_math.h, as the CPU kernel). It checks the work
// decomposition, indexing, shuffles, barriers and the bounds and alignment of
// every global access; it cannot check the CUDA-specific code paths (vector
// atomics of sm_90, the real memory model, performance).
//
// Built and run by `python ops_dcnv3/check_cuda_compile.py --emulate`.
#define DCNV3_EMULATE 1

#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "../dcnv3_kernels.cuh"
#include "../dcnv3_plan.h"

using dcnv3::Corners;
using dcnv3::Geometry;

namespace {

struct Case {
  std::string name;
  int N, H, W, G, D, kh, kw, sh, sw, ph, pw, dh, dw;
  double offset_scale = 1.0;
  double spread = 3.0;
  int misalign = 0;         // element offset of input and grad_output
  int64_t budget = 48 * 1024;  // shared-memory budget (small: force chunks)
  unsigned max_grid = 3;    // blocks actually launched (tile-stride loop)
};

Geometry make_geometry(const Case& c) {
  Geometry g;
  g.N = c.N;
  g.H = c.H;
  g.W = c.W;
  g.G = c.G;
  g.D = c.D;
  g.kh = c.kh;
  g.kw = c.kw;
  g.sh = c.sh;
  g.sw = c.sw;
  g.ph = c.ph;
  g.pw = c.pw;
  g.dh = c.dh;
  g.dw = c.dw;
  g.offset_scale = c.offset_scale;
  g.Ho = (g.H + 2 * g.ph - (g.dh * (g.kh - 1) + 1)) / g.sh + 1;
  g.Wo = (g.W + 2 * g.pw - (g.dw * (g.kw - 1) + 1)) / g.sw + 1;
  return g;
}

// n elements of T at `misalign` elements past a 64-byte boundary, registered
// with the emulator as the only memory the kernels may touch.
template <typename T>
struct Buffer {
  std::unique_ptr<unsigned char[]> raw;
  T* p;
  size_t n;
  Buffer(size_t n_, int misalign, const char* name) : n(n_) {
    raw.reset(new unsigned char[(n + misalign) * sizeof(T) + 128]);
    const uintptr_t a = (reinterpret_cast<uintptr_t>(raw.get()) + 63) & ~uintptr_t(63);
    p = reinterpret_cast<T*>(a) + misalign;
    dcnv3_emu::register_region(p, n * sizeof(T), name);
  }
  void fill(const std::vector<double>& v) {
    for (size_t i = 0; i < n; ++i) p[i] = static_cast<T>(v[i]);
  }
  void fill(double v) {
    for (size_t i = 0; i < n; ++i) p[i] = static_cast<T>(v);
  }
  std::vector<double> get() const {
    std::vector<double> r(n);
    for (size_t i = 0; i < n; ++i) r[i] = static_cast<double>(p[i]);
    return r;
  }
};

struct Grads {
  std::vector<double> out, gx, goff, gmask;
};

// Direct evaluation of the op and its gradients in double.
Grads reference(const Geometry& g, const std::vector<double>& x,
                const std::vector<double>& off, const std::vector<double>& mask,
                const std::vector<double>& gout) {
  const int64_t C = g.C(), P = g.P();
  Grads r;
  r.out.assign(g.N * g.Ho * g.Wo * C, 0.0);
  r.gx.assign(x.size(), 0.0);
  r.goff.assign(off.size(), 0.0);
  r.gmask.assign(mask.size(), 0.0);
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t ho = 0; ho < g.Ho; ++ho)
      for (int64_t wo = 0; wo < g.Wo; ++wo)
        for (int64_t grp = 0; grp < g.G; ++grp)
          for (int i = 0; i < g.kw; ++i)
            for (int j = 0; j < g.kh; ++j) {
              const int64_t pix = (n * g.Ho + ho) * g.Wo + wo;
              const int64_t k = (pix * g.G + grp) * P + int64_t(i) * g.kh + j;
              const double m = mask[k];
              double y, xx;
              dcnv3::sample_location<double>(g, ho, wo, i, j, off[2 * k],
                                             off[2 * k + 1], &y, &xx);
              const Corners<double> c =
                  dcnv3::bilinear_corners<double>(y, xx, g.H, g.W, C);
              double am = 0, ay = 0, ax = 0;
              for (int q = 0; q < 4; ++q) {
                if (c.w[q] == 0 && c.wy[q] == 0 && c.wx[q] == 0) continue;
                const int64_t base = n * g.H * g.W * C + c.idx[q] + grp * g.D;
                double s = 0;
                for (int64_t d = 0; d < g.D; ++d) {
                  const double go = gout[pix * C + grp * g.D + d];
                  r.out[pix * C + grp * g.D + d] += m * c.w[q] * x[base + d];
                  s += go * x[base + d];
                  r.gx[base + d] += m * c.w[q] * go;
                }
                am += c.w[q] * s;
                ay += c.wy[q] * s;
                ax += c.wx[q] * s;
              }
              r.gmask[k] = am;
              r.goff[2 * k] = m * ax * g.offset_scale;
              r.goff[2 * k + 1] = m * ay * g.offset_scale;
            }
  return r;
}

double rel_err(const std::vector<double>& a, const std::vector<double>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i])) return INFINITY;  // unwritten (NaN-filled) element
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

template <typename T>
const char* type_name() {
  if (std::is_same<T, double>::value) return "float64";
  if (std::is_same<T, float>::value) return "float32";
  if (std::is_same<T, c10::Half>::value) return "float16";
  return "bfloat16";
}

template <typename T>
double tolerance() {
  if (std::is_same<T, double>::value) return 1e-12;
  if (std::is_same<T, float>::value) return 2e-5;
  if (std::is_same<T, c10::Half>::value) return 2e-3;
  return 1.5e-2;
}

template <typename T>
bool run_case(const Case& cs, unsigned seed) {
  using acc_t = at::opmath_type<T>;
  const Geometry g = make_geometry(cs);
  const int64_t C = g.C(), P = g.P();
  const size_t nx = g.N * g.H * g.W * C, no = g.N * g.Ho * g.Wo * C;
  const size_t noff = g.N * g.Ho * g.Wo * g.G * P * 2, nm = noff / 2;
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  auto randn = [&](size_t n, double s) {
    std::vector<double> v(n);
    for (double& e : v) e = s * normal(rng);
    return v;
  };

  dcnv3_emu::clear_regions();
  Buffer<T> x(nx, cs.misalign, "input"), off(noff, 0, "offset"), mask(nm, 0, "mask");
  Buffer<T> out(no, 0, "output"), gout(no, cs.misalign, "grad_output");
  Buffer<acc_t> gx(nx, 0, "grad_input");
  Buffer<T> goff(noff, 0, "grad_offset"), gmask(nm, 0, "grad_mask");
  x.fill(randn(nx, 1.0));
  off.fill(randn(noff, cs.spread));
  mask.fill(randn(nm, 1.0));  // raw signed mask: the op is linear in it
  gout.fill(randn(no, 1.0));
  out.fill(NAN);  // every element must be written
  goff.fill(NAN);
  gmask.fill(NAN);
  gx.fill(0.0);

  const int vf = dcnv3::cuda::pick_vec_width<T>(g.D, {x.p, out.p});
  dcnv3::cuda::Plan pf = dcnv3::cuda::make_plan(g, vf, 3 * sizeof(acc_t), cs.budget);
  const unsigned gridf = std::min(pf.grid, cs.max_grid);
  dcnv3_emu::launch(gridf, dcnv3::cuda::kThreads, pf.smem,
                    dcnv3::cuda::dcnv3_forward_kernel<T, 1>, x.p, off.p, mask.p,
                    out.p, pf.args);
  // (re-launched below with the planned vector width; V = 1 first checks
  // that the scalar path agrees as well)
  const std::vector<double> out_scalar = out.get();
  out.fill(NAN);
  switch (vf) {
    case 8:
      if constexpr (sizeof(T) <= 2)
        dcnv3_emu::launch(gridf, dcnv3::cuda::kThreads, pf.smem,
                          dcnv3::cuda::dcnv3_forward_kernel<T, 8>, x.p, off.p,
                          mask.p, out.p, pf.args);
      break;
    case 4:
      if constexpr (sizeof(T) <= 4)
        dcnv3_emu::launch(gridf, dcnv3::cuda::kThreads, pf.smem,
                          dcnv3::cuda::dcnv3_forward_kernel<T, 4>, x.p, off.p,
                          mask.p, out.p, pf.args);
      break;
    case 2:
      dcnv3_emu::launch(gridf, dcnv3::cuda::kThreads, pf.smem,
                        dcnv3::cuda::dcnv3_forward_kernel<T, 2>, x.p, off.p,
                        mask.p, out.p, pf.args);
      break;
    default:
      out.fill(out_scalar);
  }

  const int vb = dcnv3::cuda::pick_vec_width<T>(g.D, {x.p, gout.p});
  dcnv3::cuda::Plan pb = dcnv3::cuda::make_plan(g, vb, 6 * sizeof(acc_t), cs.budget);
  const unsigned gridb = std::min(pb.grid, cs.max_grid);
  auto bwd = [&](auto kernel) {
    dcnv3_emu::launch(gridb, dcnv3::cuda::kThreads, pb.smem, kernel, x.p, off.p,
                      mask.p, gout.p, gx.p, goff.p, gmask.p, pb.args);
  };
  switch (vb) {
    case 8:
      if constexpr (sizeof(T) <= 2) bwd(dcnv3::cuda::dcnv3_backward_kernel<T, 8>);
      break;
    case 4:
      if constexpr (sizeof(T) <= 4) bwd(dcnv3::cuda::dcnv3_backward_kernel<T, 4>);
      break;
    case 2:
      bwd(dcnv3::cuda::dcnv3_backward_kernel<T, 2>);
      break;
    default:
      bwd(dcnv3::cuda::dcnv3_backward_kernel<T, 1>);
  }

  const Grads ref = reference(g, x.get(), off.get(), mask.get(), gout.get());
  const double e_out = rel_err(out.get(), ref.out);
  const double e_out1 = rel_err(out_scalar, ref.out);
  const double e_gx = rel_err(gx.get(), ref.gx);
  const double e_goff = rel_err(goff.get(), ref.goff);
  const double e_gm = rel_err(gmask.get(), ref.gmask);
  const double tol = tolerance<T>();
  const bool ok = e_out < tol && e_out1 < tol && e_gx < tol && e_goff < tol && e_gm < tol;
  std::printf("%-4s %-8s %-28s V=%d/%d tpg=%d/%d pc=%d/%d of P=%lld grid=%u/%u  "
              "err out %.1e (V=1 %.1e) gin %.1e goff %.1e gmask %.1e\n",
              ok ? "ok" : "FAIL", type_name<T>(), cs.name.c_str(), vf, vb,
              pf.args.tpg, pb.args.tpg, pf.args.pc, pb.args.pc,
              static_cast<long long>(P), gridf, gridb, e_out, e_out1, e_gx,
              e_goff, e_gm);
  std::fflush(stdout);
  return ok;
}

}  // namespace

int main() {
  alarm(900);  // a deadlock (non-uniform barrier or shuffle) ends the run
  // name, N, H, W, G, D, kh, kw, sh, sw, ph, pw, dh, dw
  std::vector<Case> cases = {
      {"D16 k3 (stage-1 like)", 2, 7, 9, 4, 16, 3, 3, 1, 1, 1, 1, 1, 1},
      {"D5 k5 pad2 os2", 3, 6, 5, 3, 5, 5, 5, 1, 1, 2, 2, 1, 1, 2.0},
      {"D6 stride2 dil2", 1, 10, 9, 2, 6, 3, 3, 2, 2, 1, 1, 2, 2},
      {"D1 G6 far", 2, 6, 6, 6, 1, 3, 3, 1, 1, 0, 0, 1, 1, 1.0, 20.0},
      {"D3 odd batch 5", 5, 4, 5, 2, 3, 3, 3, 1, 1, 1, 1, 1, 1},
      {"D8 k1 os0.5", 2, 5, 7, 1, 8, 1, 1, 1, 1, 0, 0, 1, 1, 0.5},
      {"D32 G2", 1, 6, 7, 2, 32, 3, 3, 1, 1, 1, 1, 1, 1},
      {"D64 (2 vectors/lane if V=1)", 1, 5, 4, 1, 64, 3, 3, 1, 1, 1, 1, 1, 1},
      {"D200 (kiters 2, idle lanes)", 1, 4, 3, 1, 200, 3, 3, 1, 1, 1, 1, 1, 1},
      {"kh2 kw3 uneven stride/pad", 2, 6, 7, 2, 4, 2, 3, 1, 2, 0, 1, 1, 2},
  };
  std::vector<Case> extra;
  for (const Case& c : cases) {
    Case m = c;  // misaligned input and grad_output: scalar fallback
    m.name = c.name.substr(0, 18) + " misaligned";
    m.misalign = 1;
    extra.push_back(m);
  }
  Case chunk1 = cases[0];  // one point per shared-memory chunk
  chunk1.name = "D16 k3 pc=1";
  chunk1.budget = 1;
  extra.push_back(chunk1);
  Case chunk4 = cases[1];  // chunks of 4 of 25 points (last one partial)
  chunk4.name = "D5 k5 chunked";
  chunk4.budget = 4 * (256 / 8) * 6 * 8;  // 4 to 16 points per chunk
  extra.push_back(chunk4);
  Case chunk_wide = cases[8];
  chunk_wide.name = "D200 chunked";
  chunk_wide.budget = 2 * (256 / 32) * 6 * 8;
  extra.push_back(chunk_wide);
  Case one_block = cases[4];
  one_block.name = "D3 batch 5 one block";
  one_block.max_grid = 1;
  extra.push_back(one_block);
  Case outside = cases[0];
  outside.name = "all points outside";
  outside.spread = 1e6;
  extra.push_back(outside);
  cases.insert(cases.end(), extra.begin(), extra.end());

  int failures = 0;
  unsigned seed = 1;
  for (const Case& c : cases) {
    failures += !run_case<double>(c, seed);
    failures += !run_case<float>(c, seed);
    failures += !run_case<c10::Half>(c, seed);
    failures += !run_case<c10::BFloat16>(c, seed);
    ++seed;
  }
  std::printf("%s: %d failure(s) in %zu cases x 4 dtypes\n",
              failures ? "FAILED" : "PASSED", failures, cases.size());
  return failures ? 1 : 0;
}
