// Removes a writer's temporary file when SIGINT, SIGTERM or SIGHUP ends the process. The model
// writers (GGUF, safetensors) write PATH.tmp and rename it into place when done; an error
// removes it, but Ctrl-C during a multi-gigabyte `make-model` or `convert` used to leave the
// half-written PATH.tmp behind. While a guard lives, its path is unlinked from the signal
// handler (async-signal-safe) and the signal is then re-raised with the action it had before,
// so the process still ends the way the signal says. Signals the process ignores stay ignored.
#pragma once
#include <string>

namespace tritune {

class TempFileGuard {
 public:
  explicit TempFileGuard(const std::string& path);  // a path longer than 4095 bytes is not guarded
  ~TempFileGuard();
  TempFileGuard(const TempFileGuard&) = delete;
  TempFileGuard& operator=(const TempFileGuard&) = delete;

 private:
  int slot_ = -1;
};

}  // namespace tritune
