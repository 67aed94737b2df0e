// Wall-clock time of a pipeline stage, waiting first for the work the stage queued on the
// device's current stream (CUDA work is asynchronous; a second stream keeps running).
#pragma once
#include <torch/types.h>

#include <chrono>

#include "nn/cuda_support.hpp"

namespace reasonseg {

class StageClock {
 public:
  explicit StageClock(torch::Device device) : device_(device), t0_(std::chrono::steady_clock::now()) {}
  double ms() const {
    sync_current_stream(device_);
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0_).count();
  }

 private:
  torch::Device device_;
  std::chrono::steady_clock::time_point t0_;
};

}  // namespace reasonseg
