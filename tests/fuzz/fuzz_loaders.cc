// Coverage-guided fuzzing (libFuzzer) of everything that parses untrusted model files: GGUF
// (header, metadata, tensor table, tensor types, tokenizer metadata), safetensors + config.json,
// Hugging Face tokenizer.json and tuning databases; the targets are in tests/fuzz/fuzz_targets.h.
// Built and run by `scripts/fuzz.sh` (clang, ASan + UBSan). Not part of the test suite, which
// replays the files in tests/fuzz/regressions/ through the same targets (FuzzRegressions in
// test_model).
//
// $TRITUNE_FUZZ_SEED_HF names the seed checkpoint directory (model.safetensors + config.json)
// that targets 1 and 2 pair their input with. A load that throws tritune::Error is a refusal,
// the expected outcome for a broken file; any other exception escapes and libFuzzer reports it.
#include <cstdio>
#include <cstdlib>

#include "tests/fuzz/fuzz_targets.h"

namespace {
tritune::fuzz::SeedCheckpoint g_seed;
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* dir = std::getenv("TRITUNE_FUZZ_SEED_HF");
  if (dir != nullptr) g_seed = tritune::fuzz::read_seed(dir);
  if (g_seed.safetensors.empty() || g_seed.config.empty()) {
    std::fprintf(stderr,
                 "fuzz_loaders: set TRITUNE_FUZZ_SEED_HF to a checkpoint directory "
                 "(model.safetensors + config.json); targets 1 and 2 are off without it\n");
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    tritune::fuzz::run_one(data, size, g_seed);
  } catch (const tritune::Error&) {
  }
  return 0;
}
