// A small, strict argument parser for the subcommands: declared options produce --help text;
// unknown options, missing values and stray arguments are errors that name them and the fix.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace tritune::cli {

class Args {
 public:
  Args(std::string command, std::string description);
  // Declares an option taking a value ("--json", "FILE", "write results as JSON to FILE").
  Args& option(const std::string& name, const std::string& metavar, const std::string& help,
               const std::string& default_value = "");
  // Declares a boolean flag.
  Args& flag(const std::string& name, const std::string& help);
  // Parses; returns false if --help was given (help already printed). Throws Error on misuse.
  bool parse(const std::vector<std::string>& args);

  bool has(const std::string& name) const;         // given on the command line (or flag set)
  std::string get(const std::string& name) const;  // value or default
  int64_t get_int(const std::string& name) const;
  double get_double(const std::string& name) const;
  std::vector<std::string> get_list(const std::string& name) const;  // comma-separated
  std::vector<int64_t> get_int_list(const std::string& name) const;
  std::string help() const;

 private:
  struct Opt {
    std::string metavar, help, def;
    bool is_flag = false;
  };
  std::string command_, description_;
  std::vector<std::string> order_;
  std::map<std::string, Opt> opts_;
  std::map<std::string, std::string> values_;
};

}  // namespace tritune::cli
