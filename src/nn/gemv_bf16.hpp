// Matrix-vector product for one bf16 token on CPUs with AVX512-BF16 (decode is bandwidth-bound).
#pragma once
#include <torch/types.h>

namespace reasonseg {

// True when this CPU runs vdpbf16ps (AVX512-BF16) and the kernel was compiled in.
bool gemv_bf16_available();
// y[n] = sum_k w[n, k] x[k] (+ bias[n]): x bf16 with one row ([K] or [1, .., K]), w bf16 [N, K]
// contiguous. fp32 accumulation, rounded to bf16 like LibTorch's bf16 linear.
torch::Tensor gemv_bf16(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor* bias);

}  // namespace reasonseg
