// File access of the hardware backends, relative to a configurable root ("/" in production, a
// temporary fake tree in tests), with an injection point for errors a test running as root
// cannot provoke (EACCES on a 0400 file, EIO from an MSR the CPU does not implement). Every
// failure comes back as an errno; errno_reason() turns one into the sentence the probe prints.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace tritune {

enum class FsOp { kOpen, kRead };
// Returns an errno to inject for (absolute path, operation), or 0 to proceed normally.
using FsHook = std::function<int(const std::string& path, FsOp op)>;

class RootedFs {
 public:
  explicit RootedFs(std::string root = "/", FsHook hook = nullptr);

  const std::string& root() const { return root_; }
  // Absolute path of a path given as on a real system ("/sys/class/powercap").
  std::string path(const std::string& sys_path) const;

  bool exists(const std::string& sys_path) const;
  bool is_dir(const std::string& sys_path) const;
  // Sorted entry names of a directory (no "." / ".."); empty if it cannot be listed.
  std::vector<std::string> list_dir(const std::string& sys_path) const;
  // Reads a small text file (at most 4 KiB), trailing whitespace stripped. Returns 0 or errno.
  int read_text(const std::string& sys_path, std::string* out) const;
  // Reads a text file holding one unsigned decimal integer. Returns 0, an errno, or EINVAL with
  // *bad set to the offending content (garbage, empty, negative, overflowing).
  int read_u64(const std::string& sys_path, uint64_t* out, std::string* bad = nullptr) const;

  // Opens a device/file read-only (for pread). Returns fd >= 0 or -errno.
  int open_ro(const std::string& sys_path) const;
  // pread of 8 bytes at `offset` (MSR convention: offset = register number). Returns 0 or errno
  // (a short read is EIO).
  int pread_u64(int fd, const std::string& sys_path, uint64_t offset, uint64_t* out) const;

 private:
  int injected(const std::string& abs, FsOp op) const { return hook_ ? hook_(abs, op) : 0; }
  std::string root_;
  FsHook hook_;
};

// "permission denied" / "does not exist" / ... for an errno, as a clause naming the path.
std::string errno_reason(int err, const std::string& what);

// Parses an unsigned decimal integer (surrounding whitespace allowed); false on anything else.
bool parse_u64(const std::string& s, uint64_t* out);
// Parses a CPU list such as "0", "0,18" or "0-3,8-11" (sysfs cpumask/cpulist format).
bool parse_cpu_list(const std::string& s, std::vector<int>* cpus);

}  // namespace tritune
