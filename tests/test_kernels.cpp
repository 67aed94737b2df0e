// Fused bf16 CPU kernels against LibTorch's fp32 ops on the same (bf16-representable) inputs:
// each result must be the fp32 value rounded to bf16, give or take that rounding.
#include <catch2/catch.hpp>
#include <ATen/ATen.h>

#include <cmath>
#include <cstdio>

#include "nn/cpu_kernels.hpp"
#include "nn/layers.hpp"

using namespace reasonseg;

namespace {
// Largest |got - want| / (|want| / 256 + abs_floor): <= 1 means within bf16 rounding of fp32.
double ulp_ratio(const torch::Tensor& got, const torch::Tensor& want, double abs_floor = 1e-6) {
  auto g = got.to(torch::kFloat64), w = want.to(torch::kFloat64);
  return ((g - w).abs() / (w.abs() / 256 + abs_floor)).max().item<double>();
}
torch::Tensor bf16_randn(std::vector<int64_t> shape, double scale) {
  return (at::randn(shape, at::kFloat) * scale).to(torch::kBFloat16);
}
}  // namespace

TEST_CASE("fused bf16 kernels equal fp32 math rounded to bf16", "[kernels]") {
  at::manual_seed(7);
  if (!bf16_kernels_available()) {
    WARN("this CPU has no AVX512-BF16: only the LibTorch fallbacks are checked");
  }
  SECTION("GELU, including large negative inputs where 1 + erf cancels") {
    auto x = bf16_randn({3, 1001}, 4.0);
    x[0][0] = -9.0, x[0][1] = -5.5, x[0][2] = 7.0, x[0][3] = 0.0;
    // x/2 erfc(-x/sqrt2) in double: at::gelu's 1 + erf(x/sqrt2) cancels to 0 for x < -8.
    auto xd = x.to(torch::kFloat64);
    auto ref = 0.5 * xd * at::erfc(-xd / std::sqrt(2.0));
    auto got = fast_gelu(x);
    REQUIRE(got.scalar_type() == torch::kBFloat16);
    REQUIRE(ulp_ratio(got, ref, 1e-30) <= 1.0);
  }
  SECTION("CLIP's quick GELU rounds like PyTorch's three bf16 operators") {
    auto x = bf16_randn({2, 999}, 4.0);
    // The reference's PyTorch (1.13) in bf16: the constant rounded to bf16 (1.703125), a bf16
    // rounding after each of the three operators. Written out in fp32 so that the check does not
    // depend on the LibTorch linked here (2.x computes bf16 ops with fp32 scalars instead).
    auto xf = x.to(torch::kFloat32);
    auto t = (xf * 1.703125f).to(torch::kBFloat16).to(torch::kFloat32);
    t = at::sigmoid(t).to(torch::kBFloat16).to(torch::kFloat32);
    auto want = (xf * t).to(torch::kBFloat16);
    auto diff = (quick_gelu(x).to(torch::kFloat64) - want.to(torch::kFloat64)).abs();
    // Identical but for exp's last fp32 bit flipping a bf16 rounding now and then.
    REQUIRE(ulp_ratio(quick_gelu(x), want, 1e-30) <= 1.0);
    REQUIRE((diff > 0).sum().item<int64_t>() <= x.numel() / 100);
  }
  SECTION("softmax over rows with tails and masked (-inf) entries") {
    auto x = bf16_randn({37, 203}, 5.0);
    x[3].narrow(0, 100, 103).fill_(-INFINITY);
    auto ref = at::softmax(x.to(torch::kFloat32), -1);
    auto got = fast_softmax(x, -1);
    REQUIRE(ulp_ratio(got, ref, 1e-7) <= 1.0);
    REQUIRE(got[3].narrow(0, 100, 103).to(torch::kFloat32).abs().max().item<float>() == 0.0f);
  }
  SECTION("LayerNorm over a dimension that is not a multiple of 16") {
    auto x = bf16_randn({50, 77}, 3.0) + 2.0;
    auto w = at::randn({77}), b = at::randn({77});
    auto ref = at::layer_norm(x.to(torch::kFloat32), {77}, w.to(torch::kBFloat16).to(torch::kFloat32),
                              b.to(torch::kBFloat16).to(torch::kFloat32), 1e-6);
    struct Root : Module {
      Root() : ln(*this, "ln", 77, 1e-6) {}
      LayerNorm ln;
    } root;
    root.ln.weight = w.to(torch::kBFloat16);
    root.ln.bias = b.to(torch::kBFloat16);
    REQUIRE(ulp_ratio(root.ln.forward(x), ref, 1e-4) <= 1.0);
  }
  SECTION("softmax with SAM's decomposed relative positions") {
    if (!bf16_kernels_available()) {
      WARN("skipped: this CPU has no AVX512-BF16 (the fused kernel is not used here)");
      return;
    }
    const int64_t R = 2 * 6 * 5, Hk = 6, Wk = 5;  // 2 heads of a 6x5 grid
    auto s = bf16_randn({R, Hk * Wk}, 3.0), rh = bf16_randn({R, Hk}, 2.0), rw = bf16_randn({R, Wk}, 2.0);
    auto full = s.to(torch::kFloat32).view({R, Hk, Wk}) + rh.to(torch::kFloat32).unsqueeze(-1) +
                rw.to(torch::kFloat32).unsqueeze(-2);
    auto ref = at::softmax(full.view({R, Hk * Wk}), -1);
    REQUIRE(ulp_ratio(rel_pos_softmax_bf16(s, rh, rw), ref, 1e-7) <= 1.0);
  }
  SECTION("RMSNorm as HF casts it: normalised value rounded to bf16, then times the weight") {
    if (!bf16_kernels_available()) {
      WARN("skipped: this CPU has no AVX512-BF16 (the fused kernel is not used here)");
      return;
    }
    auto x = bf16_randn({5, 200}, 2.0), w = bf16_randn({200}, 1.0);
    auto h = x.to(torch::kFloat32);
    h = h * at::rsqrt(h.pow(2).mean(-1, true) + 1e-6);
    auto ref = w.to(torch::kFloat32) * h.to(torch::kBFloat16).to(torch::kFloat32);
    REQUIRE(ulp_ratio(rms_norm_bf16(x, w, 1e-6), ref, 1e-6) <= 1.0);
  }
  SECTION("SwiGLU product and rotary embedding") {
    if (!bf16_kernels_available()) {
      WARN("skipped: this CPU has no AVX512-BF16 (the fused kernel is not used here)");
      return;
    }
    auto g = bf16_randn({3, 7, 100}, 3.0), u = bf16_randn({3, 7, 100}, 1.0);
    auto ref = at::silu(g.to(torch::kFloat64)) * u.to(torch::kFloat64);
    REQUIRE(ulp_ratio(silu_mul_bf16(g, u), ref, 1e-6) <= 1.0);
    const int64_t T = 5, heads = 3, hd = 40;
    auto x = bf16_randn({1, T, heads, hd}, 1.0);
    auto ang = at::rand({T, hd / 2}) * 6.0;
    auto emb = at::cat({ang, ang}, -1);
    auto xf = x.to(torch::kFloat64);
    auto rot = at::cat({-xf.narrow(-1, hd / 2, hd / 2), xf.narrow(-1, 0, hd / 2)}, -1);
    auto c = emb.cos().to(torch::kFloat64).view({1, T, 1, hd}), sn = emb.sin().to(torch::kFloat64).view({1, T, 1, hd});
    REQUIRE(ulp_ratio(rope_bf16(x, emb.cos(), emb.sin()), xf * c + rot * sn, 1e-3) <= 1.0);
  }
  SECTION("causal prompt softmax equals HF's bf16 division, fp32 masked softmax, bf16 cast") {
    if (!bf16_kernels_available()) {
      WARN("skipped: this CPU has no AVX512-BF16 (the fused kernel is not used here)");
      return;
    }
    const int64_t T = 5, past = 7, S = past + T;
    auto raw = bf16_randn({1, 2, 3 * T, S}, 20.0);  // 2 KV heads x 3 query heads x T queries
    // HF's bf16 division under the reference's PyTorch (1.13): the divisor rounded to bf16, the
    // quotient rounded to bf16; written out so that it does not depend on the LibTorch linked here.
    const float divisor = float(c10::BFloat16(float(std::sqrt(128.0))));
    auto want = (raw.to(torch::kFloat32) / divisor).to(torch::kBFloat16).to(torch::kFloat32);
    auto mask = at::ones({T, S}, torch::kBool).triu(past + 1);
    want = want.view({1, 2, 3, T, S}).masked_fill(mask, -INFINITY).view({1, 2, 3 * T, S});
    want = at::softmax(want, -1).to(torch::kBFloat16);
    auto got = causal_softmax_bf16(raw, float(c10::BFloat16(float(std::sqrt(128.0)))), past, T);
    REQUIRE(ulp_ratio(got, want, 1e-30) <= 1.0);
    REQUIRE((got != want).sum().item<int64_t>() <= want.numel() / 100);
  }
  SECTION("one-token attention over a grouped KV cache, read in place") {
    if (!bf16_kernels_available()) {
      WARN("skipped: this CPU has no AVX512-BF16 (the fused kernel is not used here)");
      return;
    }
    for (int64_t hd : {128, 72}) {
      const int64_t H = 8, KV = 2, cap = 64, S = 37;
      auto q = bf16_randn({1, 1, H, hd}, 1.0);
      auto kc = bf16_randn({1, KV, cap, hd}, 1.0), vc = bf16_randn({1, KV, cap, hd}, 1.0);
      auto qf = q.to(torch::kFloat64).view({KV, H / KV, hd});
      auto kf = kc.narrow(2, 0, S).to(torch::kFloat64).view({KV, S, hd});
      auto vf = vc.narrow(2, 0, S).to(torch::kFloat64).view({KV, S, hd});
      auto p = at::softmax(at::bmm(qf, kf.transpose(1, 2)) / std::sqrt(double(hd)), -1);
      auto ref = at::bmm(p, vf).reshape({1, 1, H * hd});
      auto got = decode_attention_bf16(q, kc, vc, S);
      REQUIRE(got.sizes() == ref.sizes());
      REQUIRE(ulp_ratio(got, ref, 1e-3) <= 1.0);
    }
  }
}
