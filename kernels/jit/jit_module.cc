// The kernel compiler module (libtritune_jit.so): Halide's compiler and the generators, loaded
// by kernels/variant.cc with dlopen only when a search-space point that was not built ahead of
// time is first asked for (the tuner, `bench variants`, TRITUNE_VARIANT). Everything else --
// `tritune run`, `bench e2e`, the Python module -- runs the AOT kernels with only the small
// Halide runtime: linking libHalide into every binary kept 90 MB of its pages resident in each
// process (relocations and LLVM's static constructors), 11% of a 2B4T model's footprint.
//
// C entry point, so the loader needs no C++ ABI agreement beyond the C calling convention.
#include <cstddef>
#include <cstdio>
#include <string>

#include "Halide.h"

namespace tritune {
// Defined in the generator sources; calling them keeps their registrations linked in.
void link_i2s_generators();
void link_fp_generators();
}  // namespace tritune

namespace {
void set_error(char* err, size_t len, const std::string& msg) {
  if (err != nullptr && len > 0) std::snprintf(err, len, "%s", msg.c_str());
}
}  // namespace

// Compiles generator `generator` with the given GeneratorParams for Halide target `target` into
// an object file defining `function_name`. Returns 0, or 1 with a message in err.
extern "C" __attribute__((visibility("default"))) int tritune_jit_compile_object(
    const char* generator, const char* target, int nparams, const char* const* keys,
    const char* const* values, const char* function_name, const char* object_path, char* err,
    size_t err_len) {
  tritune::link_i2s_generators();
  tritune::link_fp_generators();
  try {
    auto gen = Halide::Internal::GeneratorRegistry::create(
        generator, Halide::GeneratorContext(Halide::Target(target)));
    if (!gen) {
      set_error(err, err_len, std::string("generator '") + generator + "' is not linked in");
      return 1;
    }
    for (int i = 0; i < nparams; ++i) gen->set_generatorparam_value(keys[i], values[i]);
    Halide::Module m = gen->build_module(function_name);
    m.compile({{Halide::OutputFileType::object, object_path}});
  } catch (const Halide::CompileError& e) {
    set_error(err, err_len, std::string("Halide could not compile it: ") + e.what());
    return 1;
  } catch (const Halide::InternalError& e) {
    set_error(err, err_len, std::string("Halide internal error: ") + e.what());
    return 1;
  } catch (const std::exception& e) {
    set_error(err, err_len, e.what());
    return 1;
  }
  return 0;
}
