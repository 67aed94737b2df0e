// Weight-only int8 quantization of a linear layer's weight (docs/models.md, "int8 weights").
#pragma once
#include <torch/types.h>

#include <string>

namespace reasonseg {

// Symmetric int8 with one fp32 scale per output row and group of `group_size` input columns:
//   w[n, k] ~= data[n, k] * scales[n, k / group_size],  data in [-127, 127].
// The last group of a row is shorter when K is not a multiple of the group size.
struct QuantizedWeight {
  torch::Tensor data;    // int8 [N, K], contiguous
  torch::Tensor scales;  // fp32 [N, ceil(K / group_size)], contiguous, finite and >= 0
  int64_t group_size = 0;
  bool defined() const { return data.defined(); }
  int64_t bytes() const;
};

// Group sizes the kernels support (multiples of 16 input values).
inline bool valid_group_size(int64_t g) { return g == 32 || g == 64 || g == 128 || g == 256; }
// Scales per row of K inputs in groups of G (the last group may be shorter).
inline int64_t scale_groups(int64_t K, int64_t G) { return (K + G - 1) / G; }

// Quantizes a floating-point [N, K] CPU tensor (any float dtype), row block by row block, so no
// fp32 copy of the whole matrix is made. NaN/Inf weights throw naming `name`. Deterministic: the
// same input gives the same bytes whatever the thread count (convert and load-time agree).
QuantizedWeight quantize_int8(const torch::Tensor& w, int64_t group_size, const std::string& name);

// Checks a stored quantized weight against the layer's shape: dtypes, shapes, finite non-negative
// scales. `where` names the file and key in the error.
void validate_quantized(const QuantizedWeight& q, int64_t N, int64_t K, const std::string& where);

// The dequantized weight [N, K] in `dtype` on q's device (CUDA path and non-AVX CPUs).
torch::Tensor dequantize(const QuantizedWeight& q, torch::ScalarType dtype);

// y = x W^T (+ bias) with W quantized: one token through the int8 GEMV (CPU), more tokens through
// bf16/fp32 tiles dequantized on the fly into LibTorch's GEMM, other devices through dequantize().
torch::Tensor quantized_linear(const torch::Tensor& x, const QuantizedWeight& q, const torch::Tensor* bias);

// The same without the AVX-512 kernels (what CPUs without them run; tests compare the two).
torch::Tensor quantized_linear_portable(const torch::Tensor& x, const QuantizedWeight& q, const torch::Tensor* bias);

}  // namespace reasonseg
