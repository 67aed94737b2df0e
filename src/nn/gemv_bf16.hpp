// Matrix-vector product for one bf16 token on CPUs with AVX512-BF16 (decode is bandwidth-bound).
#pragma once
#include <torch/types.h>

namespace reasonseg {

// y[n] = sum_k w[n, k] x[k] (+ bias[n]): x bf16 with one row ([K] or [1, .., K]), w bf16 [N, K]
// contiguous. fp32 accumulation, rounded to bf16 like LibTorch's bf16 linear. Call only where
// bf16_kernels_available() (nn/cpu_kernels.hpp) says this CPU and build have AVX512-BF16.
torch::Tensor gemv_bf16(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor* bias);

}  // namespace reasonseg
