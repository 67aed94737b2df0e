// NaN/Inf in an intermediate result is an error to report, never a silent blank mask: argmax
// over NaN logits picks token 0 ("<unk>" forever), and a NaN mask logit thresholds to "no
// pixel" (the fp16 overflow LISA users meet as blank masks).
#pragma once
#include <ATen/ATen.h>

#include <string>

#include "util/error.hpp"

namespace reasonseg {

inline void require_finite(const at::Tensor& t, const std::string& what) {
  if (t.numel() && !at::isfinite(t).all().item<bool>())
    fail("non-finite values (NaN or Inf) in ", what,
         ": the weights hold NaN/Inf, or the run dtype overflowed (try --dtype fp32 or bf16)");
}

}  // namespace reasonseg
