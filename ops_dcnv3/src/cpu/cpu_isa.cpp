// Run-time choice of the CPU kernels' instruction set (see cpu_isa.h).
#include "cpu_isa.h"

#include <c10/util/Exception.h>

#include <atomic>
#include <cstdlib>

namespace dcnv3 {
namespace cpu {

namespace {

constexpr Isa kAll[] = {Isa::kBaseline, Isa::kAvx2};

bool cpu_has(Isa isa) {
  if (isa == Isa::kBaseline) return true;
#if defined(DCNV3_X86_KERNELS)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

Isa parse(const std::string& name) {
  for (Isa isa : kAll) {
    if (name == isa_name(isa)) return isa;
  }
  TORCH_CHECK_VALUE(false, "DCNv3: unknown CPU instruction set '", name,
                    "'; expected baseline or avx2");
  return Isa::kBaseline;
}

Isa initial_isa() {
  const char* env = std::getenv("DCNV3_CPU_ISA");
  if (env != nullptr && *env != '\0') {
    const Isa isa = parse(env);
    TORCH_CHECK_VALUE(cpu_has(isa), "DCNv3: DCNV3_CPU_ISA=", env,
                      " is not supported by this CPU or build");
    return isa;
  }
  return supported_isas().back();
}

std::atomic<int>& isa_slot() {
  static std::atomic<int> slot{static_cast<int>(initial_isa())};
  return slot;
}

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kAvx2: return "avx2";
    default: return "baseline";
  }
}

std::vector<Isa> supported_isas() {
  std::vector<Isa> out;
  for (Isa isa : kAll) {
    if (cpu_has(isa)) out.push_back(isa);
  }
  return out;
}

Isa current_isa() { return static_cast<Isa>(isa_slot().load()); }

std::vector<std::string> supported_isa_names() {
  std::vector<std::string> out;
  for (Isa isa : supported_isas()) out.emplace_back(isa_name(isa));
  return out;
}

std::string current_isa_name() { return isa_name(current_isa()); }

void set_isa(const std::string& name) {
  const Isa isa = parse(name);
  TORCH_CHECK_VALUE(cpu_has(isa), "DCNv3: CPU instruction set '", name,
                    "' is not supported by this CPU or build");
  isa_slot().store(static_cast<int>(isa));
}

}  // namespace cpu
}  // namespace dcnv3
