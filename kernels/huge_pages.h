// Weight storage on transparent huge pages. A decode step streams every weight once; on 4 KiB
// pages that is a TLB miss and a hardware-prefetch restart every 4 KiB (the L2 stream
// prefetchers stop at page boundaries), and on Linux with THP in "madvise" mode (Debian's
// default) anonymous memory only gets 2 MiB pages when asked. Measured on a Zen 3 VM: a plain
// 256-bit streaming read goes from 12.9 to 15.2 GB/s on one core and 22.1 to 26.0 GB/s on two.
// The stream-bandwidth probes use the same allocation, so "% of stream" compares like with like.
#pragma once
#include <cstddef>
#include <cstdint>
#include <new>
#include <vector>

namespace tritune {

constexpr size_t kHugePageBytes = size_t(2) << 20;
// Weight buffers from this size on live on huge pages (alloc_weights).
constexpr size_t kArenaMin = size_t(64) << 10;

// Allocates `bytes` (rounded up to 2 MiB, 2 MiB aligned) advised MADV_HUGEPAGE: huge pages where
// the kernel grants them, small pages otherwise; nullptr on failure. Free with free_huge().
void* alloc_huge(size_t bytes);
void free_huge(void* p);
// Whether the last huge allocation could be advised (false: no THP, or THP "never").
bool huge_pages_advised();

// Weight storage: small buffers from the heap, medium ones packed into shared huge-page arenas,
// large ones (> 16 MiB) on their own huge pages; nullptr on failure. free_weights needs the
// same size.
void* alloc_weights(size_t bytes);
void free_weights(void* p, size_t bytes);
// Bytes of the shared arenas currently held (live buffers, holes and untouched tails); 0 under
// AddressSanitizer, where every buffer comes from the heap.
size_t weight_arena_bytes();

template <class T>
struct HugePageAllocator {
  using value_type = T;
  HugePageAllocator() = default;
  template <class U>
  HugePageAllocator(const HugePageAllocator<U>&) {}
  T* allocate(size_t n) {
    void* p = alloc_weights(n * sizeof(T));
    if (p == nullptr) throw std::bad_alloc();
    return static_cast<T*>(p);
  }
  void deallocate(T* p, size_t n) { free_weights(p, n * sizeof(T)); }
  template <class U>
  bool operator==(const HugePageAllocator<U>&) const {
    return true;
  }
  template <class U>
  bool operator!=(const HugePageAllocator<U>&) const {
    return false;
  }
};

// Kernel-layout weight bytes.
using WeightBytes = std::vector<uint8_t, HugePageAllocator<uint8_t>>;

}  // namespace tritune
