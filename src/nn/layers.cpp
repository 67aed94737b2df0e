#include "nn/layers.hpp"

#include <ATen/ATen.h>

#include "nn/cpu_kernels.hpp"
#include "nn/gemv_bf16.hpp"

namespace reasonseg {

#define REASONSEG_PARAM(name, ...) ModuleChildHelper::param(*this, name, {__VA_ARGS__})

Linear::Linear(Module& parent, const std::string& name, int64_t in, int64_t out, bool has_bias, bool quantizable)
    : weight(ModuleChildHelper::param(*this, "weight", {out, in}, quantizable ? &quant : nullptr)) {
  if (has_bias) bias = &REASONSEG_PARAM("bias", out);
  ModuleChildHelper::child(parent, name, *this);
}

torch::Tensor Linear::forward(const torch::Tensor& x) const {
  if (quant.defined()) return quantized_linear(x, quant, bias);
  // One bf16 token (decoding): a streaming AVX512-BF16 kernel reads the weights at close to
  // memory bandwidth, about twice what LibTorch 1.13's bf16 linear reaches for a single row.
  if (use_bf16_kernels(x) && x.numel() == x.size(-1) && weight.is_contiguous())
    return gemv_bf16(x, weight, bias);
  // One fp32 token: BLAS gemv (OpenBLAS sgemv streams at memory bandwidth; LibTorch's linear
  // for a single row does not).
  if (x.is_cpu() && x.scalar_type() == torch::kFloat32 && x.numel() == x.size(-1) && weight.is_contiguous()) {
    auto y = at::mv(weight, x.reshape({-1}));
    if (bias) y = y + *bias;
    auto sizes = x.sizes().vec();
    sizes.back() = weight.size(0);
    return y.view(sizes);
  }
  return bias ? at::linear(x, weight, *bias) : at::linear(x, weight);
}

LayerNorm::LayerNorm(Module& parent, const std::string& name, int64_t d, double e)
    : weight(REASONSEG_PARAM("weight", d)), bias(REASONSEG_PARAM("bias", d)), dim(d), eps(e) {
  ModuleChildHelper::child(parent, name, *this);
}

torch::Tensor LayerNorm::forward(const torch::Tensor& x) const {
  if (use_bf16_kernels(x) && x.is_contiguous())
    return layer_norm_bf16(x, weight, bias, eps);
  if (x.is_cpu() && x.scalar_type() == torch::kBFloat16)  // same math; LibTorch's fp32 kernel is much faster
    return at::layer_norm(x.to(torch::kFloat32), {dim}, weight.to(torch::kFloat32), bias.to(torch::kFloat32), eps)
        .to(x.scalar_type());
  return at::layer_norm(x, {dim}, weight, bias, eps);
}

LayerNorm2d::LayerNorm2d(Module& parent, const std::string& name, int64_t c, double e)
    : weight(REASONSEG_PARAM("weight", c)), bias(REASONSEG_PARAM("bias", c)), eps(e) {
  ModuleChildHelper::child(parent, name, *this);
}

torch::Tensor LayerNorm2d::forward(const torch::Tensor& x) const {
  auto u = x.mean(1, true);
  auto d = x - u;
  auto s = d.pow(2).mean(1, true);
  auto y = d / (s + eps).sqrt();
  return weight.view({1, -1, 1, 1}) * y + bias.view({1, -1, 1, 1});
}

RMSNorm::RMSNorm(Module& parent, const std::string& name, int64_t d, double e)
    : weight(REASONSEG_PARAM("weight", d)), eps(e) {
  ModuleChildHelper::child(parent, name, *this);
}

torch::Tensor RMSNorm::forward(const torch::Tensor& x) const {
  if (use_bf16_kernels(x) && weight.scalar_type() == torch::kBFloat16)
    return rms_norm_bf16(x, weight, eps);
  auto h = x.to(torch::kFloat32);
  auto var = h.pow(2).mean(-1, true);
  h = h * at::rsqrt(var + eps);
  return weight * h.to(x.scalar_type());
}

Conv2d::Conv2d(Module& parent, const std::string& name, int64_t in, int64_t out, int64_t k, int64_t s, int64_t p,
               bool has_bias)
    : weight(REASONSEG_PARAM("weight", out, in, k, k)), stride(s), padding(p) {
  if (has_bias) bias = &REASONSEG_PARAM("bias", out);
  ModuleChildHelper::child(parent, name, *this);
}

torch::Tensor Conv2d::forward(const torch::Tensor& x) const {
  const int64_t k = weight.size(-1);
  if (x.is_cpu() && stride == k && padding == 0 && weight.size(-2) == k && x.dim() == 4 && x.size(2) % k == 0 &&
      x.size(3) % k == 0) {
    // Non-overlapping patches (ViT patch embeddings): one GEMM over the patches, far faster than
    // LibTorch's CPU convolution in bf16 (docs/performance.md).
    const int64_t B = x.size(0), C = x.size(1), Hp = x.size(2) / k, Wp = x.size(3) / k, O = weight.size(0);
    auto patches = x.view({B, C, Hp, k, Wp, k}).permute({0, 2, 4, 1, 3, 5}).reshape({B * Hp * Wp, C * k * k});
    auto w = weight.view({O, C * k * k});
    auto y = bias ? at::linear(patches, w, *bias) : at::linear(patches, w);
    return y.view({B, Hp, Wp, O}).permute({0, 3, 1, 2});  // NCHW view of channels-last data
  }
  return at::conv2d(x, weight, bias ? *bias : torch::Tensor(), {stride, stride}, {padding, padding});
}

ConvTranspose2d::ConvTranspose2d(Module& parent, const std::string& name, int64_t in, int64_t out, int64_t k,
                                 int64_t s)
    : weight(REASONSEG_PARAM("weight", in, out, k, k)), bias(REASONSEG_PARAM("bias", out)), stride(s) {
  ModuleChildHelper::child(parent, name, *this);
}

torch::Tensor ConvTranspose2d::forward(const torch::Tensor& x) const {
  if (x.is_cpu() && x.scalar_type() != torch::kFloat32) {
    auto y = at::conv_transpose2d(x.to(torch::kFloat32), weight.to(torch::kFloat32), bias.to(torch::kFloat32),
                                  {stride, stride});
    return y.to(x.scalar_type());
  }
  return at::conv_transpose2d(x, weight, bias, {stride, stride});
}

SamMLP::SamMLP(Module& parent, const std::string& name, int64_t in, int64_t hidden, int64_t out, int n) {
  for (int i = 0; i < n; ++i)
    layers.push_back(std::make_unique<Linear>(layers_holder, std::to_string(i), i == 0 ? in : hidden,
                                              i == n - 1 ? out : hidden));
  ModuleChildHelper::child(*this, "layers", layers_holder);
  ModuleChildHelper::child(parent, name, *this);
}

torch::Tensor SamMLP::forward(torch::Tensor x) const {
  for (size_t i = 0; i < layers.size(); ++i) {
    x = layers[i]->forward(x);
    if (i + 1 < layers.size()) x = at::relu(x);
  }
  return x;
}

torch::Tensor quick_gelu(const torch::Tensor& x) {
  if (use_bf16_kernels(x)) return quick_gelu_bf16(x);
  return x * at::sigmoid(x * 1.702);
}

torch::Tensor fast_gelu(const torch::Tensor& x) {
  if (use_bf16_kernels(x)) return gelu_bf16(x);
  if (x.is_cpu() && x.scalar_type() == torch::kBFloat16) return at::gelu(x.to(torch::kFloat32)).to(x.scalar_type());
  return at::gelu(x);
}

torch::Tensor fast_softmax(const torch::Tensor& x, int64_t dim) {
  const bool last = dim == -1 || dim == x.dim() - 1;
  if (use_bf16_kernels(x) && last) return softmax_bf16(x);
  if (x.is_cpu() && x.scalar_type() == torch::kBFloat16) return at::softmax(x, dim, torch::kFloat32).to(x.scalar_type());
  return at::softmax(x, dim);
}


}  // namespace reasonseg
