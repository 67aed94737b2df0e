// NaN/Inf in weights or an intermediate result is an error to report, never a silent blank mask:
// argmax over NaN logits picks token 0 ("<unk>" forever), and a NaN mask logit thresholds to "no
// pixel" (the fp16 overflow LISA users meet as blank masks).
#pragma once
#include <torch/types.h>

#include <string>

namespace reasonseg {

// True when no element is NaN or Inf. Contiguous fp32/bf16/fp16 CPU tensors are tested on their
// exponent bits, read straight from memory in parallel; anything else through at::isfinite.
bool all_finite(const torch::Tensor& t);

// Throws reasonseg::Error naming `what` unless all_finite(t).
void require_finite(const torch::Tensor& t, const std::string& what);

}  // namespace reasonseg
