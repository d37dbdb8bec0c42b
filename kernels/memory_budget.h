// Memory a request will take, checked before it is allocated: an impossible shape, context or
// prompt length is an error that names it, the memory it would need and what is available,
// instead of std::bad_alloc or the OOM killer minutes into a run.
#pragma once
#include <cstdint>
#include <string>

#include "kernels/formats.h"

namespace tritune {

// The largest buffer a kernel call takes: the Halide kernels are built without the
// large_buffers target feature, so a buffer's extents address at most 2^31 - 1 bytes.
constexpr int64_t kMaxKernelBufferBytes = 2147483647;

// MemAvailable of a /proc/meminfo-format file, in bytes; -1 when the file or the line is
// missing or malformed (then nothing is refused).
int64_t available_memory_bytes(const std::string& meminfo_path = "/proc/meminfo");

// Throws Error("<what> would need 12.30 GiB, more than the 9.80 GiB available (MemAvailable);
// <fix>") when `bytes` exceeds `available`; `available` < 0 means unknown: no check.
void require_memory(double bytes, const std::string& what, const std::string& fix,
                    int64_t available);
// The same against this machine's MemAvailable.
void require_memory(double bytes, const std::string& what, const std::string& fix);

// Peak bytes of building `copies` packed copies of a random n x k matrix in format f the way
// the benchmarks and the tuner do: the dense source (int8 ternary codes for ternary formats,
// float otherwise), the packed matrix and its copies.
double weight_set_bytes(Format f, int64_t n, int64_t k, int64_t copies);

// "1.25 GiB", "340.00 MiB", "12 B": a byte count for messages.
std::string human_bytes(double bytes);

}  // namespace tritune
