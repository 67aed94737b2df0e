// Memory for weights on the CPU (docs/performance.md: huge pages and decoding).
#pragma once
#include <torch/types.h>

#include <vector>

namespace reasonseg {

// An uninitialised tensor for weights: on the CPU, tensors of 4 MiB and more get their own
// 2 MiB-aligned blocks advised as transparent huge pages; elsewhere plain torch::empty.
torch::Tensor empty_weight(const std::vector<int64_t>& shape, const torch::TensorOptions& opts);

}  // namespace reasonseg
