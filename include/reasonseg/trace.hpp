// Intermediate tensors of a query, for parity checks and debugging.
#pragma once
#include <cstdint>
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

}  // namespace reasonseg
