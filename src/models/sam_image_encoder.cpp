#include "models/sam_image_encoder.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/ThreadLocalState.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include <torch/version.h>

#include "nn/cpu_kernels.hpp"
#include "util/error.hpp"

namespace reasonseg {

namespace {

// Relative position table for q/k grids of one side: [q_size, k_size, head_dim]; resized
// linearly when the stored table does not match (as segment-anything's get_rel_pos).
torch::Tensor get_rel_pos(int64_t q_size, int64_t k_size, const torch::Tensor& rel_pos) {
  const int64_t max_rel = 2 * std::max(q_size, k_size) - 1;
  torch::Tensor table = rel_pos;
  if (rel_pos.size(0) != max_rel) {
    auto r = rel_pos.to(torch::kFloat32).reshape({1, rel_pos.size(0), -1}).permute({0, 2, 1});
    r = at::upsample_linear1d(r, {max_rel}, false);
    table = r.reshape({-1, max_rel}).permute({1, 0}).to(rel_pos.scalar_type());
  }
  auto opts = torch::TensorOptions().dtype(torch::kFloat32);
  auto q = at::arange(q_size, opts).unsqueeze(1) * std::max(double(k_size) / q_size, 1.0);
  auto k = at::arange(k_size, opts).unsqueeze(0) * std::max(double(q_size) / k_size, 1.0);
  auto rel = (q - k) + (k_size - 1) * std::max(double(q_size) / k_size, 1.0);
  return table.index({rel.to(torch::kLong).to(table.device())});
}

// softmax(scores + rel_h[..., kh] + rel_w[..., kw]) over each row of keys (kh, kw): scores
// [..., Hq*Wq, Hk*Wk], rel_h [..., Hq, Wq, Hk], rel_w [..., Hq, Wq, Wk]. On CPU in bf16 one fused
// pass; otherwise the broadcast adds of segment-anything.
torch::Tensor rel_pos_softmax(const torch::Tensor& scores, const torch::Tensor& rel_h, const torch::Tensor& rel_w) {
  if (use_bf16_kernels(scores))
    return rel_pos_softmax_bf16(scores.contiguous(), rel_h.contiguous(), rel_w.contiguous());
  const int64_t Wk = rel_w.size(-1);
  auto sizes = rel_h.sizes().vec();  // [..., Hq, Wq, Hk] -> scores as [..., Hq, Wq, Hk, Wk]
  sizes.push_back(Wk);
  auto s = scores.view(sizes) + rel_h.unsqueeze(-1) + rel_w.unsqueeze(-2);
  return fast_softmax(s.view(scores.sizes()), -1);
}

// Query tokens per block of global attention (REASONSEG_SAM_BLOCK overrides, for tuning).
int64_t block_tokens() {
  static const int64_t n = [] {
    const char* e = std::getenv("REASONSEG_SAM_BLOCK");
    return e ? std::max<int64_t>(1, std::atoll(e)) : int64_t(256);
  }();
  return n;
}

}  // namespace

torch::Tensor sam_attention_sdpa(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                 const torch::Tensor& rel_h, const torch::Tensor& rel_w) {
#if TORCH_VERSION_MAJOR >= 2
  c10::optional<at::Tensor> bias;
  if (rel_h.defined()) {
    const int64_t B = q.size(0), heads = q.size(1), N = q.size(2);
    bias = (rel_h.unsqueeze(-1) + rel_w.unsqueeze(-2)).reshape({B, heads, N, N}).to(q.scalar_type());
  }
  return at::scaled_dot_product_attention(q, k, v, bias, 0.0, false);
#else
  fail("SAM attention through scaled_dot_product_attention needs LibTorch 2.x (this build has ", TORCH_VERSION, ")");
#endif
}

SamAttention::SamAttention(const SamConfig& c, int in_size)
    : heads(c.encoder_num_heads),
      input_size(in_size),
      use_rel_pos(c.encoder_use_rel_pos),
      qkv(*this, "qkv", c.encoder_embed_dim, 3 * c.encoder_embed_dim, c.encoder_qkv_bias),
      proj(*this, "proj", c.encoder_embed_dim, c.encoder_embed_dim) {
  const int64_t hd = c.encoder_embed_dim / c.encoder_num_heads;
  if (use_rel_pos) {
    rel_pos_h = &param("rel_pos_h", {2 * in_size - 1, hd});
    rel_pos_w = &param("rel_pos_w", {2 * in_size - 1, hd});
  }
}

torch::Tensor SamAttention::forward(const torch::Tensor& x) const { return proj.forward(attend(qkv.forward(x))); }

torch::Tensor SamAttention::attend(const torch::Tensor& qkv_grid) const {
  const int64_t B = qkv_grid.size(0), H = qkv_grid.size(1), W = qkv_grid.size(2), C = qkv_grid.size(3) / 3,
                hd = C / heads, N = H * W;
  auto t = qkv_grid.reshape({B, N, 3, heads, hd}).permute({2, 0, 3, 1, 4});  // [3, B, heads, N, hd]
  const double scale = std::pow(double(hd), -0.5);
  // Decomposed relative position terms, from the unscaled q: [B*heads, H, W, H] and [B*heads, H, W, W].
  torch::Tensor rel_h, rel_w;
  if (use_rel_pos) {
    auto r_q = t[0].reshape({B * heads, H, W, hd});
    rel_h = at::einsum("bhwc,hkc->bhwk", {r_q, get_rel_pos(H, H, *rel_pos_h)}).contiguous();
    rel_w = at::einsum("bhwc,wkc->bhwk", {r_q, get_rel_pos(W, W, *rel_pos_w)}).contiguous();
  }
#if TORCH_VERSION_MAJOR >= 2
  if (qkv_grid.is_cuda())
    return sam_attention_sdpa(t[0], t[1], t[2], rel_h, rel_w).permute({0, 2, 1, 3}).reshape({B, H, W, C});
#endif
  if (use_bf16_kernels(qkv_grid) &&
      sam_attention_bf16_supports(hd)) {
    // One fused pass per (window, head): q.k, rel-pos, softmax and p.v stay in cache, reading q,
    // k, v straight from the qkv output and writing the heads side by side.
    return sam_attention_bf16(t[0] * scale, t[1], t[2], rel_h, rel_w).view({B, H, W, C});
  }
  auto qkv_t = t.reshape({3, B * heads, N, hd});
  auto q = qkv_t[0], k = qkv_t[1], v = qkv_t[2];
  torch::Tensor out;
  if (N <= 1024 || !qkv_grid.is_cpu()) {
    // Windows (small grids) and GPUs: one batched product for all windows and heads.
    auto attn = at::matmul(q * scale, k.transpose(-2, -1));
    attn = use_rel_pos ? rel_pos_softmax(attn, rel_h, rel_w) : fast_softmax(attn, -1);
    out = at::matmul(attn, v);
  } else {
    // Global attention over the whole grid: the [N, N] score matrix of one head is 64 MB in
    // fp32 at 64x64 tokens. Working on blocks of whole grid rows keeps scores, the rel-pos
    // add and the softmax in cache instead of materialising them (docs/performance.md).
    // Heads are spread over the threads, each running its blocks' small GEMMs alone: one
    // fork/join per layer instead of one per operator and block.
    const int64_t rows = std::max<int64_t>(1, block_tokens() / W);
    out = at::empty_like(q);
    auto qs_all = q * scale;
    const at::ThreadLocalState tls;  // InferenceMode, profiler, ...: worker threads must see them too
    at::parallel_for(0, B * heads, 1, [&](int64_t b0, int64_t b1) {
      at::ThreadLocalStateGuard tls_guard(tls);
      for (int64_t b = b0; b < b1; ++b) {
        auto kt = k[b].t(), vb = v[b];
        for (int64_t r0 = 0; r0 < H; r0 += rows) {
          const int64_t nr = std::min(rows, H - r0), n = nr * W;
          auto sc = at::mm(qs_all[b].narrow(0, r0 * W, n), kt);
          sc = use_rel_pos ? rel_pos_softmax(sc, rel_h[b].narrow(0, r0, nr), rel_w[b].narrow(0, r0, nr))
                           : fast_softmax(sc, -1);
          auto dst = out[b].narrow(0, r0 * W, n);
          at::mm_out(dst, sc, vb);
        }
      }
    });
  }
  return out.view({B, heads, H, W, hd}).permute({0, 2, 3, 1, 4}).reshape({B, H, W, C});
}

SamBlock::SamBlock(const SamConfig& c, int window_size)
    : window(window_size),
      norm1(*this, "norm1", c.encoder_embed_dim, c.encoder_layer_norm_eps),
      norm2(*this, "norm2", c.encoder_embed_dim, c.encoder_layer_norm_eps),
      attn(c, window_size > 0 ? window_size : c.embedding_size()),
      lin1(*this, "mlp.lin1", c.encoder_embed_dim, int64_t(c.encoder_embed_dim * c.encoder_mlp_ratio)),
      lin2(*this, "mlp.lin2", int64_t(c.encoder_embed_dim * c.encoder_mlp_ratio), c.encoder_embed_dim) {
  child("attn", attn);
}

torch::Tensor SamBlock::forward(const torch::Tensor& x) const {
  auto h = norm1.forward(x);
  const int64_t B = h.size(0), H = h.size(1), W = h.size(2), C = h.size(3);
  if (window > 0) {
    // segment-anything zero-pads after norm1 to a multiple of the window (padded tokens stay in
    // as keys) and runs qkv and proj on the padded grid. A zero token's qkv row is exactly the
    // bias, and proj is row-wise, so both run on the real tokens only (ViT-H at 1024: 4096
    // instead of 4900 rows) and the padding is filled with the bias.
    const int64_t ws = window, ph = (ws - H % ws) % ws, pw = (ws - W % ws) % ws;
    auto t = attn.qkv.forward(h);  // [B, H, W, 3C]
    if (ph || pw) {
      t = at::constant_pad_nd(t, {0, 0, 0, pw, 0, ph});
      if (attn.qkv.bias) {
        const auto& b = *attn.qkv.bias;
        if (ph) t.narrow(1, H, ph).add_(b);
        if (pw) t.narrow(1, 0, H).narrow(2, W, pw).add_(b);
      }
    }
    const int64_t Hp = H + ph, Wp = W + pw;
    t = t.view({B, Hp / ws, ws, Wp / ws, ws, 3 * C}).permute({0, 1, 3, 2, 4, 5}).reshape({-1, ws, ws, 3 * C});
    h = attn.attend(t);
    h = h.view({B, Hp / ws, Wp / ws, ws, ws, C}).permute({0, 1, 3, 2, 4, 5}).reshape({B, Hp, Wp, C});
    if (ph || pw) h = h.narrow(1, 0, H).narrow(2, 0, W);
    h = attn.proj.forward(h);
  } else {
    h = attn.forward(h);
  }
  auto r = x + h;
  return r + lin2.forward(fast_gelu(lin1.forward(norm2.forward(r))));
}

SamImageEncoder::SamImageEncoder(const SamConfig& c)
    : cfg_(c),
      patch_embed_(*this, "patch_embed.proj", 3, c.encoder_embed_dim, c.patch_size, c.patch_size, 0, true),
      pos_embed_(param("pos_embed", {1, c.embedding_size(), c.embedding_size(), c.encoder_embed_dim})),
      neck0_(*this, "neck.0", c.encoder_embed_dim, c.prompt_embed_dim, 1, 1, 0, false),
      neck1_(*this, "neck.1", c.prompt_embed_dim, 1e-6),
      neck2_(*this, "neck.2", c.prompt_embed_dim, c.prompt_embed_dim, 3, 1, 1, false),
      neck3_(*this, "neck.3", c.prompt_embed_dim, 1e-6) {
  for (int i = 0; i < c.encoder_depth; ++i) {
    bool global = std::find(c.encoder_global_attn_indexes.begin(), c.encoder_global_attn_indexes.end(), i) !=
                  c.encoder_global_attn_indexes.end();
    blocks_.push_back(std::make_unique<SamBlock>(c, global ? 0 : c.window_size));
    child("blocks." + std::to_string(i), *blocks_.back());
  }
}

torch::Tensor SamImageEncoder::forward(const torch::Tensor& x0) const {
  auto x = patch_embed_.forward(x0.to(pos_embed_.scalar_type())).permute({0, 2, 3, 1});
  x = x + pos_embed_;
  for (auto& b : blocks_) x = b->forward(x);
  x = x.permute({0, 3, 1, 2});
  if (x.scalar_type() == torch::kHalf) {
    // LISA runs the neck in fp32 under fp16: its LayerNorm2d overflows in half precision.
    // The convolutions take fp32 copies of their weights; LayerNorm2d promotes to fp32 itself.
    auto y = at::conv2d(x.to(torch::kFloat32), neck0_.weight.to(torch::kFloat32));
    y = at::conv2d(neck1_.forward(y), neck2_.weight.to(torch::kFloat32), {}, 1, 1);
    y = neck3_.forward(y);
    return y.to(torch::kHalf);
  }
  return neck3_.forward(neck2_.forward(neck1_.forward(neck0_.forward(x))));
}

}  // namespace reasonseg
