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

// `text` with every byte that is not part of valid UTF-8, and every control character but
// newline and tab, written as \xNN: file names, JSON keys and header bytes from untrusted input
// reach a terminal or a log only as printable text.
std::string printable(const std::string& text);

template <typename... Args>
[[noreturn]] void fail(const Args&... args) {
  throw Error(printable(str_cat(args...)));
}

// Formats a shape as [a, b, c].
std::string shape_str(const std::vector<int64_t>& shape);

}  // namespace reasonseg
