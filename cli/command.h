// Subcommand registry of the `tritune` command. Each cmd_*.cc file registers its subcommands
// with a static CommandRegistrar; main.cc dispatches on the longest matching command path
// ("bench kernels" before "bench") and generates --help at every level.
#pragma once
#include <functional>
#include <string>
#include <vector>

namespace tritune::cli {

struct Command {
  std::string path;                                              // words, e.g. "bench kernels"
  std::string summary;                                           // one line for the parent's --help
  std::function<int(const std::vector<std::string>& args)> run;  // args after the path
};

void register_command(Command c);
const std::vector<Command>& commands();

struct CommandRegistrar {
  explicit CommandRegistrar(Command c) { register_command(std::move(c)); }
};

}  // namespace tritune::cli
