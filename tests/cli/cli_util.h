// Shared by the CLI tests: run the built `tritune` binary and capture what it prints.
#pragma once
#include <sys/stat.h>
#include <sys/wait.h>

#include <cstdio>
#include <string>

namespace tritune::testing {

struct CliResult {
  int status = -1;  // the exit status; -1 when the process did not exit normally (a crash)
  std::string out;  // stdout and stderr, merged
};

// The `tritune` binary the tests were built with (TRITUNE_CLI_BINARY, set by
// tests/CMakeLists.txt).
inline std::string cli_binary() {
  return TRITUNE_CLI_BINARY;
}

inline bool cli_binary_exists() {
  struct stat st;
  return stat(cli_binary().c_str(), &st) == 0;
}

// Runs `tritune ARGS` through the shell (so ARGS may quote and redirect), with the environment
// assignments `env` ("NAME=value ...") in front.
inline CliResult run_cli(const std::string& args, const std::string& env = "") {
  CliResult r;
  FILE* p = popen((env + " " + cli_binary() + " " + args + " 2>&1").c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

}  // namespace tritune::testing
