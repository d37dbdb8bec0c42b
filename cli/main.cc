// The `tritune` command: dispatches to the registered subcommands (see command.h).
#include <cstdio>
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
    // A group name (e.g. "bench") or nothing: print the group's help.
    std::vector<std::string> prefix;
    for (const auto& a : args) {
      if (a.empty() || a[0] == '-') break;
      prefix.push_back(a);
    }
    bool known_group = prefix.empty();
    for (const auto& c : commands()) {
      const auto w = split_words(c.path);
      bool match = w.size() > prefix.size();
      for (size_t i = 0; match && i < prefix.size(); ++i) match = w[i] == prefix[i];
      known_group = known_group || match;
    }
    if (!known_group) {
      std::fprintf(stderr, "tritune: unknown command '%s' (run 'tritune --help')\n",
                   prefix.empty() ? "" : prefix.back().c_str());
      return 2;
    }
    print_group_help(prefix);
    return prefix.empty() && args.empty() ? 2 : 0;
  }
  try {
    return best->run(std::vector<std::string>(args.begin() + (long)best_len, args.end()));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tritune %s: error: %s\n", best->path.c_str(), e.what());
    return 1;
  }
}
