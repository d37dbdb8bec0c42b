// The roofline this machine offers, measured by tritune itself in the same run as the kernels
// it is compared with: streaming-read bandwidth (DRAM: a buffer far larger than the last-level
// cache) and the int8 dot-product peak (a register-only loop of independent dot products at the
// widest ISA level: vpdpbusd on AVX512-VNNI, vpmaddubsw+vpmaddwd on AVX2, pmaddwd otherwise).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/cpu_features.h"

namespace tritune {

struct RooflineSample {
  double value = 0;    // GB/s or GOP/s (median over repetitions)
  double best = 0;     // best repetition
  std::string method;  // what was run
};

// Single probes on the Halide thread pool (the one the kernels use), for interleaving with kernel
// runs so drift cancels in their ratio. `threads` tasks.
// Reads `bytes` from a static 512 MiB ring (consecutive calls move through it, so each read is
// cold when bytes >= 2x the LLC); returns GB/s.
double probe_stream_read(int64_t bytes, int threads);
// Frees the probe's ring (it counts in the resident memory of the process until then); the next
// probe allocates it again.
void release_probe_buffers();
// A stretch of memory a workload reads (a weight matrix, the head).
struct ByteSpan {
  const uint8_t* data = nullptr;
  int64_t bytes = 0;
};
// Reads every span in place, in order, each split evenly over `threads` tasks (one contiguous
// share per thread, as a GEMV splits its rows), with no synchronisation between spans; returns
// GB/s. This is the bandwidth of the workload's own bytes where they live: same footprint, pages
// and order.
double probe_read_spans(const std::vector<ByteSpan>& spans, int threads);
// The probes' read loop: reads [p, p + bytes) once as 4 streams side by side (one stream
// per core understates the bandwidth: see roofline.cc) with `isa`'s widest loads; returns the
// xor of the whole 64-bit words of the range (a result the reads cannot be optimised away
// from, and what the tests check coverage with).
uint64_t read_streams(const uint8_t* p, int64_t bytes, Isa isa);
uint64_t read_streams(const uint8_t* p, int64_t bytes);
// Runs the int8 dot-product loop for about `ops` operations in total; returns GOP/s.
double probe_int8_peak(double ops, int threads);

// Reads `bytes` (default 512 MiB) with `threads` threads, `reps` times.
RooflineSample measure_stream_bandwidth(int threads, int64_t bytes = int64_t(512) << 20,
                                        int reps = 5);
// Int8 dot-product peak in GOP/s (2 ops per multiply-add), `threads` threads.
RooflineSample measure_int8_peak(int threads, int reps = 5);

}  // namespace tritune
