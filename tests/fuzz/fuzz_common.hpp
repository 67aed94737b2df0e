// Shared by the fuzzing harnesses: the parsers under test read files, so each input is written to
// a per-process scratch directory first (in /dev/shm when it exists: no disk traffic).
#pragma once
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

namespace rsfuzz {

inline const std::filesystem::path& scratch() {
  static const std::filesystem::path dir = [] {
    const std::filesystem::path base = std::filesystem::exists("/dev/shm") ? "/dev/shm" : std::filesystem::temp_directory_path();
    auto d = base / ("reasonseg_fuzz_" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

inline std::string write(const std::string& name, const uint8_t* data, size_t size) {
  const auto p = scratch() / name;
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(data), std::streamsize(size));
  return p.string();
}

// Splits an input in two at the first "\n----\n" (for harnesses that need two files).
inline std::pair<std::string, std::string> split2(const uint8_t* data, size_t size) {
  const std::string s(reinterpret_cast<const char*>(data), size);
  const auto at = s.find("\n----\n");
  if (at == std::string::npos) return {s, ""};
  return {s.substr(0, at), s.substr(at + 6)};
}

}  // namespace rsfuzz
