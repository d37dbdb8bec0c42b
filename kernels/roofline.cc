#include "kernels/roofline.h"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "HalideRuntime.h"
#include "kernels/cpu_features.h"
#include "kernels/error.h"
#include "kernels/huge_pages.h"
#include "kernels/stats.h"

namespace tritune {

namespace {

using Clock = std::chrono::steady_clock;

// Runs fn(thread_index) on `threads` threads started together; returns seconds of the slowest.
template <typename Fn>
double run_parallel(int threads, Fn fn) {
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<double> secs((size_t)threads);
  std::vector<std::thread> pool;
  for (int i = 0; i < threads; ++i) {
    pool.emplace_back([&, i] {
      ready++;
      while (!go.load(std::memory_order_acquire)) {
      }
      const auto t0 = Clock::now();
      fn(i);
      secs[(size_t)i] = std::chrono::duration<double>(Clock::now() - t0).count();
    });
  }
  while (ready.load() < threads) {
  }
  go.store(true, std::memory_order_release);
  for (auto& t : pool) t.join();
  return *std::max_element(secs.begin(), secs.end());
}

// The read loops. A read of `bytes` is split into kReadStreams equal parts (256-byte multiples)
// read side by side, 64 bytes of each per step; the rest (under 256 bytes per part) is read
// after them. Several streams per core read faster than one on this kind of machine: the
// hardware prefetchers track each stream separately, and more DRAM banks are busy at once
// (Zen 3 VM, 800 MiB: one core 13-15 GB/s with one stream, 18-23 with two to four; two cores
// 23-27 and 26-28). A bound measured with one stream would understate what the memory can
// deliver. Every byte is read once; the result is the xor of all 64-bit words read.
constexpr int kReadStreams = 4;

__attribute__((target("avx512f"))) uint64_t fold512(__m512i a) {
  alignas(64) uint64_t lanes[8];
  _mm512_store_si512(lanes, a);
  uint64_t r = 0;
  for (uint64_t v : lanes) r ^= v;
  return r;
}

__attribute__((target("avx2"))) uint64_t fold256(__m256i a) {
  alignas(32) uint64_t lanes[4];
  _mm256_store_si256((__m256i*)lanes, a);
  return lanes[0] ^ lanes[1] ^ lanes[2] ^ lanes[3];
}

uint64_t fold128(__m128i a) {
  alignas(16) uint64_t lanes[2];
  _mm_store_si128((__m128i*)lanes, a);
  return lanes[0] ^ lanes[1];
}

uint64_t read_tail(const uint8_t* p, int64_t bytes) {
  uint64_t r = 0;
  for (int64_t i = 0; i + 8 <= bytes; i += 8) {
    uint64_t v;
    std::memcpy(&v, p + i, 8);
    r ^= v;
  }
  return r;
}

// Streams s < S of `part` bytes each, at p + s * part, 64 bytes of each per step.
template <int S>
__attribute__((target("avx512f"))) uint64_t read_avx512(const uint8_t* p, int64_t part) {
  __m512i a[S];
  for (int s = 0; s < S; ++s) a[s] = _mm512_setzero_si512();
  for (int64_t i = 0; i + 64 <= part; i += 64) {
    for (int s = 0; s < S; ++s) a[s] = _mm512_xor_si512(a[s], _mm512_loadu_si512(p + s * part + i));
  }
  uint64_t r = 0;
  for (int s = 0; s < S; ++s) r ^= fold512(a[s]);
  return r;
}

template <int S>
__attribute__((target("avx2"))) uint64_t read_avx2(const uint8_t* p, int64_t part) {
  __m256i a[S], b[S];
  for (int s = 0; s < S; ++s) a[s] = b[s] = _mm256_setzero_si256();
  for (int64_t i = 0; i + 64 <= part; i += 64) {
    for (int s = 0; s < S; ++s) {
      const uint8_t* q = p + s * part + i;
      a[s] = _mm256_xor_si256(a[s], _mm256_loadu_si256((const __m256i*)q));
      b[s] = _mm256_xor_si256(b[s], _mm256_loadu_si256((const __m256i*)(q + 32)));
    }
  }
  uint64_t r = 0;
  for (int s = 0; s < S; ++s) r ^= fold256(_mm256_xor_si256(a[s], b[s]));
  return r;
}

template <int S>
uint64_t read_sse2(const uint8_t* p, int64_t part) {
  __m128i a[S], b[S];
  for (int s = 0; s < S; ++s) a[s] = b[s] = _mm_setzero_si128();
  for (int64_t i = 0; i + 64 <= part; i += 64) {
    for (int s = 0; s < S; ++s) {
      const uint8_t* q = p + s * part + i;
      a[s] = _mm_xor_si128(a[s], _mm_loadu_si128((const __m128i*)q));
      b[s] = _mm_xor_si128(b[s], _mm_loadu_si128((const __m128i*)(q + 16)));
      a[s] = _mm_xor_si128(a[s], _mm_loadu_si128((const __m128i*)(q + 32)));
      b[s] = _mm_xor_si128(b[s], _mm_loadu_si128((const __m128i*)(q + 48)));
    }
  }
  uint64_t r = 0;
  for (int s = 0; s < S; ++s) r ^= fold128(_mm_xor_si128(a[s], b[s]));
  return r;
}

// 24 independent vpdpbusd chains: enough to cover latency x throughput on current cores.
#define TT_D(i) "vpdpbusd %%zmm30, %%zmm31, %%zmm" #i "\n\t"
__attribute__((target("avx512f,avx512vnni"))) void peak_vnni(int64_t iters) {
  __asm__ volatile(
      "vpxord %%zmm30, %%zmm30, %%zmm30\n\t"
      "vpxord %%zmm31, %%zmm31, %%zmm31\n\t"
      "1:\n\t" TT_D(0) TT_D(1) TT_D(2) TT_D(3) TT_D(4) TT_D(5) TT_D(6) TT_D(7) TT_D(8) TT_D(9)
          TT_D(10) TT_D(11) TT_D(12) TT_D(13) TT_D(14) TT_D(15) TT_D(16) TT_D(17) TT_D(18)
              TT_D(19) TT_D(20) TT_D(21) TT_D(22) TT_D(23) "dec %0\n\t"
                                                          "jnz 1b\n\t"
      : "+r"(iters)
      :
      : "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8",
        "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17",
        "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm30", "xmm31");
}
#undef TT_D
constexpr double kVnniOpsPerIter = 24 * 64 * 2;

// AVX2: u8 x s8 pairs (vpmaddubsw) then pairs to int32 (vpmaddwd with ones) and an add: the
// sequence a kernel without VNNI needs per 32 multiply-adds. 4 independent chains of 3.
#define TT_A(i)                           \
  "vpmaddubsw %%ymm14, %%ymm15, %%ymm" #i \
  "\n\t"                                  \
  "vpmaddwd %%ymm13, %%ymm" #i ", %%ymm" #i "\n\t"
__attribute__((target("avx2"))) void peak_avx2(int64_t iters) {
  __asm__ volatile(
      "vpxor %%ymm13, %%ymm13, %%ymm13\n\t"
      "vpxor %%ymm14, %%ymm14, %%ymm14\n\t"
      "vpxor %%ymm15, %%ymm15, %%ymm15\n\t"
      "1:\n\t" TT_A(0) TT_A(1) TT_A(2) TT_A(3) TT_A(4) TT_A(5) TT_A(6) TT_A(7)
          "vpaddd %%ymm0, %%ymm8, %%ymm8\n\t"
          "vpaddd %%ymm1, %%ymm9, %%ymm9\n\t"
          "vpaddd %%ymm2, %%ymm10, %%ymm10\n\t"
          "vpaddd %%ymm3, %%ymm11, %%ymm11\n\t"
          "vpaddd %%ymm4, %%ymm8, %%ymm8\n\t"
          "vpaddd %%ymm5, %%ymm9, %%ymm9\n\t"
          "vpaddd %%ymm6, %%ymm10, %%ymm10\n\t"
          "vpaddd %%ymm7, %%ymm11, %%ymm11\n\t"
          "dec %0\n\t"
          "jnz 1b\n\t"
      : "+r"(iters)
      :
      : "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8",
        "xmm9", "xmm10", "xmm11", "xmm13", "xmm14", "xmm15");
}
#undef TT_A
constexpr double kAvx2OpsPerIter = 8 * 32 * 2;

// SSE2: widen to i16 and pmaddwd: 8 multiply-adds per instruction.
void peak_sse2(int64_t iters) {
  __asm__ volatile(
      "pxor %%xmm15, %%xmm15\n\t"
      "1:\n\t"
      "pmaddwd %%xmm15, %%xmm0\n\t pmaddwd %%xmm15, %%xmm1\n\t pmaddwd %%xmm15, %%xmm2\n\t"
      "pmaddwd %%xmm15, %%xmm3\n\t pmaddwd %%xmm15, %%xmm4\n\t pmaddwd %%xmm15, %%xmm5\n\t"
      "pmaddwd %%xmm15, %%xmm6\n\t pmaddwd %%xmm15, %%xmm7\n\t"
      "dec %0\n\t jnz 1b\n\t"
      : "+r"(iters)
      :
      : "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm15");
}
constexpr double kSse2OpsPerIter = 8 * 8 * 2;

template <int S>
uint64_t read_parts(Isa isa, const uint8_t* p, int64_t part) {
  switch (isa) {
    case Isa::kAvx512Vnni:
      return read_avx512<S>(p, part);
    case Isa::kAvx2:
      return read_avx2<S>(p, part);
    default:
      return read_sse2<S>(p, part);
  }
}

}  // namespace

uint64_t read_streams(const uint8_t* p, int64_t bytes, Isa isa) {
  if (bytes <= 0) return 0;
  const int S = bytes >= kReadStreams * 256 ? kReadStreams : 1;
  const int64_t part = (bytes / S) & ~int64_t(255);
  uint64_t r = part <= 0           ? 0
               : S == kReadStreams ? read_parts<kReadStreams>(isa, p, part)
                                   : read_parts<1>(isa, p, part);
  return r ^ read_tail(p + S * part, bytes - S * part);
}

uint64_t read_streams(const uint8_t* p, int64_t bytes) {
  return read_streams(p, bytes, cpu_info().best_isa);
}

namespace {

void peak_isa(int64_t iters) {
  switch (cpu_info().best_isa) {
    case Isa::kAvx512Vnni:
      peak_vnni(iters);
      break;
    case Isa::kAvx2:
      peak_avx2(iters);
      break;
    default:
      peak_sse2(iters);
  }
}

double ops_per_iter() {
  switch (cpu_info().best_isa) {
    case Isa::kAvx512Vnni:
      return kVnniOpsPerIter;
    case Isa::kAvx2:
      return kAvx2OpsPerIter;
    default:
      return kSse2OpsPerIter;
  }
}

struct StreamRing {
  static constexpr int64_t kBytes = int64_t(512) << 20;
  uint8_t* buf = nullptr;
  int64_t pos = 0;
  void ensure() {
    if (buf) return;
    buf = static_cast<uint8_t*>(alloc_huge((size_t)kBytes));
    if (buf == nullptr) throw Error("stream probe: cannot allocate 512 MiB");
    std::memset(buf, 3, (size_t)kBytes);
    pos = 0;
  }
  void release() {
    free_huge(buf);
    buf = nullptr;
  }
};

StreamRing& stream_ring() {
  static StreamRing ring;
  return ring;
}

struct StreamTask {
  const uint8_t* base;
  int64_t per;
  std::atomic<uint64_t>* sink;
};

int stream_task(void*, int i, uint8_t* closure) {
  auto* t = reinterpret_cast<StreamTask*>(closure);
  *t->sink += read_streams(t->base + i * t->per, t->per);
  return 0;
}

int peak_task(void*, int, uint8_t* closure) {
  peak_isa(*reinterpret_cast<int64_t*>(closure));
  return 0;
}

// Workers of the pool sleep after a while without work (TRITUNE_SPIN_US; Halide's own pool at
// once), and a sleeping worker can take longer to wake than a short probe lasts, leaving the
// calling thread to run every task: the probe would report one thread's figure. Every probe
// therefore runs after a wake-up round that is not timed, and the ring and peak probes also
// split their work into many tasks (whoever is awake takes the next; the in-place read keeps one
// share per thread, see probe_read_spans).
constexpr int kTasksPerThread = 16;

int spin_task(void*, int, uint8_t*) {
  const auto end = Clock::now() + std::chrono::microseconds(200);
  while (Clock::now() < end) {
  }
  return 0;
}

void wake_pool(int threads) {
  halide_do_par_for(nullptr, spin_task, 0, threads, nullptr);
}

}  // namespace

double probe_stream_read(int64_t bytes, int threads) {
  StreamRing& ring = stream_ring();
  ring.ensure();
  static std::atomic<uint64_t> sink{0};
  bytes = std::min(bytes, StreamRing::kBytes) & ~int64_t(4095);
  const int tasks = threads * kTasksPerThread;
  const int64_t per = (bytes / tasks) & ~int64_t(255);
  if (ring.pos + per * tasks > StreamRing::kBytes) ring.pos = 0;
  StreamTask task{ring.buf + ring.pos, per, &sink};
  // One read per page first, untimed. Between probes the ring sits idle for seconds, and on a
  // virtual machine the host may take idle guest pages back (this VM runs a DAMON reclaimer):
  // the timed read would then measure page faults, not bandwidth (9 GB/s instead of 35 here).
  // 64 bytes per 4 KiB page is 1.6% of the data, too little to warm the cache.
  uint64_t touched = 0;
  for (int64_t o = 0; o < per * tasks; o += 4096) touched += task.base[o];
  sink += touched;
  ring.pos += per * tasks;
  wake_pool(threads);
  const auto t0 = Clock::now();
  halide_do_par_for(nullptr, stream_task, 0, tasks, reinterpret_cast<uint8_t*>(&task));
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  return (double)(per * tasks) / s / 1e9;
}

namespace {
struct SpansTask {
  const std::vector<ByteSpan>* spans;
  int tasks;
  std::atomic<uint64_t>* sink;
};

// The part of a span the probe reads: from its first 64-byte boundary, whole 256-byte steps
// (the read loops' unit). Empty (bytes <= 0) when the span is shorter than that.
ByteSpan readable_part(const ByteSpan& s) {
  const uintptr_t a = (reinterpret_cast<uintptr_t>(s.data) + 63) & ~uintptr_t(63);
  const uint8_t* b = reinterpret_cast<const uint8_t*>(a);
  return {b, ((s.data + s.bytes) - b) & ~int64_t(255)};
}

// Task i reads the i-th of `tasks` equal slices (256-byte multiples) of every span's readable
// part.
int spans_task(void*, int i, uint8_t* closure) {
  auto* t = reinterpret_cast<SpansTask*>(closure);
  uint64_t v = 0;
  for (const ByteSpan& s : *t->spans) {
    const ByteSpan r = readable_part(s);
    if (r.bytes <= 0) continue;
    const int64_t per = (r.bytes / t->tasks) & ~int64_t(255);
    const int64_t from = per * i, n = i == t->tasks - 1 ? r.bytes - from : per;
    v ^= read_streams(r.data + from, n);
  }
  *t->sink += v;
  return 0;
}

int64_t spans_read_bytes(const std::vector<ByteSpan>& spans) {
  int64_t n = 0;
  for (const ByteSpan& s : spans) n += std::max<int64_t>(0, readable_part(s).bytes);
  return n;
}
}  // namespace

double probe_read_spans(const std::vector<ByteSpan>& spans, int threads) {
  static std::atomic<uint64_t> sink{0};
  const int64_t bytes = spans_read_bytes(spans);
  if (bytes == 0) return 0;
  // One task per thread, each its contiguous share of every span: how the GEMVs and the head
  // split their rows (PoolSchedule::kRanges). Sixteen slices per thread, as the ring probe
  // takes, cut a 2B4T token's 421 spans into 13 thousand short runs, which read 2-13% slower
  // than the threads' shares (medians of 40 alternating rounds) and made the bound too easy.
  // The untimed wake-up round below has every worker spinning when the timed loop starts.
  SpansTask task{&spans, threads, &sink};
  wake_pool(threads);
  const auto t0 = Clock::now();
  halide_do_par_for(nullptr, spans_task, 0, task.tasks, reinterpret_cast<uint8_t*>(&task));
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  return (double)bytes / s / 1e9;
}

double probe_int8_peak(double ops, int threads) {
  const int tasks = threads * kTasksPerThread;
  int64_t iters = std::max<int64_t>(1000, (int64_t)(ops / tasks / ops_per_iter()));
  wake_pool(threads);
  const auto t0 = Clock::now();
  halide_do_par_for(nullptr, peak_task, 0, tasks, reinterpret_cast<uint8_t*>(&iters));
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  return ops_per_iter() * (double)iters * tasks / s / 1e9;
}

void release_probe_buffers() {
  stream_ring().release();
}

RooflineSample measure_stream_bandwidth(int threads, int64_t bytes, int reps) {
  if (threads < 1 || bytes < (1 << 20)) throw Error("stream bandwidth: bad arguments");
  const int64_t per = (bytes / threads) & ~int64_t(4095);
  uint8_t* buf = static_cast<uint8_t*>(alloc_huge((size_t)(per * threads)));
  if (buf == nullptr) throw Error("stream bandwidth: cannot allocate " + std::to_string(bytes));
  // First touch from each thread (pages land where they are read) and make them non-zero.
  run_parallel(threads, [&](int i) { std::memset(buf + i * per, 1 + i, (size_t)per); });
  const Isa isa = cpu_info().best_isa;
  std::vector<double> rates;
  std::atomic<uint64_t> sink{0};
  for (int r = 0; r < reps; ++r) {
    const double s = run_parallel(threads, [&](int i) {
      const uint8_t* p = buf + i * per;
      sink += read_streams(p, per, isa);
    });
    rates.push_back((double)(per * threads) / s / 1e9);
  }
  free_huge(buf);
  RooflineSample out;
  out.value = median_or(rates, 0);
  out.best = *std::max_element(rates.begin(), rates.end());
  out.method = std::string(isa == Isa::kAvx512Vnni ? "512-bit"
                           : isa == Isa::kAvx2     ? "256-bit"
                                                   : "128-bit") +
               " loads, " + std::to_string(kReadStreams) + " streams per thread, over " +
               std::to_string(bytes >> 20) + " MiB" +
               (huge_pages_advised() ? " (huge pages)" : "") + ", " + std::to_string(threads) +
               " thread(s), median of " + std::to_string(reps);
  return out;
}

RooflineSample measure_int8_peak(int threads, int reps) {
  const Isa isa = cpu_info().best_isa;
  const int64_t iters = 2000000;
  std::vector<double> rates;
  double ops = isa == Isa::kAvx512Vnni ? kVnniOpsPerIter
               : isa == Isa::kAvx2     ? kAvx2OpsPerIter
                                       : kSse2OpsPerIter;
  for (int r = 0; r < reps; ++r) {
    const double s = run_parallel(threads, [&](int) {
      if (isa == Isa::kAvx512Vnni) {
        peak_vnni(iters);
      } else if (isa == Isa::kAvx2) {
        peak_avx2(iters);
      } else {
        peak_sse2(iters);
      }
    });
    rates.push_back(ops * (double)iters * threads / s / 1e9);
  }
  RooflineSample out;
  out.value = median_or(rates, 0);
  out.best = *std::max_element(rates.begin(), rates.end());
  out.method = std::string(isa == Isa::kAvx512Vnni ? "24 independent zmm vpdpbusd chains"
                           : isa == Isa::kAvx2     ? "8 vpmaddubsw+vpmaddwd chains (ymm)"
                                                   : "8 pmaddwd chains (xmm)") +
               ", " + std::to_string(threads) + " thread(s), median of " + std::to_string(reps);
  return out;
}

}  // namespace tritune
