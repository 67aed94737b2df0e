#include "pipeline/trace.hpp"

#include "io/safetensors.hpp"

namespace reasonseg {

void report(TraceSink* sink, const std::string& name, const torch::Tensor& t) {
  if (!sink) return;
  auto f = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  sink->tensor(name, f.sizes().vec(), f.data_ptr<float>());
}

void TensorCollector::tensor(const std::string& name, const std::vector<int64_t>& shape, const float* data) {
  tensors[name] = torch::from_blob(const_cast<float*>(data), shape, torch::kFloat32).clone();
}

struct TraceRecorder::Impl {
  TensorCollector collected;
};
TraceRecorder::TraceRecorder() : impl_(std::make_unique<Impl>()) {}
TraceRecorder::~TraceRecorder() = default;
void TraceRecorder::tensor(const std::string& name, const std::vector<int64_t>& shape, const float* data) {
  impl_->collected.tensor(name, shape, data);
}
std::vector<std::string> TraceRecorder::names() const {
  std::vector<std::string> out;
  for (const auto& kv : impl_->collected.tensors) out.push_back(kv.first);
  return out;
}
void TraceRecorder::save_safetensors(const std::string& path) const { write_safetensors(path, impl_->collected.tensors); }

}  // namespace reasonseg
