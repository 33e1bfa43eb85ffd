// Which instruction set the CPU kernels run with. Each kernel is compiled
// once per instruction set; the best one the CPU supports is picked at first
// use, or the one named by the DCNV3_CPU_ISA environment variable
// ("baseline", "avx2"), or one set from Python (tests, benchmarks).
//
// There is no AVX-512 copy: for the channel runs of DCNv3 (D = 16 floats in
// most InternImage models) it measured slower than AVX2 on an AVX-512 CPU.
#pragma once

#include <string>
#include <vector>

// x86-64 builds with GCC or Clang get an AVX2 + FMA copy of the kernels.
#if defined(__x86_64__) && defined(__GNUC__)
#define DCNV3_X86_KERNELS 1
#endif

namespace dcnv3 {
namespace cpu {

enum class Isa { kBaseline = 0, kAvx2 = 1 };

// The instruction sets this build has kernels for and this CPU can run.
std::vector<Isa> supported_isas();
// The one in use now.
Isa current_isa();

const char* isa_name(Isa isa);

// Python-facing: names of the supported ones, the current one, and a setter
// that raises ValueError for a name that is unknown or not supported here.
std::vector<std::string> supported_isa_names();
std::string current_isa_name();
void set_isa(const std::string& name);

}  // namespace cpu
}  // namespace dcnv3
