#include "models/sam_mask_decoder.hpp"

#include <ATen/ATen.h>

#include <cmath>

namespace reasonseg {

SamDecoderAttention::SamDecoderAttention(int64_t dim, int h, int downsample)
    : heads(h),
      q_proj(*this, "q_proj", dim, dim / downsample),
      k_proj(*this, "k_proj", dim, dim / downsample),
      v_proj(*this, "v_proj", dim, dim / downsample),
      out_proj(*this, "out_proj", dim / downsample, dim) {}

torch::Tensor SamDecoderAttention::forward(const torch::Tensor& q0, const torch::Tensor& k0,
                                           const torch::Tensor& v0) const {
  auto split = [&](const torch::Tensor& x) {
    return x.view({x.size(0), x.size(1), heads, x.size(2) / heads}).transpose(1, 2);
  };
  auto q = split(q_proj.forward(q0)), k = split(k_proj.forward(k0)), v = split(v_proj.forward(v0));
  const int64_t c = q.size(3);
  auto attn = fast_softmax(at::matmul(q, k.permute({0, 1, 3, 2})) / std::sqrt(double(c)), -1);
  auto out = at::matmul(attn, v).transpose(1, 2);
  return out_proj.forward(out.reshape({out.size(0), out.size(1), -1}));
}

TwoWayBlock::TwoWayBlock(const SamConfig& c, bool skip)
    : skip_pe(skip),
      self_attn(c.prompt_embed_dim, c.mask_decoder_num_heads, 1),
      cross_attn_token_to_image(c.prompt_embed_dim, c.mask_decoder_num_heads, 2),
      cross_attn_image_to_token(c.prompt_embed_dim, c.mask_decoder_num_heads, 2),
      norm1(*this, "norm1", c.prompt_embed_dim, 1e-5),
      norm2(*this, "norm2", c.prompt_embed_dim, 1e-5),
      norm3(*this, "norm3", c.prompt_embed_dim, 1e-5),
      norm4(*this, "norm4", c.prompt_embed_dim, 1e-5),
      lin1(*this, "mlp.lin1", c.prompt_embed_dim, c.mask_decoder_mlp_dim),
      lin2(*this, "mlp.lin2", c.mask_decoder_mlp_dim, c.prompt_embed_dim) {
  child("self_attn", self_attn);
  child("cross_attn_token_to_image", cross_attn_token_to_image);
  child("cross_attn_image_to_token", cross_attn_image_to_token);
}

void TwoWayBlock::forward(torch::Tensor& queries, torch::Tensor& keys, const torch::Tensor& qpe,
                          const torch::Tensor& kpe) const {
  if (skip_pe) {
    queries = self_attn.forward(queries, queries, queries);
  } else {
    auto q = queries + qpe;
    queries = queries + self_attn.forward(q, q, queries);
  }
  queries = norm1.forward(queries);
  queries = norm2.forward(queries + cross_attn_token_to_image.forward(queries + qpe, keys + kpe, keys));
  queries = norm3.forward(queries + lin2.forward(at::relu(lin1.forward(queries))));
  keys = norm4.forward(keys + cross_attn_image_to_token.forward(keys + kpe, queries + qpe, queries));
}

SamMaskDecoder::SamMaskDecoder(const SamConfig& c)
    : cfg_(c),
      num_mask_tokens_(c.num_multimask_outputs + 1),
      iou_token_(param("iou_token.weight", {1, c.prompt_embed_dim})),
      mask_tokens_(param("mask_tokens.weight", {c.num_multimask_outputs + 1, c.prompt_embed_dim})),
      final_attn_(c.prompt_embed_dim, c.mask_decoder_num_heads, 2),
      norm_final_attn_(*this, "transformer.norm_final_attn", c.prompt_embed_dim, 1e-5),
      up0_(*this, "output_upscaling.0", c.prompt_embed_dim, c.prompt_embed_dim / 4, 2, 2),
      up1_(*this, "output_upscaling.1", c.prompt_embed_dim / 4, 1e-6),
      up3_(*this, "output_upscaling.3", c.prompt_embed_dim / 4, c.prompt_embed_dim / 8, 2, 2),
      iou_head_(*this, "iou_prediction_head", c.prompt_embed_dim, c.iou_head_hidden_dim, c.num_multimask_outputs + 1,
                c.iou_head_depth) {
  for (int i = 0; i < c.mask_decoder_transformer_depth; ++i) {
    layers_.push_back(std::make_unique<TwoWayBlock>(c, i == 0));
    child("transformer.layers." + std::to_string(i), *layers_.back());
  }
  child("transformer.final_attn_token_to_image", final_attn_);
  for (int i = 0; i < num_mask_tokens_; ++i)
    hypernets_.push_back(std::make_unique<SamMLP>(hypernet_holder_, std::to_string(i), c.prompt_embed_dim,
                                                  c.prompt_embed_dim, c.prompt_embed_dim / 8, 3));
  child("output_hypernetworks_mlps", hypernet_holder_);
}

MaskDecoderOutput SamMaskDecoder::forward(const torch::Tensor& image_embeddings, const torch::Tensor& image_pe,
                                          const torch::Tensor& sparse, const torch::Tensor& dense) const {
  const int64_t n = sparse.size(0), C = cfg_.prompt_embed_dim;
  auto output_tokens = at::cat({iou_token_, mask_tokens_}, 0).unsqueeze(0).expand({n, -1, -1});
  auto tokens = at::cat({output_tokens, sparse.to(output_tokens.scalar_type())}, 1);
  auto src = image_embeddings.expand({n, -1, -1, -1}) + dense;
  auto pos = image_pe.expand({n, -1, -1, -1});
  const int64_t h = src.size(2), w = src.size(3);
  // Two-way transformer over flattened image tokens; the query PE is the initial tokens.
  auto keys = src.flatten(2).permute({0, 2, 1});
  auto kpe = pos.flatten(2).permute({0, 2, 1});
  auto queries = tokens;
  for (auto& l : layers_) l->forward(queries, keys, tokens, kpe);
  queries = norm_final_attn_.forward(queries + final_attn_.forward(queries + tokens, keys + kpe, keys));

  auto iou_token_out = queries.select(1, 0);
  auto mask_tokens_out = queries.narrow(1, 1, num_mask_tokens_);
  auto up = keys.transpose(1, 2).reshape({n, C, h, w});
  up = fast_gelu(up1_.forward(up0_.forward(up)));
  up = fast_gelu(up3_.forward(up));
  // Only mask token 0 is kept (multimask_output=False): skip the other hypernetworks.
  auto hyper = hypernets_[0]->forward(mask_tokens_out.select(1, 0)).unsqueeze(1);  // [n, 1, C/8]
  const int64_t c8 = up.size(1), H4 = up.size(2), W4 = up.size(3);
  auto masks = at::matmul(hyper, up.view({n, c8, H4 * W4})).view({n, 1, H4, W4});
  auto iou = iou_head_.forward(iou_token_out).narrow(1, 0, 1);
  return {masks, iou};
}

}  // namespace reasonseg
