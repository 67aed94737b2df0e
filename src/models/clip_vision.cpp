#include "models/clip_vision.hpp"

#include <ATen/ATen.h>

#include <cmath>

namespace reasonseg {

ClipEncoderLayer::ClipEncoderLayer(const ClipVisionConfig& c)
    : cfg(c),
      q_proj(*this, "self_attn.q_proj", c.hidden_size, c.hidden_size),
      k_proj(*this, "self_attn.k_proj", c.hidden_size, c.hidden_size),
      v_proj(*this, "self_attn.v_proj", c.hidden_size, c.hidden_size),
      out_proj(*this, "self_attn.out_proj", c.hidden_size, c.hidden_size),
      layer_norm1(*this, "layer_norm1", c.hidden_size, c.layer_norm_eps),
      layer_norm2(*this, "layer_norm2", c.hidden_size, c.layer_norm_eps),
      fc1(*this, "mlp.fc1", c.hidden_size, c.intermediate_size),
      fc2(*this, "mlp.fc2", c.intermediate_size, c.hidden_size) {}

torch::Tensor ClipEncoderLayer::forward(const torch::Tensor& x) const {
  const int64_t B = x.size(0), L = x.size(1), H = cfg.num_attention_heads, hd = cfg.hidden_size / H;
  auto h = layer_norm1.forward(x);
  // transformers 4.31 scales q before the product and keeps softmax in the compute dtype.
  auto q = (q_proj.forward(h) * std::pow(double(hd), -0.5)).view({B, L, H, hd}).transpose(1, 2);
  auto k = k_proj.forward(h).view({B, L, H, hd}).transpose(1, 2);
  auto v = v_proj.forward(h).view({B, L, H, hd}).transpose(1, 2);
  auto w = fast_softmax(at::matmul(q, k.transpose(-1, -2)), -1);
  auto a = at::matmul(w, v).transpose(1, 2).reshape({B, L, cfg.hidden_size});
  auto r = x + out_proj.forward(a);
  auto m = fc1.forward(layer_norm2.forward(r));
  m = cfg.hidden_act == "quick_gelu" ? quick_gelu(m) : fast_gelu(m);
  return r + fc2.forward(m);
}

ClipVisionTower::ClipVisionTower(const ClipVisionConfig& c, int layers)
    : cfg_(c),
      class_embedding_(param("embeddings.class_embedding", {c.hidden_size})),
      patch_embedding_(*this, "embeddings.patch_embedding", c.num_channels, c.hidden_size, c.patch_size,
                       c.patch_size, 0, false),
      position_embedding_(param("embeddings.position_embedding.weight", {c.num_patches() + 1, c.hidden_size})),
      pre_layrnorm_(*this, "pre_layrnorm", c.hidden_size, c.layer_norm_eps) {
  for (int i = 0; i < layers; ++i) {
    layers_.push_back(std::make_unique<ClipEncoderLayer>(cfg_));
    child("encoder.layers." + std::to_string(i), *layers_.back());
  }
}

torch::Tensor ClipVisionTower::forward(const torch::Tensor& pixels, std::vector<torch::Tensor>* all) const {
  auto x = patch_embedding_.forward(pixels.to(patch_embedding_.weight.scalar_type()));
  const int64_t B = x.size(0), D = x.size(1);
  x = x.flatten(2).transpose(1, 2);  // [B, N, D], row-major over the patch grid
  auto cls = class_embedding_.view({1, 1, D}).expand({B, 1, D});
  x = at::cat({cls, x}, 1) + position_embedding_.unsqueeze(0);
  x = pre_layrnorm_.forward(x);
  if (all) all->push_back(x);
  for (auto& l : layers_) {
    x = l->forward(x);
    if (all) all->push_back(x);
  }
  return x;
}

}  // namespace reasonseg
