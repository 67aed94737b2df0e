// CLIP ViT vision tower (HF CLIPVisionModel keys under "vision_model.").
#pragma once
#include <memory>
#include <vector>

#include "config/config.hpp"
#include "nn/layers.hpp"

namespace reasonseg {

// One pre-norm encoder layer: x + attn(LN1 x), then + fc2(act(fc1(LN2 x))).
struct ClipEncoderLayer : Module {
  ClipEncoderLayer(const ClipVisionConfig& c);
  torch::Tensor forward(const torch::Tensor& x) const;
  const ClipVisionConfig& cfg;
  Linear q_proj, k_proj, v_proj, out_proj;
  LayerNorm layer_norm1, layer_norm2;
  Linear fc1, fc2;
};

// Patch conv + class/position embeddings, pre_layrnorm, then the first `layers` encoder layers
// (layers past the selected hidden state are never declared, loaded or run).
class ClipVisionTower : public Module {
 public:
  ClipVisionTower(const ClipVisionConfig& cfg, int layers);
  // pixels [B,3,S,S] -> hidden_states[layers] [B, 1+N, D]; `all` receives every hidden state.
  torch::Tensor forward(const torch::Tensor& pixels, std::vector<torch::Tensor>* all = nullptr) const;

 private:
  ClipVisionConfig cfg_;
  torch::Tensor& class_embedding_;
  Conv2d patch_embedding_;
  torch::Tensor& position_embedding_;
  LayerNorm pre_layrnorm_;
  std::vector<std::unique_ptr<ClipEncoderLayer>> layers_;
};

}  // namespace reasonseg
