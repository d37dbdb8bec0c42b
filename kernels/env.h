// Environment variables that steer a run (TRITUNE_SPIN_US, TRITUNE_I2S_PARTS, HL_NUM_THREADS,
// ...). A variable that is set to something it does not accept is not ignored silently (an A/B
// run would measure the default while its author believes otherwise): the fallback is used and
// one warning per variable on stderr names the value and what the variable accepts.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <string>

namespace tritune {

// `fallback` when `name` is unset or empty; its value when it is an integer in [lo, hi].
int64_t env_int(const char* name, int64_t fallback, int64_t lo, int64_t hi);
// `fallback` when `name` is unset or empty; its value when it is one of `choices`.
std::string env_choice(const char* name, std::initializer_list<const char*> choices,
                       const std::string& fallback);

}  // namespace tritune
