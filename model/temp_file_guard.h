// Removes a writer's temporary file when SIGINT, SIGTERM or SIGHUP ends the process. The model
// writers (GGUF, safetensors) write a temporary PATH.tmp-<pid>-<n> (create_temp_for) and rename
// it into place when done; an error removes it, but Ctrl-C during a multi-gigabyte `make-model`
// or `convert` used to leave the half-written temporary behind. While a guard lives, its path
// is unlinked from the signal handler (async-signal-safe) and the signal is then re-raised with
// the action it had before, so the process still ends the way the signal says. Signals the
// process ignores stay ignored.
#pragma once
#include <cstdio>
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

// Throws Error unless `path` is absent or a regular file: what a writer may rename a finished
// temporary file over (a device, fifo, directory or symbolic link would be replaced).
void require_replaceable(const std::string& path);

// Creates and opens for writing a fresh temporary file beside `path` (PATH.tmp-<pid>-<n>, set in
// *tmp_path) for a writer that renames it over `path` when done. The name is new to this call
// (O_EXCL): two writers of one output never share a temporary file (a fixed PATH.tmp let two
// runs interleave their bytes into one), and a file or link already at a name is left alone.
// Refuses a `path` require_replaceable refuses (`make-model -o /dev/null` once turned the device
// into a file). Throws Error naming the path and the fix.
FILE* create_temp_for(const std::string& path, std::string* tmp_path);

}  // namespace tritune
