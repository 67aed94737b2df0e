#include "models/llama.hpp"

#include <ATen/ATen.h>
#include <torch/version.h>

#include <cmath>
#include <limits>

#include "nn/cpu_kernels.hpp"
#include "util/error.hpp"

namespace reasonseg {

namespace {
// The LLM's linear layers and lm_head may be int8 (docs/models.md); embeddings and norms may not.
constexpr bool kQuantizable = true;

torch::Tensor rotate_half(const torch::Tensor& x) {
  auto n = x.size(-1) / 2;
  return at::cat({-x.narrow(-1, n, n), x.narrow(-1, 0, n)}, -1);
}

#if TORCH_VERSION_MAJOR >= 2
// Grouped-query attention through LibTorch 2.x's fused kernel (flash / memory-efficient): each KV
// head repeated for its query heads; `mask` true = attend. q [1, H, T, hd] -> [1, T, H * hd].
torch::Tensor sdpa_gqa(const torch::Tensor& q, const torch::Tensor& keys, const torch::Tensor& values,
                       const c10::optional<at::Tensor>& mask) {
  const int64_t H = q.size(1), T = q.size(2), hd = q.size(3), rep = H / keys.size(1);
  auto kk = rep > 1 ? keys.repeat_interleave(rep, 1) : keys;
  auto vv = rep > 1 ? values.repeat_interleave(rep, 1) : values;
  return at::scaled_dot_product_attention(q, kk, vv, mask, 0.0, false).transpose(1, 2).reshape({1, T, H * hd});
}
#endif
}  // namespace

LlamaDecoderLayer::LlamaDecoderLayer(const LlamaConfig& c)
    : cfg(c),
      q_proj(*this, "self_attn.q_proj", c.hidden_size, c.num_attention_heads * c.head_dim(), false, kQuantizable),
      k_proj(*this, "self_attn.k_proj", c.hidden_size, c.num_key_value_heads * c.head_dim(), false, kQuantizable),
      v_proj(*this, "self_attn.v_proj", c.hidden_size, c.num_key_value_heads * c.head_dim(), false, kQuantizable),
      o_proj(*this, "self_attn.o_proj", c.num_attention_heads * c.head_dim(), c.hidden_size, false, kQuantizable),
      gate_proj(*this, "mlp.gate_proj", c.hidden_size, c.intermediate_size, false, kQuantizable),
      up_proj(*this, "mlp.up_proj", c.hidden_size, c.intermediate_size, false, kQuantizable),
      down_proj(*this, "mlp.down_proj", c.intermediate_size, c.hidden_size, false, kQuantizable),
      input_layernorm(*this, "input_layernorm", c.hidden_size, c.rms_norm_eps),
      post_attention_layernorm(*this, "post_attention_layernorm", c.hidden_size, c.rms_norm_eps) {}

torch::Tensor LlamaDecoderLayer::forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                                         torch::Tensor& k_cache, torch::Tensor& v_cache, int64_t past) const {
  const int64_t T = x.size(1), H = cfg.num_attention_heads, KV = cfg.num_key_value_heads, hd = cfg.head_dim();
  // bf16 on CPUs with AVX512-BF16: RoPE, one-token attention and SwiGLU as fused kernels (each
  // replaces a chain of small LibTorch ops that dominated a decoding step after the GEMVs).
  const bool fused = use_bf16_kernels(x);
  auto h = input_layernorm.forward(x);
  torch::Tensor q, k;
  auto v = v_proj.forward(h).view({1, T, KV, hd}).transpose(1, 2);
  if (fused) {
    auto c = cos.view({T, hd}), s = sin.view({T, hd});
    q = rope_bf16(q_proj.forward(h).view({1, T, H, hd}), c, s).transpose(1, 2);
    k = rope_bf16(k_proj.forward(h).view({1, T, KV, hd}), c, s).transpose(1, 2);
  } else {
    q = q_proj.forward(h).view({1, T, H, hd}).transpose(1, 2);
    k = k_proj.forward(h).view({1, T, KV, hd}).transpose(1, 2);
    q = q * cos + rotate_half(q) * sin;
    k = k * cos + rotate_half(k) * sin;
  }
  k_cache.narrow(2, past, T).copy_(k);
  v_cache.narrow(2, past, T).copy_(v);
  const int64_t S = past + T;
  auto keys = k_cache.narrow(2, 0, S), values = v_cache.narrow(2, 0, S);
  const int64_t rep = H / KV;
  torch::Tensor attn;
  if (fused && T == 1) {
    attn = decode_attention_bf16(q.transpose(1, 2), k_cache, v_cache, S);
  } else
#if TORCH_VERSION_MAJOR >= 2
  if (x.is_cuda()) {
    c10::optional<at::Tensor> mask;
    if (T > 1)  // query i (position past+i) sees keys 0..past+i; true = attend
      mask = at::ones({T, S}, torch::TensorOptions().dtype(torch::kBool).device(x.device())).tril(past);
    attn = sdpa_gqa(q, keys, values, mask);
  } else
#endif
  {
    // Grouped-query attention without copying K/V: query heads of one KV head are stacked.
    auto qg = q.reshape({1, KV, rep * T, hd});
    auto raw = at::matmul(qg, keys.transpose(-1, -2));  // [1, KV, rep*T, S]
    torch::Tensor probs;
    if (fused) {
      // HF divides in bf16, by the divisor rounded to bf16 (a wrapped scalar takes the tensor's dtype).
      probs = causal_softmax_bf16(raw, float(c10::BFloat16(float(std::sqrt(double(hd))))), past, T);
    } else {
      probs = (raw / std::sqrt(double(hd))).to(torch::kFloat32);
      if (T > 1) {
        // Causal: query i (position past+i) sees keys 0..past+i.
        auto mask = at::ones({T, S}, torch::TensorOptions().dtype(torch::kBool).device(x.device())).triu(past + 1);
        probs = probs.view({1, KV, rep, T, S}).masked_fill(mask, -std::numeric_limits<float>::infinity()).view({1, KV, rep * T, S});
      }
      probs = at::softmax(probs, -1).to(q.scalar_type());
    }
    attn = at::matmul(probs, values).view({1, H, T, hd}).transpose(1, 2).reshape({1, T, H * hd});
  }
  return finish(x, attn, fused);
}

