// Parameter holders for the standard layers (names as in torch.nn: weight, bias).
#pragma once
#include "nn/module.hpp"

namespace reasonseg {

// y = x W^T + b.
struct Linear : Module {
  // quantizable: the weight may be loaded as int8 (LoadSettings::quantize_group_size, or a
  // checkpoint that stores it so); then `quant` holds it and `weight` stays undefined.
  Linear(Module& parent, const std::string& name, int64_t in, int64_t out, bool bias = true, bool quantizable = false);
  torch::Tensor forward(const torch::Tensor& x) const;
  QuantizedWeight quant;
  torch::Tensor& weight;
  torch::Tensor* bias = nullptr;
};

// LayerNorm over the last dimension.
struct LayerNorm : Module {
  LayerNorm(Module& parent, const std::string& name, int64_t dim, double eps);
  torch::Tensor forward(const torch::Tensor& x) const;
  torch::Tensor &weight, &bias;
  int64_t dim;
  double eps;
};

// SAM's LayerNorm2d: normalises the channels of an NCHW tensor at every pixel.
struct LayerNorm2d : Module {
  LayerNorm2d(Module& parent, const std::string& name, int64_t channels, double eps = 1e-6);
  torch::Tensor forward(const torch::Tensor& x) const;
  torch::Tensor &weight, &bias;
  double eps;
};

// LLaMA's RMSNorm: fp32 inside, result cast back before the weight multiply.
struct RMSNorm : Module {
  RMSNorm(Module& parent, const std::string& name, int64_t dim, double eps);
  torch::Tensor forward(const torch::Tensor& x) const;
  torch::Tensor& weight;
  double eps;
};

struct Conv2d : Module {
  Conv2d(Module& parent, const std::string& name, int64_t in, int64_t out, int64_t k, int64_t stride,
         int64_t padding, bool bias);
  torch::Tensor forward(const torch::Tensor& x) const;
  torch::Tensor& weight;
  torch::Tensor* bias = nullptr;
  int64_t stride, padding;
};

// ConvTranspose2d (weight [in, out, k, k]). Runs in fp32 on CPU: LibTorch 1.13 has no bf16 kernel.
struct ConvTranspose2d : Module {
  ConvTranspose2d(Module& parent, const std::string& name, int64_t in, int64_t out, int64_t k, int64_t stride);
  torch::Tensor forward(const torch::Tensor& x) const;
  torch::Tensor &weight, &bias;
  int64_t stride;
};

// SAM's MLP: Linear layers named layers.0..n-1 with ReLU between.
struct SamMLP : Module {
  SamMLP(Module& parent, const std::string& name, int64_t in, int64_t hidden, int64_t out, int num_layers);
  torch::Tensor forward(torch::Tensor x) const;
  std::vector<std::unique_ptr<Linear>> layers;
  Module layers_holder;
};

torch::Tensor quick_gelu(const torch::Tensor& x);
// GELU (erf) and softmax with LibTorch's results for bf16 (fp32 math, one rounding), but on CPU
// through the fused kernels of nn/cpu_kernels.hpp (or LibTorch's fp32 kernels where the CPU
// lacks AVX512-BF16): LibTorch 1.13's own bf16 kernels are several times slower.
torch::Tensor fast_gelu(const torch::Tensor& x);
torch::Tensor fast_softmax(const torch::Tensor& x, int64_t dim);


}  // namespace reasonseg
