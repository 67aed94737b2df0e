// Reporting to a TraceSink from inside the pipeline, and a sink that keeps LibTorch tensors
// (for the tests and `reasonseg segment --dump-tensors`).
#pragma once
#include <torch/types.h>

#include <map>
#include <string>

#include "reasonseg/trace.hpp"

namespace reasonseg {

// Hands `t` (any dtype and device) to `sink` as float32; does nothing when no sink is attached.
void report(TraceSink* sink, const std::string& name, const torch::Tensor& t);

// Keeps every reported tensor (a float32 CPU copy); a name reported twice keeps the last.
class TensorCollector : public TraceSink {
 public:
  void tensor(const std::string& name, const std::vector<int64_t>& shape, const float* data) override;
  std::map<std::string, torch::Tensor> tensors;
};

}  // namespace reasonseg