torch::Tensor LlamaDecoderLayer::finish(const torch::Tensor& x, const torch::Tensor& attn, bool fused) const {
  auto r = x + o_proj.forward(attn);
  auto m = post_attention_layernorm.forward(r);
  auto act = fused ? silu_mul_bf16(gate_proj.forward(m), up_proj.forward(m))
                   : at::silu(gate_proj.forward(m)) * up_proj.forward(m);
  return r + down_proj.forward(act);
}

torch::Tensor LlamaDecoderLayer::forward_static(const torch::Tensor& x, const torch::Tensor& cos,
                                                const torch::Tensor& sin, torch::Tensor& k_cache, torch::Tensor& v_cache,
                                                const torch::Tensor& position, const torch::Tensor& visible) const {
  const int64_t H = cfg.num_attention_heads, KV = cfg.num_key_value_heads, hd = cfg.head_dim(), rep = H / KV;
  const int64_t span = visible.size(0);
  auto h = input_layernorm.forward(x);
  auto q = q_proj.forward(h).view({1, 1, H, hd}).transpose(1, 2);
  auto k = k_proj.forward(h).view({1, 1, KV, hd}).transpose(1, 2);
  auto v = v_proj.forward(h).view({1, 1, KV, hd}).transpose(1, 2);
  q = q * cos + rotate_half(q) * sin;
  k = k * cos + rotate_half(k) * sin;
  k_cache.index_copy_(2, position, k);
  v_cache.index_copy_(2, position, v);
  auto keys = k_cache.narrow(2, 0, span), values = v_cache.narrow(2, 0, span);
  torch::Tensor attn;
#if TORCH_VERSION_MAJOR >= 2
  if (x.is_cuda()) {
    attn = sdpa_gqa(q, keys, values, visible.view({1, 1, 1, span}));
  } else
#endif
  {
    // As forward() for one token (fp32 softmax of the bf16-divided scores); masked positions get
    // exactly zero weight, so the result equals attending to the visible positions only.
    auto raw = at::matmul(q.reshape({1, KV, rep, hd}), keys.transpose(-1, -2));
    auto scores = (raw / std::sqrt(double(hd))).to(torch::kFloat32);
    scores = scores.masked_fill(visible.logical_not(), -std::numeric_limits<float>::infinity());
    auto probs = at::softmax(scores, -1).to(q.scalar_type());
    attn = at::matmul(probs, values).view({1, H, 1, hd}).transpose(1, 2).reshape({1, 1, H * hd});
  }
  return finish(x, attn, false);
}

