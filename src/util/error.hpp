// Helpers to build reasonseg::Error messages in one expression.
#pragma once
#include <sstream>
#include <string>
#include <vector>

#include "reasonseg/error.hpp"

namespace reasonseg {

template <typename... Args>
std::string str_cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

template <typename... Args>
[[noreturn]] void fail(const Args&... args) {
  throw Error(str_cat(args...));
}

// Formats a shape as [a, b, c].
std::string shape_str(const std::vector<int64_t>& shape);

}  // namespace reasonseg
