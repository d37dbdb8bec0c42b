// Read-only bytes of a model file: a private read-only mmap of the file (the loaders point
// tensors into it), or an in-memory buffer (tests and fuzzing parse mutated files without
// touching the disk). Both look the same to the parsers.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace tritune {

class MappedFile {
 public:
  // Maps `path` read-only (MAP_PRIVATE). Throws Error naming the file on any failure; an empty
  // file maps to size() == 0.
  static std::shared_ptr<MappedFile> open(const std::string& path);
  // Wraps a buffer; `name` stands in for the path in error messages.
  static std::shared_ptr<MappedFile> from_bytes(std::vector<uint8_t> bytes,
                                                const std::string& name);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  bool is_mapped() const { return mapped_; }
  // Tells the kernel the pages of [offset, offset + bytes) are no longer needed (after a loader
  // copied them out): they leave the resident set and are re-read from the file if touched
  // again. A no-op for in-memory buffers.
  void release(size_t offset, size_t bytes) const;

 private:
  MappedFile() = default;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::string path_;
  bool mapped_ = false;
  std::vector<uint8_t> owned_;
};

// MADV_DONTNEED on the whole pages inside [p, p + bytes), which must lie in a read-only file
// mapping (MappedFile::open): they leave the resident set and are read back from the page cache
// if touched again. On anonymous memory this would zero it: callers check RawMatrix::file_mapped.
void drop_mapped_pages(const uint8_t* p, size_t bytes);
// The same for what touching [p, p + bytes) can have mapped: a read fault maps the pages around
// it too (kernel fault-around, up to 64 KiB by default, never across a 2 MiB boundary), so the
// 2 MiB-aligned windows around the range are dropped, clipped to [lo, hi) (the tensor the range
// belongs to).
void drop_faulted_around(const uint8_t* p, size_t bytes, const uint8_t* lo, const uint8_t* hi);

}  // namespace tritune
