#include "kernels/huge_pages.h"

#include <sys/mman.h>

#include <atomic>
#include <cstdlib>
#include <iterator>
#include <map>
#include <mutex>

namespace tritune {

namespace {
std::atomic<bool> g_advised{false};
}  // namespace

void* alloc_huge(size_t bytes) {
  const size_t rounded = (bytes + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
  void* p = std::aligned_alloc(kHugePageBytes, rounded);
  if (p == nullptr) return nullptr;
#ifdef MADV_HUGEPAGE
  // Advice only: on a kernel without THP (or with it set to "never") this fails and the buffer
  // stays on small pages, which is correct, just slower to stream.
  g_advised = madvise(p, rounded, MADV_HUGEPAGE) == 0;
#endif
  return p;
}

void free_huge(void* p) {
  std::free(p);
}

bool huge_pages_advised() {
  return g_advised;
}

#if defined(__SANITIZE_ADDRESS__)
// Under AddressSanitizer every buffer comes from the heap: an arena would hide an overflow from
// one weight buffer into its neighbour.
void* alloc_weights(size_t bytes) {
  return std::malloc(bytes == 0 ? 1 : bytes);
}
void free_weights(void* p, size_t) {
  std::free(p);
}
#else
namespace {
// Medium buffers (a model's q/k/v/o layers, 0.4-1.6 MB each) are carved one after another out
// of shared 64 MiB huge-page arenas: each on its own 2 MiB-aligned allocation would waste up to
// 2 MiB per buffer (k and v of 2B4T are 410 KB) or, below 2 MiB, stay on small pages. An arena
// counts its live buffers and is freed when the last one goes (weights live as long as their
// model, so a bump pointer without reuse is enough).
constexpr size_t kArenaBytes = size_t(64) << 20;
constexpr size_t kArenaMax = size_t(16) << 20;  // larger buffers get their own allocation
constexpr size_t kAlign = 4096;

struct Arena {
  uint8_t* base = nullptr;
  size_t used = 0;
  size_t live = 0;
};

struct Arenas {
  std::mutex mu;
  std::map<uintptr_t, Arena> by_base;  // base address -> arena
  uintptr_t current = 0;               // base of the arena being filled (0: none)
};

Arenas& arenas() {
  static Arenas* a = new Arenas();  // never destroyed: buffers may outlive static destructors
  return *a;
}

}  // namespace

void* alloc_weights(size_t bytes) {
  if (bytes < kArenaMin) return ::operator new(bytes, std::nothrow);
  if (bytes > kArenaMax) return alloc_huge(bytes);
  const size_t need = (bytes + kAlign - 1) / kAlign * kAlign;
  Arenas& A = arenas();
  std::lock_guard<std::mutex> lock(A.mu);
  Arena* cur = A.current ? &A.by_base[A.current] : nullptr;
  // A full current arena has live buffers (free_weights rewinds it when its last one goes).
  if (cur == nullptr || cur->used + need > kArenaBytes) {
    uint8_t* base = static_cast<uint8_t*>(alloc_huge(kArenaBytes));
    if (base == nullptr) return nullptr;
    A.current = (uintptr_t)base;
    cur = &A.by_base[A.current];
    cur->base = base;
  }
  void* p = cur->base + cur->used;
  cur->used += need;
  cur->live += 1;
  return p;
}

void free_weights(void* p, size_t bytes) {
  if (p == nullptr) return;
  if (bytes < kArenaMin) {
    ::operator delete(p);
    return;
  }
  if (bytes > kArenaMax) {
    std::free(p);
    return;
  }
  Arenas& A = arenas();
  std::lock_guard<std::mutex> lock(A.mu);
  auto it = A.by_base.upper_bound((uintptr_t)p);
  if (it == A.by_base.begin()) std::abort();  // not ours: a heap corruption, not an error
  it = std::prev(it);
  Arena& a = it->second;
  if (--a.live == 0) {
    if (it->first == A.current) {
      a.used = 0;  // keep the current arena for the next buffers
    } else {
      std::free(a.base);
      A.by_base.erase(it);
    }
  }
}
#endif

}  // namespace tritune
