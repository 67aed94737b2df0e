#include "pipeline/finite.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <atomic>

#include "util/error.hpp"

namespace reasonseg {

bool all_finite(const torch::Tensor& t) {
  // at::isfinite on bf16 makes a bool tensor and runs far below the memory bandwidth.
  if (!t.is_cpu() || !t.is_contiguous() ||
      (t.scalar_type() != torch::kFloat32 && t.scalar_type() != torch::kBFloat16 && t.scalar_type() != torch::kHalf))
    return at::isfinite(t).all().item<bool>();
  std::atomic<bool> ok{true};
  auto scan = [&](auto* p, int64_t n, auto mask) {  // exponent bits all ones: NaN or Inf
    at::parallel_for(0, n, 1 << 16, [&](int64_t b, int64_t e) {
      bool good = true;
      for (int64_t i = b; i < e; ++i) good &= (p[i] & mask) != mask;
      if (!good) ok = false;
    });
  };
  if (t.scalar_type() == torch::kFloat32) scan(static_cast<const uint32_t*>(t.data_ptr()), t.numel(), uint32_t(0x7F800000));
  else if (t.scalar_type() == torch::kBFloat16) scan(static_cast<const uint16_t*>(t.data_ptr()), t.numel(), uint16_t(0x7F80));
  else scan(static_cast<const uint16_t*>(t.data_ptr()), t.numel(), uint16_t(0x7C00));
  return ok;
}

void require_finite(const torch::Tensor& t, const std::string& what) {
  if (t.numel() && !all_finite(t))
    fail("non-finite values (NaN or Inf) in ", what,
         ": the weights hold NaN/Inf, or the run dtype overflowed (try --dtype fp32 or bf16)");
}

}  // namespace reasonseg
