// SAM's attention on grids larger than the fixtures' (the CPU path that works on blocks of grid
// rows, heads spread over threads; in bf16 the fused vdpbf16ps kernel) against the formula
// written out in double, at the head sizes of the fixtures (16), ViT-B/L (64) and ViT-H (80).
#include <catch2/catch.hpp>
#include <ATen/ATen.h>

#include <cmath>
#include <torch/version.h>

#include "models/sam_image_encoder.hpp"

using namespace reasonseg;

namespace {
struct Root : Module {
  Root(const SamConfig& c, int grid) : attn(c, grid) { child("attn", attn); }
  SamAttention attn;
};

// segment-anything's attention with decomposed relative positions, op by op in `dtype` (double:
// the exact value; bf16: what PyTorch computes in bf16, rounding after every operator).
torch::Tensor reference_one(const SamAttention& a, const torch::Tensor& x, torch::ScalarType dtype) {
  const int64_t H = x.size(1), W = x.size(2), C = x.size(3), nh = a.heads, hd = C / nh, N = H * W;
  auto d = [dtype](const torch::Tensor& t) { return t.to(dtype); };
  auto qkv = at::linear(d(x), d(a.qkv.weight), d(*a.qkv.bias)).view({N, 3, nh, hd}).permute({1, 2, 0, 3});
  auto q = qkv[0], k = qkv[1], v = qkv[2];  // [nh, N, hd]
  auto idx = [](int64_t n) { return at::arange(n).unsqueeze(1) - at::arange(n).unsqueeze(0) + (n - 1); };
  auto Rh = d(*a.rel_pos_h).index({idx(H)}), Rw = d(*a.rel_pos_w).index({idx(W)});  // [H, H, hd], [W, W, hd]
  auto rq = q.view({nh, H, W, hd});
  auto rel_h = at::einsum("bhwc,hkc->bhwk", {rq, Rh}), rel_w = at::einsum("bhwc,wkc->bhwk", {rq, Rw});
  auto s = at::matmul(q / std::sqrt(double(hd)), k.transpose(1, 2)).view({nh, H, W, H, W});
  s = (s + rel_h.unsqueeze(-1) + rel_w.unsqueeze(-2)).view({nh, N, N});
  auto o = at::matmul(at::softmax(s, -1), v).permute({1, 0, 2}).reshape({1, H, W, C});
  return at::linear(o, d(a.proj.weight), d(*a.proj.bias)).to(torch::kFloat64);
}

torch::Tensor reference(const SamAttention& a, const torch::Tensor& x, torch::ScalarType dtype) {
  std::vector<torch::Tensor> outs;
  for (int64_t b = 0; b < x.size(0); ++b) outs.push_back(reference_one(a, x.narrow(0, b, 1), dtype));
  return at::cat(outs, 0);
}
}  // namespace

namespace {
// One attention module on a grid x grid input of `batch` windows, fp32 and bf16, against the
// formula in double; bf16 may not be worse than PyTorch's own bf16 evaluation of it.
void check_attention(int grid, int64_t batch, int dim = 64, int heads = 4) {
  SamConfig c;
  c.encoder_embed_dim = dim;
  c.encoder_num_heads = heads;
  const int hd = dim / heads;
  for (auto dtype : {torch::kFloat32, torch::kBFloat16}) {
    Root r(c, grid);
    LoadSettings ls;
    ls.dtype = dtype;
    randomize_module(r, ls, 11);
    *r.attn.rel_pos_h = (at::randn({2 * grid - 1, hd}) * 0.5).to(dtype);
    *r.attn.rel_pos_w = (at::randn({2 * grid - 1, hd}) * 0.5).to(dtype);
    r.attn.qkv.weight.mul_(20 * std::sqrt(64.0 / dim));  // sharper attention than the 0.02-std init gives
    auto x = (at::randn({batch, grid, grid, dim})).to(dtype);
    torch::Tensor got;
    {
      c10::InferenceMode guard;  // as ReasoningSegmenter runs it; worker threads must inherit it
      got = r.attn.forward(x).to(torch::kFloat64);
    }
    auto exact = reference(r.attn, x, torch::kFloat64);
    const double err = (got - exact).abs().max().item<double>(), scale = exact.abs().max().item<double>();
    if (dtype == torch::kFloat32) {
      INFO("grid " << grid << " head size " << hd << " fp32: max error " << err << " of max |value| " << scale);
      REQUIRE(err <= 1e-5 * scale);
    } else {
      const double ref_err = (reference(r.attn, x, torch::kBFloat16) - exact).abs().max().item<double>();
      INFO("grid " << grid << " head size " << hd << " bf16: max error " << err << ", PyTorch-style bf16 " << ref_err << ", of max |value| "
                   << scale);
      REQUIRE(err <= 1.25 * ref_err);
    }
  }
}
}  // namespace

