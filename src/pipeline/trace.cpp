#include "pipeline/trace.hpp"

namespace reasonseg {

void report(TraceSink* sink, const std::string& name, const torch::Tensor& t) {
  if (!sink) return;
  auto f = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  sink->tensor(name, f.sizes().vec(), f.data_ptr<float>());
}

void TensorCollector::tensor(const std::string& name, const std::vector<int64_t>& shape, const float* data) {
  tensors[name] = torch::from_blob(const_cast<float*>(data), shape, torch::kFloat32).clone();
}

}  // namespace reasonseg
