// A stderr progress bar with rate and ETA, for loading and evaluation.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace reasonseg {

class ProgressBar {
 public:
  // `total` units; `bytes` formats units as sizes. Disabled bars print nothing.
  ProgressBar(std::string label, int64_t total, bool bytes, bool enabled);
  ~ProgressBar();
  void advance(int64_t n);
  void finish();

 private:
  void draw(bool final);
  std::string label_;
  int64_t total_, done_ = 0;
  bool bytes_, enabled_, finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace reasonseg
