// LLaMA decoder (HF LlamaForCausalLM keys: model.embed_tokens, model.layers.N, model.norm, lm_head).
#pragma once
#include <memory>
#include <vector>

#include "config/config.hpp"
#include "nn/layers.hpp"

namespace reasonseg {

// Static key/value cache: one [1, kv_heads, capacity, head_dim] buffer per layer for K and V,
// allocated once; `length` positions are valid. Truncating keeps a shared prefix.
struct KVCache {
  std::vector<torch::Tensor> k, v;
  int64_t length = 0;
  int64_t capacity() const { return k.empty() ? 0 : k[0].size(2); }
};

// Copies positions [0, n) of every layer's keys and values from src into dst.
void copy_positions(KVCache& dst, const KVCache& src, int64_t n);

// Inputs of a decoding step whose shapes do not depend on the position (Llama::decode_static):
// the token id and its cache position live in device tensors, attention covers the first
// `span` cache positions and masks those after `position`. Such a step can be captured once
// into a CUDA graph and replayed for every token.
struct StaticDecodeInputs {
  torch::Tensor token;     // [1] int64: the token to run
  torch::Tensor position;  // [1] int64: its position (= cache length before the step)
  torch::Tensor span_positions;  // [span] int64: 0..span-1
  torch::Tensor cos, sin;  // [max_position_embeddings, head_dim] rotary tables, run dtype
};

// Pre-norm decoder layer: RMSNorm -> rotary causal attention (fp32 softmax) -> residual,
// RMSNorm -> SwiGLU MLP -> residual.
struct LlamaDecoderLayer : Module {
  LlamaDecoderLayer(const LlamaConfig& c);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                        torch::Tensor& k_cache, torch::Tensor& v_cache, int64_t past) const;
  // One token at the device-side `position`, attending to cache positions where `visible`
  // ([span] bool) is true.
  torch::Tensor forward_static(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                               torch::Tensor& k_cache, torch::Tensor& v_cache, const torch::Tensor& position,
                               const torch::Tensor& visible) const;
  // After attention: o_proj into the residual, then RMSNorm -> SwiGLU MLP into the residual.
  torch::Tensor finish(const torch::Tensor& x, const torch::Tensor& attn, bool fused) const;
  const LlamaConfig& cfg;
  Linear q_proj, k_proj, v_proj, o_proj;
  Linear gate_proj, up_proj, down_proj;
  RMSNorm input_layernorm, post_attention_layernorm;
};

// The decoder body; its tensors are registered by LisaModel under "model." plus "lm_head".
class Llama {
 public:
  Llama(Module& parent, const LlamaConfig& cfg);
  // Token ids [T] -> embeddings [1, T, H].
  torch::Tensor embed(const torch::Tensor& ids) const;
  // Runs `x` [1, T, H] at positions cache.length..+T, appends to the cache and returns the
  // final-norm hidden states [1, T, H].
  torch::Tensor forward(const torch::Tensor& x, KVCache& cache) const;
  torch::Tensor logits(const torch::Tensor& hidden) const { return lm_head_.forward(hidden); }
  // The same step as forward() on one token, with every shape fixed (see StaticDecodeInputs):
  // writes the token's keys/values at in.position, returns the final-norm hidden state [1, 1, H].
  // Does not touch cache.length (the caller advances it). No host synchronisation inside.
  torch::Tensor decode_static(const StaticDecodeInputs& in, KVCache& cache) const;
  // Rotary tables for every position, as decode_static reads them.
  void rope_table(torch::ScalarType dtype, torch::Device dev, torch::Tensor& cos, torch::Tensor& sin) const;
  KVCache new_cache(int64_t capacity, torch::ScalarType dtype, torch::Device device) const;
  const LlamaConfig& config() const { return cfg_; }

 private:
  void rope_tables(int64_t start, int64_t len, torch::ScalarType dtype, torch::Device dev, torch::Tensor& cos,
                   torch::Tensor& sin) const;
  LlamaConfig cfg_;
  torch::Tensor& embed_tokens_;
  std::vector<std::unique_ptr<LlamaDecoderLayer>> layers_;
  RMSNorm norm_;
  Linear lm_head_;
  torch::Tensor inv_freq_;
};

}  // namespace reasonseg
