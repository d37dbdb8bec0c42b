#include "model/temp_file_guard.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>

#include "kernels/error.h"

namespace tritune {
namespace {

constexpr int kSlots = 8;
constexpr size_t kPathMax = 4096;
constexpr int kSignals[] = {SIGINT, SIGTERM, SIGHUP};

// Slots the handler reads (lock-free atomics only): a path is complete before its flag is set.
char g_paths[kSlots][kPathMax];
std::atomic<bool> g_used[kSlots];
struct sigaction g_previous[sizeof kSignals / sizeof kSignals[0]];

void on_signal(int sig) {
  for (int i = 0; i < kSlots; ++i) {
    if (g_used[i].load(std::memory_order_acquire)) unlink(g_paths[i]);
  }
  for (size_t i = 0; i < sizeof kSignals / sizeof kSignals[0]; ++i) {
    if (kSignals[i] == sig) sigaction(sig, &g_previous[i], nullptr);
  }
  raise(sig);  // the previous action (the default: the process ends by this signal)
}

void install_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    for (size_t i = 0; i < sizeof kSignals / sizeof kSignals[0]; ++i) {
      struct sigaction now;
      if (sigaction(kSignals[i], nullptr, &now) != 0) continue;
      g_previous[i] = now;
      // Leave ignored signals ignored (nohup) and handlers someone else installed alone.
      if (now.sa_handler != SIG_DFL || (now.sa_flags & SA_SIGINFO) != 0) continue;
      struct sigaction sa;
      std::memset(&sa, 0, sizeof sa);
      sa.sa_handler = on_signal;
      sigemptyset(&sa.sa_mask);
      sigaction(kSignals[i], &sa, nullptr);
    }
  });
}

}  // namespace

TempFileGuard::TempFileGuard(const std::string& path) {
  if (path.empty() || path.size() >= kPathMax) return;
  install_once();
  static std::mutex claim;  // between writer threads; the handler only reads published slots
  std::lock_guard<std::mutex> lock(claim);
  for (int i = 0; i < kSlots; ++i) {
    if (g_used[i].load(std::memory_order_relaxed)) continue;
    std::memcpy(g_paths[i], path.c_str(), path.size() + 1);
    g_used[i].store(true, std::memory_order_release);  // published after the path is complete
    slot_ = i;
    return;
  }
}

TempFileGuard::~TempFileGuard() {
  if (slot_ >= 0) g_used[slot_].store(false, std::memory_order_release);
}

void require_replaceable(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
    const char* kind = S_ISDIR(st.st_mode)                           ? "a directory"
                       : S_ISLNK(st.st_mode)                         ? "a symbolic link"
                       : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device"
                       : S_ISFIFO(st.st_mode)                        ? "a fifo"
                                                                     : "not a regular file";
    throw Error(path + ": is " + kind +
                "; the writer renames its finished temporary file over the output path, which "
                "would replace it: name a regular file" +
                (S_ISLNK(st.st_mode) ? " (the link's target, to write there)" : ""));
  }
}

FILE* create_temp_for(const std::string& path, std::string* tmp_path) {
  require_replaceable(path);
  static std::atomic<unsigned> counter{0};
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const std::string tmp = path + ".tmp-" + std::to_string(getpid()) + "-" +
                            std::to_string(counter.fetch_add(1));
    // O_EXCL with O_CREAT: never an existing file, never through a symbolic link.
    const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
      if (errno == EEXIST) continue;
      throw Error(tmp + ": cannot create: " + std::strerror(errno));
    }
    FILE* f = fdopen(fd, "wb");
    if (!f) {
      const int e = errno;
      close(fd);
      unlink(tmp.c_str());
      throw Error(tmp + ": cannot create: " + std::strerror(e));
    }
    *tmp_path = tmp;
    return f;
  }
  throw Error(path + ": no free temporary name beside it (" + path + ".tmp-*)");
}

}  // namespace tritune
