// SAM prompt encoder as modified by LISA (keys under "prompt_encoder.").
#pragma once
#include <vector>

#include "config/config.hpp"
#include "nn/layers.hpp"

namespace reasonseg {

// Prompt points in the SAM input frame (after ResizeLongestSide), label 1 foreground, 0 background.
struct SamPoint {
  float x, y;
  int label;
};
struct SamBox {
  float x0, y0, x1, y1;
};

// Random-Fourier positional encoding (checkpoint's Gaussian matrix), sparse embeddings from
// points / boxes / LISA's text embeddings, and the dense `no_mask_embed`.
class SamPromptEncoder : public Module {
 public:
  explicit SamPromptEncoder(const SamConfig& c);
  // Dense positional encoding of the image embedding grid: [1, C, E, E].
  torch::Tensor dense_pe() const;
  // Sparse embeddings [n, K, C]: points (+ a padding point when no box), box corners, then
  // `text_embeds` [n, 1, C] (LISA); the batch is n = rows of text_embeds (or 1).
  torch::Tensor sparse(const std::vector<SamPoint>& points, const SamBox* box, const torch::Tensor& text_embeds) const;
  // Dense embeddings [n, C, E, E] when no mask prompt is given.
  torch::Tensor dense_no_mask(int64_t n) const;

 private:
  torch::Tensor encode(const torch::Tensor& coords01) const;  // [.., 2] in [0,1] -> [.., C]
  SamConfig cfg_;
  torch::Tensor& gaussian_;
  std::vector<torch::Tensor*> point_embeddings_;
  torch::Tensor& not_a_point_;
  torch::Tensor& no_mask_;
};

}  // namespace reasonseg
