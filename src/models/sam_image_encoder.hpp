// SAM ViT image encoder (keys under "image_encoder.": patch_embed, pos_embed, blocks.N, neck).
#pragma once
#include <memory>
#include <vector>

#include "config/config.hpp"
#include "nn/layers.hpp"

namespace reasonseg {

// Multi-head attention over an HxW token grid with SAM's decomposed relative positions.
struct SamAttention : Module {
  SamAttention(const SamConfig& c, int input_size);
  torch::Tensor forward(const torch::Tensor& x) const;  // [B, H, W, C] -> proj(attend(qkv(x)))
  // Attention over a grid of qkv outputs [B, H, W, 3C] -> [B, H, W, C], before proj.
  torch::Tensor attend(const torch::Tensor& qkv_grid) const;
  int heads, input_size;
  bool use_rel_pos;
  Linear qkv, proj;
  torch::Tensor *rel_pos_h = nullptr, *rel_pos_w = nullptr;
};

// SAM attention through LibTorch 2.x's fused scaled_dot_product_attention (the path on CUDA):
// the decomposed relative-position terms become its additive attention bias, which the
// memory-efficient kernel accepts. q, k, v [B, heads, N, hd] (q unscaled; SDPA's default scale is
// SAM's hd^-0.5); rel_h [B*heads, H, W, H] and rel_w [B*heads, H, W, W], or both undefined.
// Returns [B, heads, N, hd]. Throws reasonseg::Error on LibTorch 1.x.
torch::Tensor sam_attention_sdpa(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                 const torch::Tensor& rel_h, const torch::Tensor& rel_w);

// Transformer block: windowed (zero-padded, unmasked) or global attention, then an MLP.
struct SamBlock : Module {
  SamBlock(const SamConfig& c, int window_size);
  torch::Tensor forward(const torch::Tensor& x) const;
  int window;
  LayerNorm norm1, norm2;
  SamAttention attn;
  Linear lin1, lin2;
};

class SamImageEncoder : public Module {
 public:
  explicit SamImageEncoder(const SamConfig& c);
  // x [1, 3, S, S] (normalised, padded) -> image embedding [1, prompt_dim, S/p, S/p].
  torch::Tensor forward(const torch::Tensor& x) const;

 private:
  SamConfig cfg_;
  Conv2d patch_embed_;
  torch::Tensor& pos_embed_;
  std::vector<std::unique_ptr<SamBlock>> blocks_;
  Conv2d neck0_;
  LayerNorm2d neck1_;
  Conv2d neck2_;
  LayerNorm2d neck3_;
};

}  // namespace reasonseg