Llama::Llama(Module& parent, const LlamaConfig& c)
    : cfg_(c),
      embed_tokens_(ModuleChildHelper::param(parent, "model.embed_tokens.weight", {c.vocab_size, c.hidden_size})),
      norm_(parent, "model.norm", c.hidden_size, c.rms_norm_eps),
      lm_head_(parent, "lm_head", c.hidden_size, c.vocab_size, false, kQuantizable) {
  for (int i = 0; i < c.num_hidden_layers; ++i) {
    layers_.push_back(std::make_unique<LlamaDecoderLayer>(cfg_));
    ModuleChildHelper::child(parent, "model.layers." + std::to_string(i), *layers_.back());
  }
  const int64_t hd = c.head_dim();
  inv_freq_ = 1.0 / at::pow(c.rope_theta, at::arange(0, hd, 2, torch::kFloat32) / double(hd));
}

torch::Tensor Llama::embed(const torch::Tensor& ids) const {
  auto mx = ids.numel() ? ids.max().item<int64_t>() : 0;
  auto mn = ids.numel() ? ids.min().item<int64_t>() : 0;
  if (mn < 0 || mx >= cfg_.vocab_size)
    fail("token id ", mn < 0 ? mn : mx, " is outside the model's vocabulary of ", cfg_.vocab_size);
  return at::embedding(embed_tokens_, ids.to(embed_tokens_.device())).unsqueeze(0);
}

void Llama::rope_tables(int64_t start, int64_t len, torch::ScalarType dtype, torch::Device dev, torch::Tensor& cos,
                        torch::Tensor& sin) const {
  // fp32 tables (positions / linear factor) cast to the run dtype, as HF 4.31 does.
  auto t = at::arange(start, start + len, torch::kFloat32) / cfg_.rope_linear_factor;
  auto freqs = at::outer(t, inv_freq_);
  auto emb = at::cat({freqs, freqs}, -1);
  cos = emb.cos().to(dev, dtype).view({1, 1, len, -1});
  sin = emb.sin().to(dev, dtype).view({1, 1, len, -1});
}

void Llama::rope_table(torch::ScalarType dtype, torch::Device dev, torch::Tensor& cos, torch::Tensor& sin) const {
  rope_tables(0, cfg_.max_position_embeddings, dtype, dev, cos, sin);
  cos = cos.view({cfg_.max_position_embeddings, -1});
  sin = sin.view({cfg_.max_position_embeddings, -1});
}

torch::Tensor Llama::decode_static(const StaticDecodeInputs& in, KVCache& cache) const {
  const int64_t hd = cfg_.head_dim();
  auto x = embed_tokens_.index_select(0, in.token).unsqueeze(0);  // [1, 1, H]
  auto cos = in.cos.index_select(0, in.position).view({1, 1, 1, hd});
  auto sin = in.sin.index_select(0, in.position).view({1, 1, 1, hd});
  auto visible = in.span_positions.le(in.position);
  for (size_t i = 0; i < layers_.size(); ++i)
    x = layers_[i]->forward_static(x, cos, sin, cache.k[i], cache.v[i], in.position, visible);
  return norm_.forward(x);
}

void copy_positions(KVCache& dst, const KVCache& src, int64_t n) {
  for (size_t l = 0; l < dst.k.size() && n > 0; ++l) {
    dst.k[l].narrow(2, 0, n).copy_(src.k[l].narrow(2, 0, n));
    dst.v[l].narrow(2, 0, n).copy_(src.v[l].narrow(2, 0, n));
  }
}

KVCache Llama::new_cache(int64_t capacity, torch::ScalarType dtype, torch::Device device) const {
  KVCache c;
  auto opts = torch::TensorOptions().dtype(dtype).device(device);
  for (int i = 0; i < cfg_.num_hidden_layers; ++i) {
    c.k.push_back(at::empty({1, cfg_.num_key_value_heads, capacity, cfg_.head_dim()}, opts));
    c.v.push_back(at::empty({1, cfg_.num_key_value_heads, capacity, cfg_.head_dim()}, opts));
  }
  return c;
}

torch::Tensor Llama::forward(const torch::Tensor& x0, KVCache& cache) const {
  const int64_t T = x0.size(1);
  if (cache.length + T > cache.capacity())
    fail("sequence of ", cache.length + T, " positions exceeds the context of ", cache.capacity(),
         " (max_position_embeddings); use a shorter prompt or fewer new tokens");
  torch::Tensor cos, sin;
  rope_tables(cache.length, T, x0.scalar_type(), x0.device(), cos, sin);
  auto x = x0;
  for (size_t i = 0; i < layers_.size(); ++i) x = layers_[i]->forward(x, cos, sin, cache.k[i], cache.v[i], cache.length);
  cache.length += T;
  return norm_.forward(x);
}

}  // namespace reasonseg