TEST_CASE("SAM global attention on a 40x40 grid equals the formula (fp32 and bf16)", "[sam]") {
  check_attention(40, 1);  // 1600 tokens: above the size where the CPU switches to row blocks
  check_attention(40, 1, 160, 2);  // ViT-H's head size 80
  check_attention(40, 1, 48, 2);   // head size 24: not a multiple of 16, the unfused bf16 path
}

TEST_CASE("SAM window attention, 3 windows of 14x14, equals the formula (fp32 and bf16)", "[sam]") {
  check_attention(14, 3);  // the batched path with the fused rel-pos softmax
  check_attention(14, 3, 128, 2);  // ViT-B/L's head size 64
  check_attention(7, 2, 160, 2);   // an odd token count (49): keys padded to pairs
  check_attention(14, 3, 48, 2);   // head size 24: the unfused bf16 path
}

TEST_CASE("SAM attention through scaled_dot_product_attention (the CUDA path) equals the CPU path", "[sam]") {
#if TORCH_VERSION_MAJOR >= 2
  // Run on CPU here (LibTorch 2.x's SDPA has CPU kernels); on CUDA the parity tests cover it.
  for (auto [grid, batch, dim, heads] : {std::tuple<int, int64_t, int, int>{14, 3, 64, 4}, {20, 1, 160, 2}, {7, 2, 48, 2}}) {
    SamConfig c;
    c.encoder_embed_dim = dim;
    c.encoder_num_heads = heads;
    const int64_t hd = dim / heads, N = int64_t(grid) * grid;
    Root r(c, grid);
    LoadSettings ls;
    randomize_module(r, ls, 13);
    *r.attn.rel_pos_h = at::randn({2 * grid - 1, hd}) * 0.5;
    *r.attn.rel_pos_w = at::randn({2 * grid - 1, hd}) * 0.5;
    r.attn.qkv.weight.mul_(20 * std::sqrt(64.0 / dim));
    torch::NoGradGuard ng;
    auto qkv = r.attn.qkv.forward(at::randn({batch, grid, grid, dim}));
    auto want = r.attn.attend(qkv);
    auto t = qkv.reshape({batch, N, 3, heads, hd}).permute({2, 0, 3, 1, 4});
    auto idx = [](int64_t n) { return at::arange(n).unsqueeze(1) - at::arange(n).unsqueeze(0) + (n - 1); };
    auto rq = t[0].reshape({batch * heads, grid, grid, hd});
    auto rel_h = at::einsum("bhwc,hkc->bhwk", {rq, r.attn.rel_pos_h->index({idx(grid)})});
    auto rel_w = at::einsum("bhwc,wkc->bhwk", {rq, r.attn.rel_pos_w->index({idx(grid)})});
    auto got = sam_attention_sdpa(t[0], t[1], t[2], rel_h, rel_w).permute({0, 2, 1, 3}).reshape(want.sizes());
    const double err = (got - want).abs().max().item<double>(), scale = want.abs().max().item<double>();
    INFO("grid " << grid << " x" << batch << ", head size " << hd << ": max error " << err << " of " << scale);
    REQUIRE(err <= 1e-5 * scale);
  }
#else
  WARN("skipped: scaled_dot_product_attention needs LibTorch 2.x (this build has " TORCH_VERSION ")");
  REQUIRE_THROWS(sam_attention_sdpa(at::zeros({1, 1, 4, 8}), at::zeros({1, 1, 4, 8}), at::zeros({1, 1, 4, 8}), {}, {}));
#endif
}
