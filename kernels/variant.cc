// AOT variant table, JIT compilation of search-space points (cached in memory and on disk as
// shared objects that use the executable's Halide runtime; the compiler itself is the
// separately loaded module kernels/jit/jit_module.cc), and the family calling wrappers.
#include "kernels/variant.h"

#include <dlfcn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

#include "HalideBuffer.h"
#include "HalideRuntime.h"
#include "kernels/cache_dir.h"
#include "kernels/error.h"
#include "kernels/thread_pool.h"

// AOT variant prototypes, from the generated list (abi 3 = fp, 4 = i2s).
#define TRITUNE_AOT_VARIANT_DECL3(name) \
  extern "C" int name(halide_buffer_t*, halide_buffer_t*, halide_buffer_t*);
#define TRITUNE_AOT_VARIANT_DECL4(name) \
  extern "C" int name(halide_buffer_t*, halide_buffer_t*, halide_buffer_t*, halide_buffer_t*);
#define TRITUNE_AOT_VARIANT(name, abi) TRITUNE_AOT_VARIANT_DECL##abi(name)
#include "tritune_aot_variants.inc"
#undef TRITUNE_AOT_VARIANT

namespace tritune {

namespace {

std::vector<Variant> make_aot_table() {
  std::vector<Variant> v;
#define TRITUNE_AOT_VARIANT(name, abi) \
  v.push_back(Variant{#name, VariantName{}, nullptr, reinterpret_cast<void*>(&name), false});
#include "tritune_aot_variants.inc"
#undef TRITUNE_AOT_VARIANT
  for (auto& x : v) {
    x.spec = parse_variant_name(x.name);
    x.space = &find_space(x.spec.family, x.spec.op);
  }
  return v;
}

std::mutex g_jit_mutex;
std::deque<Variant> g_jit_variants;  // stable addresses

std::string hex64(uint64_t h) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", (unsigned long long)h);
  return buf;
}

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

// The compiler module, loaded on first use (callers hold g_jit_mutex).
using JitCompileFn = int (*)(const char*, const char*, int, const char* const*, const char* const*,
                             const char*, const char*, char*, size_t);
JitCompileFn jit_compiler() {
  static std::map<std::string, JitCompileFn> loaded;  // by path (TRITUNE_JIT_MODULE may change)
  const std::string path = jit_module_path();
  JitCompileFn& fn = loaded[path];
  if (fn != nullptr) return fn;
  void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (h == nullptr) {
    throw Error("JIT: cannot load the kernel compiler module " + path + ": " + dlerror() +
                " (build the tritune_jit target, or point TRITUNE_JIT_MODULE at "
                "libtritune_jit.so; the ahead-of-time variants need neither)");
  }
  fn = reinterpret_cast<JitCompileFn>(dlsym(h, "tritune_jit_compile_object"));
  if (fn == nullptr) throw Error("JIT: " + path + " lacks tritune_jit_compile_object");
  return fn;
}

// Compiles one point to <dir>/<name>-<key>.so (atomically), returns the path.
std::string jit_compile_to_disk(const Variant& v) {
  const std::string target_str = std::string(isa_halide_target(v.spec.isa)) + "-no_runtime";
  const std::string key = hex64(fnv1a(v.name + "|" + target_str + "|" + kernel_source_hash() + "|" +
                                      halide_version_string()));
  const std::string dir = kernel_cache_dir();
  const std::string so = dir + "/" + v.name + "-" + key + ".so";
  struct stat st;
  if (stat(so.c_str(), &st) == 0) return so;

  const std::string tmp_base = dir + "/." + v.name + "-" + key + "." + std::to_string(getpid());
  const std::string obj = tmp_base + ".o";
  std::vector<const char*> keys, values;
  for (const auto& [k, val] : v.spec.params) {
    keys.push_back(k.c_str());
    values.push_back(val.c_str());
  }
  char err[4096] = "";
  if (jit_compiler()(v.space->generator.c_str(), target_str.c_str(), (int)keys.size(), keys.data(),
                     values.data(), v.name.c_str(), obj.c_str(), err, sizeof err) != 0) {
    std::remove(obj.c_str());
    throw Error("JIT: " + v.name + ": " + err);
  }
  const std::string tmp_so = tmp_base + ".so";
  const std::string cmd =
      std::string(TRITUNE_C_COMPILER) + " -shared -o '" + tmp_so + "' '" + obj + "' 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  if (p != nullptr) {
    char buf[256];
    while (std::fgets(buf, sizeof buf, p)) out += buf;
  }
  const int rc = p ? pclose(p) : -1;
  std::remove(obj.c_str());
  if (rc != 0) {
    std::remove(tmp_so.c_str());
    throw Error("JIT: linking " + v.name + " failed (" + cmd + "): " + out);
  }
  if (std::rename(tmp_so.c_str(), so.c_str()) != 0) {
    std::remove(tmp_so.c_str());
    throw Error("JIT: cannot move the compiled kernel into " + so);
  }
  return so;
}

}  // namespace

std::string jit_module_path() {
  const char* env = std::getenv("TRITUNE_JIT_MODULE");
  return env && *env ? env : TRITUNE_JIT_MODULE_PATH;
}

bool jit_module_present() {
  struct stat st;
  return stat(jit_module_path().c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

const std::vector<Variant>& aot_variants() {
  static const std::vector<Variant> table = make_aot_table();
  return table;
}

const Variant& default_variant(const std::string& family, const std::string& op, Isa isa) {
  const SearchSpace& s = find_space(family, op);
  const std::string name = variant_name(s, s.defaults_for(isa), isa);
  for (const auto& v : aot_variants()) {
    if (v.name == name) return v;
  }
  throw Error("default variant " + name + " was not built (generators/CMakeLists.txt and " +
              family + "_space.cc disagree)");
}

const Variant& get_variant(const std::string& name) {
  for (const auto& v : aot_variants()) {
    if (v.name == name) return v;
  }
  std::lock_guard<std::mutex> lock(g_jit_mutex);
  for (const auto& v : g_jit_variants) {
    if (v.name == name) return v;
  }
  Variant v;
  v.name = name;
  v.spec = parse_variant_name(name);
  v.space = &find_space(v.spec.family, v.spec.op);
  v.jit = true;
  if (!cpu_supports(v.spec.isa)) {
    throw Error("variant " + name + " needs ISA level " + isa_name(v.spec.isa) +
                " which this CPU lacks");
  }
  const std::string so = jit_compile_to_disk(v);
  void* h = dlopen(so.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (h == nullptr) {
    throw Error("JIT: cannot load " + so + ": " + dlerror() +
                " (the executable must export the Halide runtime: ENABLE_EXPORTS)");
  }
  v.fn = dlsym(h, name.c_str());
  if (v.fn == nullptr) throw Error("JIT: " + so + " lacks symbol " + name);
  g_jit_variants.push_back(std::move(v));
  return g_jit_variants.back();
}

void set_num_threads(int n) {
  if (n < 1 || n > 256) throw Error("threads must be in 1..256, got " + std::to_string(n));
  set_pool_threads(n);
}

int num_threads() {
  return pool_threads();
}

namespace {
void check_rc(int rc, const Variant& v) {
  if (rc != 0) {
    throw Error("kernel " + v.name + " failed with Halide error " + std::to_string(rc) +
                " (buffer shapes do not match its contract)");
  }
}
}  // namespace

void run_i2s(const Variant& v, const I2STiles& w, const QuantizedActs& a, int32_t* raw,
             int64_t ldy) {
  if (v.spec.family != "i2s") throw Error("run_i2s: " + v.name + " is not an i2s variant");
  if (a.k != w.k || a.k_stride != w.k_pad()) {
    throw Error("run_i2s: activations K=" + std::to_string(a.k) + " stride " +
                std::to_string(a.k_stride) + " do not match weights K=" + std::to_string(w.k) +
                " (quantize with k_align=16)");
  }
  if (ldy < w.n_pad()) throw Error("run_i2s: ldy " + std::to_string(ldy) + " < padded N");
  if (w.k > kI2SMaxK) {
    throw Error("run_i2s: K=" + std::to_string(w.k) + " exceeds " + std::to_string(kI2SMaxK) +
                ", the int32 range of the I2_S kernels' accumulators");
  }
  const int T = (int)a.tokens;
  if (w.parts < 1 || w.k16 % w.parts != 0 || (w.parts > 1 && w.part_stride < w.part_bytes()) ||
      w.part_stride > INT32_MAX) {
    throw Error("run_i2s: " + std::to_string(w.k16) + " column tiles in " +
                std::to_string(w.parts) + " parts " + std::to_string(w.part_stride) +
                " bytes apart is not a tile layout");
  }
  // [64 bytes, kq tiles, parts, n16 row tiles] (kernels/i2s.h).
  halide_dimension_t wd[4] = {{0, 64, 1},
                              {0, (int)w.kq(), 64},
                              {0, (int)w.parts, (int)w.part_stride},
                              {0, (int)w.n16, (int)(64 * w.kq())}};
  halide_dimension_t xd[2] = {{0, (int)w.k_pad(), 1}, {0, T, (int)a.k_stride}};
  halide_dimension_t sd[1] = {{0, T, 1}};
  halide_dimension_t yd[2] = {{0, (int)w.n_pad(), 1}, {0, T, (int)ldy}};
  Halide::Runtime::Buffer<const uint8_t> wb(w.data, 4, wd);
  Halide::Runtime::Buffer<const int8_t> xb(a.q.data(), 2, xd);
  Halide::Runtime::Buffer<const int32_t> sb(a.sum.data(), 1, sd);
  Halide::Runtime::Buffer<int32_t> yb(raw, 2, yd);
  auto fn = reinterpret_cast<HalideFn4>(v.fn);
  check_rc(fn(wb.raw_buffer(), xb.raw_buffer(), sb.raw_buffer(), yb.raw_buffer()), v);
}

void run_fp(const Variant& v, const PackedWeights& w, const float* x, int64_t tokens, float* y,
            int64_t ldy) {
  const bool f16 = v.spec.family == "f16";
  if (!(f16 || v.spec.family == "f32")) throw Error("run_fp: " + v.name + " is not f32/f16");
  if ((f16 && w.format != Format::kF16) || (!f16 && w.format != Format::kF32)) {
    throw Error("run_fp: variant " + v.name + " does not take " + format_traits(w.format).name +
                " weights");
  }
  const int K = (int)w.k, N = (int)w.n, T = (int)tokens;
  halide_dimension_t wd[2] = {{0, K, 1}, {0, N, K}};
  halide_dimension_t xd[2] = {{0, K, 1}, {0, T, K}};
  halide_dimension_t yd[2] = {{0, N, 1}, {0, T, (int)ldy}};
  halide_buffer_t wb = {};
  wb.host = const_cast<uint8_t*>(w.data.data());
  wb.type = f16 ? halide_type_t(halide_type_float, 16) : halide_type_t(halide_type_float, 32);
  wb.dimensions = 2;
  wb.dim = wd;
  Halide::Runtime::Buffer<const float> xb(x, 2, xd);
  Halide::Runtime::Buffer<float> yb(y, 2, yd);
  auto fn = reinterpret_cast<HalideFn3>(v.fn);
  check_rc(fn(&wb, xb.raw_buffer(), yb.raw_buffer()), v);
}

}  // namespace tritune
