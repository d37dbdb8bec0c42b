#include "model/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "kernels/error.h"

namespace tritune {

std::shared_ptr<MappedFile> MappedFile::open(const std::string& path) {
  // O_NONBLOCK: opening a fifo without a writer would otherwise wait forever (it is refused
  // below as not a regular file); it changes nothing for a regular file.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) throw Error(path + ": cannot open: " + std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    throw Error(path + ": cannot stat: " + std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(path + ": not a regular file");
  }
  std::shared_ptr<MappedFile> m(new MappedFile());
  m->path_ = path;
  m->size_ = (size_t)st.st_size;
  if (m->size_ > 0) {
    void* p = mmap(nullptr, m->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      const int e = errno;
      ::close(fd);
      throw Error(path + ": cannot map " + std::to_string(m->size_) +
                  " bytes: " + std::strerror(e));
    }
    m->data_ = static_cast<const uint8_t*>(p);
    m->mapped_ = true;
  }
  ::close(fd);  // the mapping keeps the file referenced
  return m;
}

std::shared_ptr<MappedFile> MappedFile::from_bytes(std::vector<uint8_t> bytes,
                                                   const std::string& name) {
  std::shared_ptr<MappedFile> m(new MappedFile());
  m->owned_ = std::move(bytes);
  m->data_ = m->owned_.data();
  m->size_ = m->owned_.size();
  m->path_ = name;
  return m;
}

MappedFile::~MappedFile() {
  if (mapped_) munmap(const_cast<uint8_t*>(data_), size_);
}

void MappedFile::release(size_t offset, size_t bytes) const {
  if (!mapped_ || bytes == 0 || offset >= size_) return;
  // Only whole pages inside the range: neighbouring tensors may share the edge pages.
  drop_mapped_pages(data_ + offset, std::min(bytes, size_ - offset));
}

void drop_mapped_pages(const uint8_t* p, size_t bytes) {
  const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  const uintptr_t begin = ((uintptr_t)p + page - 1) / page * page;
  const uintptr_t end = ((uintptr_t)p + bytes) / page * page;
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

void drop_faulted_around(const uint8_t* p, size_t bytes, const uint8_t* lo, const uint8_t* hi) {
  constexpr uintptr_t kWindow = uintptr_t(2) << 20;
  const uintptr_t b = std::max((uintptr_t)lo, (uintptr_t)p / kWindow * kWindow);
  const uintptr_t e =
      std::min((uintptr_t)hi, ((uintptr_t)p + bytes + kWindow - 1) / kWindow * kWindow);
  if (e > b) drop_mapped_pages(reinterpret_cast<const uint8_t*>(b), (size_t)(e - b));
}

}  // namespace tritune
