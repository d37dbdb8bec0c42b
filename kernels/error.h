// Errors that say what and where: every message names the file, tensor, offset or parameter and,
// where one exists, the fix.
#pragma once
#include <stdexcept>
#include <string>

namespace tritune {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace tritune
