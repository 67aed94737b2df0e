// Intermediate tensors of a query, for parity checks and debugging.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace reasonseg {

// Receives the named intermediate tensors a call computes, as they are computed. Attaching one
// changes nothing about what runs: encodings cached in an ImageContext and keys/values reused from
// earlier prompts are not recomputed, so they are not reported again. Names, shapes and positions
// are listed in docs/architecture.md ("Trace names"). Called on the thread that made the call.
class TraceSink {
 public:
  virtual ~TraceSink() = default;
  // `data`: the product of `shape` float32 values, row-major, valid during the call only.
  virtual void tensor(const std::string& name, const std::vector<int64_t>& shape, const float* data) = 0;
};

// A TraceSink that keeps a float32 copy of every tensor (a name reported twice keeps the last) and
// writes them as one safetensors file, as `reasonseg segment --dump-tensors` does.
class TraceRecorder : public TraceSink {
 public:
  TraceRecorder();
  ~TraceRecorder() override;
  void tensor(const std::string& name, const std::vector<int64_t>& shape, const float* data) override;
  std::vector<std::string> names() const;  // sorted
  void save_safetensors(const std::string& path) const;  // throws reasonseg::Error naming the file

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace reasonseg
