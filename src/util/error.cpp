#include <vector>
#include "util/error.hpp"
#include "util/strings.hpp"

namespace reasonseg {

std::string printable(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  auto hex = [&](unsigned char c) {
    static const char* digits = "0123456789abcdef";
    out += "\\x";
    out += digits[c >> 4];
    out += digits[c & 15];
  };
  for (size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f) hex(c);
      else out += char(c);
      ++i;
      continue;
    }
    // The length the lead byte announces, and the range its second byte must be in (no overlongs,
    // no surrogates, nothing past U+10FFFF).
    const size_t n = size_t(utf8_sequence_length(c));
    const unsigned char lo = c == 0xE0 ? 0xA0 : c == 0xF0 ? 0x90 : 0x80;
    const unsigned char hi = c == 0xED ? 0x9F : c == 0xF4 ? 0x8F : 0xBF;
    bool ok = n > 0 && i + n <= text.size();
    for (size_t k = 1; ok && k < n; ++k) {
      const auto b = static_cast<unsigned char>(text[i + k]);
      ok = k == 1 ? (b >= lo && b <= hi) : (b & 0xC0) == 0x80;
    }
    if (ok) {
      out.append(text, i, n);
      i += n;
    } else {
      hex(c);
      ++i;
    }
  }
  return out;
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace reasonseg
