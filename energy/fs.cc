#include "energy/fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>

namespace tritune {

RootedFs::RootedFs(std::string root, FsHook hook) : root_(std::move(root)), hook_(std::move(hook)) {
  if (root_.empty()) root_ = "/";
  while (root_.size() > 1 && root_.back() == '/') root_.pop_back();
}

std::string RootedFs::path(const std::string& sys_path) const {
  if (root_ == "/") return sys_path;
  return root_ + (sys_path.empty() || sys_path[0] != '/' ? "/" : "") + sys_path;
}

bool RootedFs::exists(const std::string& sys_path) const {
  struct stat st;
  return ::stat(path(sys_path).c_str(), &st) == 0;
}

bool RootedFs::is_dir(const std::string& sys_path) const {
  struct stat st;
  return ::stat(path(sys_path).c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::vector<std::string> RootedFs::list_dir(const std::string& sys_path) const {
  std::vector<std::string> names;
  DIR* d = ::opendir(path(sys_path).c_str());
  if (!d) return names;
  while (dirent* e = ::readdir(d)) {
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
    names.emplace_back(e->d_name);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

int RootedFs::read_text(const std::string& sys_path, std::string* out) const {
  const std::string abs = path(sys_path);
  if (int e = injected(abs, FsOp::kOpen)) return e;
  const int fd = ::open(abs.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  if (int e = injected(abs, FsOp::kRead)) {
    ::close(fd);
    return e;
  }
  char buf[4096];
  size_t got = 0;
  while (got < sizeof buf) {
    const ssize_t r = ::read(fd, buf + got, sizeof buf - got);
    if (r < 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      ::close(fd);
      return e;
    }
    if (r == 0) break;
    got += (size_t)r;
  }
  ::close(fd);
  out->assign(buf, got);
  while (!out->empty() && (out->back() == '\n' || out->back() == ' ' || out->back() == '\t' ||
                           out->back() == '\r' || out->back() == '\0')) {
    out->pop_back();
  }
  return 0;
}

bool parse_u64(const std::string& s, uint64_t* out) {
  size_t i = 0, j = s.size();
  while (i < j && std::isspace((unsigned char)s[i])) ++i;
  while (j > i && std::isspace((unsigned char)s[j - 1])) --j;
  if (i == j || j - i > 20) return false;
  uint64_t v = 0;
  for (size_t p = i; p < j; ++p) {
    if (s[p] < '0' || s[p] > '9') return false;
    const uint64_t d = (uint64_t)(s[p] - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  *out = v;
  return true;
}

int RootedFs::read_u64(const std::string& sys_path, uint64_t* out, std::string* bad) const {
  std::string s;
  if (int e = read_text(sys_path, &s)) return e;
  if (!parse_u64(s, out)) {
    if (bad) *bad = s.size() > 40 ? s.substr(0, 40) + "..." : s;
    return EINVAL;
  }
  return 0;
}

int RootedFs::open_ro(const std::string& sys_path) const {
  const std::string abs = path(sys_path);
  if (int e = injected(abs, FsOp::kOpen)) return -e;
  const int fd = ::open(abs.c_str(), O_RDONLY | O_CLOEXEC);
  return fd < 0 ? -errno : fd;
}

int RootedFs::pread_u64(int fd, const std::string& sys_path, uint64_t offset, uint64_t* out) const {
  if (int e = injected(path(sys_path), FsOp::kRead)) return e;
  uint64_t v = 0;
  const ssize_t r = ::pread(fd, &v, sizeof v, (off_t)offset);
  if (r < 0) return errno;
  if (r != (ssize_t)sizeof v) return EIO;
  *out = v;
  return 0;
}

std::string errno_reason(int err, const std::string& what) {
  switch (err) {
    case ENOENT:
      return what + " does not exist";
    case EACCES:
    case EPERM:
      return "permission denied on " + what;
    case EIO:
      return "reading " + what + " failed with EIO (the CPU or hypervisor does not implement it)";
    case ENXIO:
    case ENODEV:
      return what + " has no device behind it";
    case EINVAL:
      return what + " has unparseable contents";
    case EOPNOTSUPP:
      return what + " is not supported here";
    default:
      return what + ": " + std::strerror(err);
  }
}

bool parse_cpu_list(const std::string& s, std::vector<int>* cpus) {
  cpus->clear();
  size_t i = 0;
  auto num = [&](int* v) {
    if (i >= s.size() || s[i] < '0' || s[i] > '9') return false;
    long x = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      x = x * 10 + (s[i++] - '0');
      if (x > 1 << 20) return false;
    }
    *v = (int)x;
    return true;
  };
  while (i < s.size() && std::isspace((unsigned char)s[i])) ++i;
  while (i < s.size()) {
    int a, b;
    if (!num(&a)) return false;
    b = a;
    if (i < s.size() && s[i] == '-') {
      ++i;
      if (!num(&b) || b < a || b - a > 4096) return false;
    }
    for (int c = a; c <= b; ++c) cpus->push_back(c);
    if (i < s.size() && s[i] == ',') {
      ++i;
      continue;
    }
    while (i < s.size() && std::isspace((unsigned char)s[i])) ++i;
    if (i != s.size()) return false;
  }
  return !cpus->empty();
}

}  // namespace tritune
