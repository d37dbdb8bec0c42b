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
size_t weight_arena_bytes() {
  return 0;
}
#else
namespace {
// Medium buffers (a model's q/k/v/o layers, 0.4-1.6 MB each) are carved out of shared 64 MiB
// huge-page arenas: each on its own 2 MiB-aligned allocation would waste up to 2 MiB per buffer
// (k and v of 2B4T are 410 KB) or, below 2 MiB, stay on small pages. Freed ranges are reused
// first-fit: loading a model allocates every layer's storage bytes and then, layer by layer,
// its kernel layout of the same size while the storage is freed, so without reuse the arenas
// end up holding one model's worth of holes between live buffers (63 MiB for 2B4T). An arena
// is returned when its last buffer goes.
constexpr size_t kArenaBytes = size_t(64) << 20;
constexpr size_t kArenaMax = size_t(16) << 20;  // larger buffers get their own allocation
constexpr size_t kAlign = 4096;

// The bytes a buffer takes in an arena: whole 4 KiB pages.
size_t arena_bytes_for(size_t bytes) {
  return (bytes + kAlign - 1) / kAlign * kAlign;
}

struct Arena {
  uint8_t* base = nullptr;
  size_t used = 0;                 // bump pointer: [used, kArenaBytes) was never handed out
  size_t live = 0;                 // buffers handed out and not freed
  std::map<size_t, size_t> holes;  // freed ranges below `used`: offset -> bytes, coalesced
};

struct Arenas {
  std::mutex mu;
  std::map<uintptr_t, Arena> by_base;  // base address -> arena
};

Arenas& arenas() {
  static Arenas* a = new Arenas();  // never destroyed: buffers may outlive static destructors
  return *a;
}

// First fit among the holes of an arena; nullptr if none is large enough.
uint8_t* take_hole(Arena& a, size_t need) {
  for (auto it = a.holes.begin(); it != a.holes.end(); ++it) {
    if (it->second < need) continue;
    const size_t off = it->first, left = it->second - need;
    a.holes.erase(it);
    if (left > 0) a.holes.emplace(off + need, left);
    return a.base + off;
  }
  return nullptr;
}

// A freed range keeps its pages resident until a buffer reuses it, and a reuse of the same
// size is not guaranteed: when q/k/v or gate/up are repacked into one buffer (LinearGroup), the
// storages they free are smaller than the next group's buffer, and 30 layers left 62 MB of
// resident holes. The whole huge pages inside a hole are handed back to the kernel
// (MADV_DONTNEED: zero-filled, and huge again, when touched next).
void drop_pages(Arena& a, size_t off, size_t bytes) {
  const size_t from = (off + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
  const size_t to = (off + bytes) / kHugePageBytes * kHugePageBytes;
  if (to > from) madvise(a.base + from, to - from, MADV_DONTNEED);
}

// Returns [off, off + bytes) to the arena: merges it with neighbouring holes, and gives the
// range back to the bump pointer when it ends there.
void give_back(Arena& a, size_t off, size_t bytes) {
  auto next = a.holes.lower_bound(off);
  if (next != a.holes.end() && next->first == off + bytes) {
    bytes += next->second;
    next = a.holes.erase(next);
  }
  if (next != a.holes.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second == off) {
      off = prev->first;
      bytes += prev->second;
      a.holes.erase(prev);
    }
  }
  drop_pages(a, off, bytes);
  if (off + bytes == a.used) {
    a.used = off;
  } else {
    a.holes.emplace(off, bytes);
  }
}

}  // namespace

void* alloc_weights(size_t bytes) {
  if (bytes < kArenaMin) return ::operator new(bytes, std::nothrow);
  if (bytes > kArenaMax) return alloc_huge(bytes);
  const size_t need = arena_bytes_for(bytes);
  Arenas& A = arenas();
  std::lock_guard<std::mutex> lock(A.mu);
  for (auto& [base, a] : A.by_base) {  // a freed range first, then the untouched tails
    if (uint8_t* p = take_hole(a, need)) {
      a.live += 1;
      return p;
    }
  }
  for (auto& [base, a] : A.by_base) {
    if (a.used + need <= kArenaBytes) {
      a.used += need;
      a.live += 1;
      return a.base + a.used - need;
    }
  }
  uint8_t* base = static_cast<uint8_t*>(alloc_huge(kArenaBytes));
  if (base == nullptr) return nullptr;
  Arena& a = A.by_base[(uintptr_t)base];
  a.base = base;
  a.used = need;
  a.live = 1;
  return base;
}

void free_weights(void* p, size_t bytes) {
  if (p == nullptr) return;
  if (bytes < kArenaMin) {
    ::operator delete(p);
    return;
  }
  if (bytes > kArenaMax) {
    free_huge(p);
    return;
  }
  Arenas& A = arenas();
  std::lock_guard<std::mutex> lock(A.mu);
  auto it = A.by_base.upper_bound((uintptr_t)p);
  if (it == A.by_base.begin()) std::abort();  // not ours: a heap corruption, not an error
  it = std::prev(it);
  Arena& a = it->second;
  if (--a.live == 0) {
    free_huge(a.base);
    A.by_base.erase(it);
    return;
  }
  give_back(a, (size_t)(static_cast<uint8_t*>(p) - a.base), arena_bytes_for(bytes));
}

size_t weight_arena_bytes() {
  Arenas& A = arenas();
  std::lock_guard<std::mutex> lock(A.mu);
  return A.by_base.size() * kArenaBytes;
}
#endif

}  // namespace tritune
