#include "kernels/cpu_features.h"

#include <cpuid.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "kernels/error.h"

namespace tritune {

namespace {

struct Regs {
  unsigned a = 0, b = 0, c = 0, d = 0;
};

Regs cpuid(unsigned leaf, unsigned sub = 0) {
  Regs r;
  __cpuid_count(leaf, sub, r.a, r.b, r.c, r.d);
  return r;
}

uint64_t xgetbv0() {
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return ((uint64_t)hi << 32) | lo;
}

int64_t read_cache_size(int index) {
  std::ifstream f("/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(index) + "/size");
  std::string s;
  if (!(f >> s) || s.empty()) return 0;
  int64_t mult = 1;
  if (s.back() == 'K') mult = 1024;
  if (s.back() == 'M') mult = 1024 * 1024;
  if (mult != 1) s.pop_back();
  return std::atoll(s.c_str()) * mult;
}

int read_cache_level(int index, std::string* type) {
  std::ifstream lf("/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(index) + "/level");
  std::ifstream tf("/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(index) + "/type");
  int level = 0;
  if (!(lf >> level)) return 0;
  tf >> *type;
  return level;
}

// Features required for each level. The AVX-512 list is what Halide's avx512_zen4 feature lets
// LLVM use (skylake + cannonlake + VNNI, BF16, BITALG, VBMI2) plus GFNI, which LLVM picks for
// byte shifts on those CPUs.
const std::vector<std::string> kAvx2Needs = {"avx", "avx2", "fma", "f16c", "sse4_1", "os_avx"};
const std::vector<std::string> kAvx512Needs = {
    "avx512f",       "avx512cd",         "avx512bw",   "avx512dq",    "avx512vl",
    "avx512ifma",    "avx512vbmi",       "avx512vnni", "avx512_bf16", "avx512_vbmi2",
    "avx512_bitalg", "avx512_vpopcntdq", "gfni",       "os_avx512"};

CpuInfo detect() {
  CpuInfo info;
  Regs r0 = cpuid(0);
  char vendor[13] = {0};
  std::memcpy(vendor, &r0.b, 4);
  std::memcpy(vendor + 4, &r0.d, 4);
  std::memcpy(vendor + 8, &r0.c, 4);
  info.vendor = vendor;
  const unsigned max_leaf = r0.a;

  Regs r1 = cpuid(1);
  const int base_family = (r1.a >> 8) & 0xf;
  const int ext_family = (r1.a >> 20) & 0xff;
  const int base_model = (r1.a >> 4) & 0xf;
  const int ext_model = (r1.a >> 16) & 0xf;
  info.family = base_family == 0xf ? base_family + ext_family : base_family;
  info.model =
      (base_family == 0x6 || base_family == 0xf) ? (ext_model << 4) + base_model : base_model;
  info.stepping = r1.a & 0xf;
  info.hypervisor = (r1.c >> 31) & 1;

  std::vector<std::string>& f = info.flags;
  auto add = [&](bool on, const char* name) {
    if (on) f.push_back(name);
  };
  add(r1.d & (1u << 26), "sse2");
  add(r1.c & (1u << 0), "sse3");
  add(r1.c & (1u << 9), "ssse3");
  add(r1.c & (1u << 19), "sse4_1");
  add(r1.c & (1u << 20), "sse4_2");
  add(r1.c & (1u << 23), "popcnt");
  add(r1.c & (1u << 12), "fma");
  add(r1.c & (1u << 28), "avx");
  add(r1.c & (1u << 29), "f16c");
  const bool osxsave = r1.c & (1u << 27);
  uint64_t xcr0 = osxsave ? xgetbv0() : 0;
  add((xcr0 & 0x6) == 0x6, "os_avx");
  add((xcr0 & 0xe6) == 0xe6, "os_avx512");
  if (max_leaf >= 7) {
    Regs r7 = cpuid(7, 0);
    add(r7.b & (1u << 5), "avx2");
    add(r7.b & (1u << 3), "bmi1");
    add(r7.b & (1u << 8), "bmi2");
    add(r7.b & (1u << 16), "avx512f");
    add(r7.b & (1u << 17), "avx512dq");
    add(r7.b & (1u << 21), "avx512ifma");
    add(r7.b & (1u << 28), "avx512cd");
    add(r7.b & (1u << 30), "avx512bw");
    add(r7.b & (1u << 31), "avx512vl");
    add(r7.c & (1u << 1), "avx512vbmi");
    add(r7.c & (1u << 6), "avx512_vbmi2");
    add(r7.c & (1u << 8), "gfni");
    add(r7.c & (1u << 11), "avx512vnni");
    add(r7.c & (1u << 12), "avx512_bitalg");
    add(r7.c & (1u << 14), "avx512_vpopcntdq");
    add(r7.d & (1u << 23), "avx512_fp16");
    add(r7.d & (1u << 24), "amx_tile");
    if (r7.a >= 1) {
      Regs r71 = cpuid(7, 1);
      add(r71.a & (1u << 4), "avxvnni");
      add(r71.a & (1u << 5), "avx512_bf16");
    }
  }
  std::sort(f.begin(), f.end());

  // Brand string.
  Regs e0 = cpuid(0x80000000u);
  if (e0.a >= 0x80000004u) {
    char brand[49] = {0};
    for (unsigned i = 0; i < 3; ++i) {
      Regs b = cpuid(0x80000002u + i);
      std::memcpy(brand + 16 * i, &b.a, 4);
      std::memcpy(brand + 16 * i + 4, &b.b, 4);
      std::memcpy(brand + 16 * i + 8, &b.c, 4);
      std::memcpy(brand + 16 * i + 12, &b.d, 4);
    }
    info.brand = brand;
    while (!info.brand.empty() && info.brand.back() == ' ') info.brand.pop_back();
    while (!info.brand.empty() && info.brand.front() == ' ') info.brand.erase(0, 1);
  }
  info.logical_cpus = (int)std::thread::hardware_concurrency();
  for (int i = 0; i < 8; ++i) {
    std::string type;
    const int level = read_cache_level(i, &type);
    if (level == 1 && type == "Data") info.l1d_bytes = read_cache_size(i);
    if (level == 2) info.l2_bytes = read_cache_size(i);
    if (level == 3) info.l3_bytes = read_cache_size(i);
  }

  auto missing = [&](const std::vector<std::string>& need) {
    std::string m;
    for (const auto& n : need) {
      if (!info.has(n)) m += (m.empty() ? "" : ",") + n;
    }
    return m;
  };
  const std::string miss512 = missing(kAvx512Needs), miss2 = missing(kAvx2Needs);
  if (miss512.empty()) {
    info.best_isa = Isa::kAvx512Vnni;
    info.isa_reason =
        "CPU and OS support AVX-512 F/BW/DQ/VL with VNNI, BF16, VBMI2, BITALG and "
        "GFNI: 4-way u8 x s8 dot products (vpdpbusd) on 512-bit vectors";
  } else if (miss2.empty()) {
    info.best_isa = Isa::kAvx2;
    info.isa_reason = "AVX2+FMA+F16C present; avx512vnni level needs " + miss512;
  } else {
    info.best_isa = Isa::kX86_64;
    info.isa_reason = "no AVX2 level (missing " + miss2 + "): baseline x86-64 kernels";
  }
  return info;
}

}  // namespace

bool CpuInfo::has(const std::string& flag) const {
  return std::binary_search(flags.begin(), flags.end(), flag);
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kX86_64:
      return "x86_64";
    case Isa::kAvx2:
      return "avx2";
    case Isa::kAvx512Vnni:
      return "avx512vnni";
    default:
      return "?";
  }
}

Isa parse_isa(const std::string& name) {
  for (int i = 0; i < (int)Isa::kCount; ++i) {
    if (name == isa_name((Isa)i)) return (Isa)i;
  }
  throw Error("unknown ISA level '" + name + "' (known: x86_64, avx2, avx512vnni)");
}

const char* isa_halide_target(Isa isa) {
  switch (isa) {
    case Isa::kX86_64:
      return "x86-64-linux";
    case Isa::kAvx2:
      return "x86-64-linux-avx-avx2-f16c-fma-sse41";
    case Isa::kAvx512Vnni:
      return "x86-64-linux-avx-avx2-avx512-avx512_cannonlake-avx512_skylake-avx512_zen4-f16c-fma-"
             "sse41";
    default:
      return "";
  }
}

const CpuInfo& cpu_info() {
  static const CpuInfo info = detect();
  return info;
}

bool cpu_supports(Isa isa) {
  return (int)isa <= (int)cpu_info().best_isa;
}

Isa selected_isa() {
  const char* env = std::getenv("TRITUNE_ISA");
  if (env == nullptr || *env == 0) return cpu_info().best_isa;
  const Isa want = parse_isa(env);
  if (!cpu_supports(want)) {
    throw Error(std::string("TRITUNE_ISA=") + env + " is above what this CPU supports (" +
                isa_name(cpu_info().best_isa) + "); unset it or choose a lower level");
  }
  return want;
}

std::string selected_isa_reason() {
  const char* env = std::getenv("TRITUNE_ISA");
  if (env != nullptr && *env != 0) {
    return std::string("forced by TRITUNE_ISA=") + env +
           " (CPU best: " + isa_name(cpu_info().best_isa) + ")";
  }
  return cpu_info().isa_reason;
}

std::string cpu_fingerprint_text() {
  const CpuInfo& c = cpu_info();
  std::ostringstream os;
  os << c.vendor << "|" << c.brand << "|f" << c.family << "m" << c.model << "|cpus"
     << c.logical_cpus << "|l1d" << c.l1d_bytes << "|l2" << c.l2_bytes << "|l3" << c.l3_bytes
     << "|";
  for (const auto& f : c.flags) os << f << ",";
  return os.str();
}

}  // namespace tritune
