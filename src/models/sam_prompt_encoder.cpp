#include "models/sam_prompt_encoder.hpp"

#include <ATen/ATen.h>

#include <cmath>

namespace reasonseg {

SamPromptEncoder::SamPromptEncoder(const SamConfig& c)
    : cfg_(c),
      gaussian_(param("pe_layer.positional_encoding_gaussian_matrix", {2, c.prompt_embed_dim / 2})),
      not_a_point_(param("not_a_point_embed.weight", {1, c.prompt_embed_dim})),
      no_mask_(param("no_mask_embed.weight", {1, c.prompt_embed_dim})) {
  for (int i = 0; i < 4; ++i)
    point_embeddings_.push_back(&param("point_embeddings." + std::to_string(i) + ".weight", {1, c.prompt_embed_dim}));
}

torch::Tensor SamPromptEncoder::encode(const torch::Tensor& coords01) const {
  // LISA computes the encoding in the Gaussian matrix's dtype (bf16 in bf16 mode).
  auto c = (2 * coords01.to(gaussian_.scalar_type()) - 1);
  c = at::matmul(c, gaussian_) * (2 * M_PI);
  return at::cat({at::sin(c), at::cos(c)}, -1);
}

torch::Tensor SamPromptEncoder::dense_pe() const {
  const int64_t E = cfg_.embedding_size();
  auto opts = torch::TensorOptions().dtype(gaussian_.scalar_type()).device(gaussian_.device());
  auto grid = at::ones({E, E}, opts);
  auto y = (grid.cumsum(0) - 0.5) / E;
  auto x = (grid.cumsum(1) - 0.5) / E;
  auto pe = encode(at::stack({x, y}, -1));  // [E, E, C]
  return pe.permute({2, 0, 1}).unsqueeze(0);
}

torch::Tensor SamPromptEncoder::sparse(const std::vector<SamPoint>& points, const SamBox* box,
                                       const torch::Tensor& text_embeds) const {
  const int64_t n = text_embeds.defined() ? text_embeds.size(0) : 1;
  const int64_t C = cfg_.prompt_embed_dim;
  const double S = cfg_.image_size;
  std::vector<torch::Tensor> parts;
  auto dtype = no_mask_.scalar_type();
  auto dev = no_mask_.device();
  if (!points.empty()) {
    std::vector<float> xy;
    std::vector<int> labels;
    for (auto& p : points) xy.push_back(float((p.x + 0.5) / S)), xy.push_back(float((p.y + 0.5) / S)), labels.push_back(p.label);
    if (!box) xy.push_back(0.5f / float(S)), xy.push_back(0.5f / float(S)), labels.push_back(-1);  // padding point (0,0)
    auto coords = torch::from_blob(xy.data(), {int64_t(labels.size()), 2}, torch::kFloat32).clone().to(dev);
    auto emb = encode(coords).to(dtype);
    for (size_t i = 0; i < labels.size(); ++i) {
      auto row = emb[int64_t(i)];
      if (labels[i] == -1) row = not_a_point_[0];  // SAM zeroes the PE, then adds not_a_point
      else row = row + (*point_embeddings_[labels[i] == 1 ? 1 : 0])[0];
      emb[int64_t(i)] = row;
    }
    parts.push_back(emb.unsqueeze(0).expand({n, -1, C}));
  }
  if (box) {
    std::vector<float> xy = {float((box->x0 + 0.5) / S), float((box->y0 + 0.5) / S), float((box->x1 + 0.5) / S),
                             float((box->y1 + 0.5) / S)};
    auto coords = torch::from_blob(xy.data(), {2, 2}, torch::kFloat32).clone().to(dev);
    auto emb = encode(coords).to(dtype);
    emb[0] = emb[0] + (*point_embeddings_[2])[0];
    emb[1] = emb[1] + (*point_embeddings_[3])[0];
    parts.push_back(emb.unsqueeze(0).expand({n, -1, C}));
  }
  if (text_embeds.defined()) parts.push_back(text_embeds.to(dtype));
  if (parts.empty()) return at::empty({n, 0, C}, torch::TensorOptions().dtype(dtype).device(dev));
  return at::cat(parts, 1);
}

torch::Tensor SamPromptEncoder::dense_no_mask(int64_t n) const {
  const int64_t E = cfg_.embedding_size();
  return no_mask_.view({1, -1, 1, 1}).expand({n, -1, E, E});
}

}  // namespace reasonseg
