#include "model/temp_file_guard.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <mutex>

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

}  // namespace tritune
