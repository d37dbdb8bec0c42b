// The `tritune` command: dispatches to the registered subcommands (see command.h).
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "cli/command.h"

namespace tritune::cli {

namespace {
std::vector<Command>& registry() {
  static std::vector<Command> r;
  return r;
}

std::vector<std::string> split_words(const std::string& s) {
  std::vector<std::string> w;
  std::string cur;
  for (char c : s) {
    if (c == ' ') {
      if (!cur.empty()) w.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) w.push_back(cur);
  return w;
}

// Lists the children of a command path prefix (one level down).
void print_group_help(const std::vector<std::string>& prefix) {
  std::string p;
  for (const auto& w : prefix) p += (p.empty() ? "" : " ") + w;
  std::printf("usage: tritune %s%s<command> [options]\n\n", p.c_str(), p.empty() ? "" : " ");
  if (prefix.empty()) {
    std::printf(
        "tritune: kernel research and autotuning toolkit for ternary (BitNet b1.58) LLM\n"
        "inference on CPUs. Halide kernel variants per weight format, a per-CPU tuner,\n"
        "energy meters and a reference BitNet transformer.\n\n");
  }
  std::printf("commands:\n");
  std::map<std::string, std::string> children;
  for (const auto& c : registry()) {
    const auto w = split_words(c.path);
    if (w.size() <= prefix.size()) continue;
    bool match = true;
    for (size_t i = 0; i < prefix.size(); ++i) match = match && w[i] == prefix[i];
    if (!match) continue;
    const std::string child = w[prefix.size()];
    if (w.size() == prefix.size() + 1) {
      children[child] = c.summary;
    } else if (!children.count(child)) {
      children[child] = "(group: tritune " + (p.empty() ? "" : p + " ") + child + " --help)";
    }
  }
  for (const auto& [name, summary] : children) {
    std::printf("  %-16s %s\n", name.c_str(), summary.c_str());
  }
  std::printf("\nRun 'tritune %s%s<command> --help' for a command's options.\n", p.c_str(),
              p.empty() ? "" : " ");
}
}  // namespace

void register_command(Command c) {
  registry().push_back(std::move(c));
}
const std::vector<Command>& commands() {
  return registry();
}

}  // namespace tritune::cli

namespace {

// Output that could not be written (a full disk, a closed stdout) is a failure, not success.
int finish(int status) {
  errno = 0;
  if (std::fflush(stdout) != 0 || std::ferror(stdout)) {
    std::fprintf(stderr, "tritune: error: writing the standard output failed: %s\n",
                 errno != 0 ? std::strerror(errno) : "an earlier write failed");
    return status == 0 ? 1 : status;
  }
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace tritune::cli;
  std::vector<std::string> args(argv + 1, argv + argc);
  // Longest command path that prefixes the arguments.
  const Command* best = nullptr;
  size_t best_len = 0;
  for (const auto& c : commands()) {
    const auto w = split_words(c.path);
    if (w.size() > args.size() || w.size() <= best_len) continue;
    bool match = true;
    for (size_t i = 0; i < w.size(); ++i) match = match && args[i] == w[i];
    if (match) {
      best = &c;
      best_len = w.size();
    }
  }
  if (best == nullptr) {
    // A group name (e.g. "bench"), nothing, or a word no command starts with. `known` is the
    // longest run of leading words that names a group.
    std::vector<std::string> prefix;
    for (const auto& a : args) {
      if (a.empty() || a[0] == '-') break;
      prefix.push_back(a);
    }
    size_t known = 0;
    for (size_t n = 1; n <= prefix.size(); ++n) {
      for (const auto& c : commands()) {
        const auto w = split_words(c.path);
        bool match = w.size() > n;
        for (size_t i = 0; match && i < n; ++i) match = w[i] == prefix[i];
        if (match) known = n;
      }
    }
    std::string group;
    for (size_t i = 0; i < known; ++i) group += " " + prefix[i];
    if (known < prefix.size()) {
      std::fprintf(stderr, "tritune: unknown command '%s' (run 'tritune%s --help')\n",
                   prefix[known].c_str(), group.c_str());
      return 2;
    }
    const std::vector<std::string> rest(args.begin() + (long)prefix.size(), args.end());
    if (!rest.empty() && (rest[0] == "-h" || rest[0] == "--help")) {
      print_group_help(prefix);
      return finish(0);
    }
    if (!rest.empty() && rest[0] == "--version" && prefix.empty()) {
      std::printf("tritune %s\n", TRITUNE_VERSION);
      return finish(0);
    }
    if (!rest.empty()) {
      std::fprintf(stderr, "tritune%s: unknown option '%s' (run 'tritune%s --help')\n",
                   group.c_str(), rest[0].c_str(), group.c_str());
      return 2;
    }
    // No command given: the group's commands, and the usage-error status.
    print_group_help(prefix);
    return 2;
  }
  try {
    return finish(
        best->run(std::vector<std::string>(args.begin() + (long)best_len, args.end())));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tritune %s: error: %s\n", best->path.c_str(), e.what());
    return finish(1);
  }
}
