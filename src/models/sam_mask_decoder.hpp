// SAM mask decoder (keys under "mask_decoder."): two-way transformer, upscaling, hypernetworks.
#pragma once
#include <memory>
#include <vector>

#include "config/config.hpp"
#include "nn/layers.hpp"

namespace reasonseg {

// Attention with q/k/v projected to dim/downsample, `heads` heads, out-projected back.
struct SamDecoderAttention : Module {
  SamDecoderAttention(int64_t dim, int heads, int downsample);
  torch::Tensor forward(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) const;
  int heads;
  Linear q_proj, k_proj, v_proj, out_proj;
};

// Token self-attention, token->image, MLP, image->token cross-attention, each + LayerNorm.
struct TwoWayBlock : Module {
  TwoWayBlock(const SamConfig& c, bool skip_first_layer_pe);
  void forward(torch::Tensor& queries, torch::Tensor& keys, const torch::Tensor& query_pe,
               const torch::Tensor& key_pe) const;
  bool skip_pe;
  SamDecoderAttention self_attn, cross_attn_token_to_image, cross_attn_image_to_token;
  LayerNorm norm1, norm2, norm3, norm4;
  Linear lin1, lin2;
};

struct MaskDecoderOutput {
  torch::Tensor masks;  // [n, 1, 4E, 4E] low-resolution mask logits
  torch::Tensor iou;    // [n, 1]
};

class SamMaskDecoder : public Module {
 public:
  explicit SamMaskDecoder(const SamConfig& c);
  // Single-mask output (multimask_output=False), as LISA uses it.
  MaskDecoderOutput forward(const torch::Tensor& image_embeddings, const torch::Tensor& image_pe,
                            const torch::Tensor& sparse, const torch::Tensor& dense) const;

 private:
  SamConfig cfg_;
  int num_mask_tokens_;
  torch::Tensor& iou_token_;
  torch::Tensor& mask_tokens_;
  std::vector<std::unique_ptr<TwoWayBlock>> layers_;
  SamDecoderAttention final_attn_;
  LayerNorm norm_final_attn_;
  ConvTranspose2d up0_;
  LayerNorm2d up1_;
  ConvTranspose2d up3_;
  std::vector<std::unique_ptr<SamMLP>> hypernets_;
  Module hypernet_holder_;
  SamMLP iou_head_;
};

}  // namespace reasonseg
