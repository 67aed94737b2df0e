// Small string helpers shared by the file readers, error messages and text streaming.
#pragma once
#include <string>

namespace reasonseg {

inline bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Bytes of the UTF-8 sequence a lead byte announces: 1 for ASCII, 2-4 for the leads of well-formed
// sequences (C2-DF, E0-EF, F0-F4), 0 for a byte that cannot start one.
inline int utf8_sequence_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF) return 2;
  if (lead >= 0xE0 && lead <= 0xEF) return 3;
  if (lead >= 0xF0 && lead <= 0xF4) return 4;
  return 0;
}

}  // namespace reasonseg
