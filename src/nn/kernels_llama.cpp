// LLaMA kernels: RMSNorm, SwiGLU, RoPE, the causal prompt softmax and one-token attention over the KV cache.
#include "nn/cpu_kernels.hpp"

#include "nn/bf16_simd.hpp"
#include "util/error.hpp"

namespace reasonseg {

#ifdef REASONSEG_HAVE_AVX512BF16
using namespace bf16simd;
namespace {

// out[0..min(n, 128)) = sum_s p[s] * inv * v[s, ..]: the 8 accumulators stay in registers. kFull
// (n >= 128) makes every mask a constant; with runtime masks they spill and the loop runs ~50% slower.
template <bool kFull>
inline void weighted_sum_chunk(const float* p, int64_t S, float inv, const uint16_t* v, int64_t stride, int64_t n,
                               uint16_t* out) {
  constexpr int NV = 8;
  __mmask16 km[NV];
  __m512 acc[NV];
  for (int j = 0; j < NV; ++j) km[j] = kFull ? 0xFFFF : 16 * j < n ? tail_mask(n - 16 * j) : 0, acc[j] = _mm512_setzero_ps();
  for (int64_t s = 0; s < S; ++s) {
    const __m512 w = _mm512_set1_ps(p[s] * inv);
    for (int j = 0; j < NV; ++j) acc[j] = _mm512_fmadd_ps(w, load_bf16(v + s * stride + 16 * j, km[j]), acc[j]);
  }
  for (int j = 0; j < NV; ++j) store_bf16(out + 16 * j, acc[j], km[j]);
}

// out[0..n) = sum_s p[s] * inv * v[s, 0..n), 128 columns at a time.
inline void weighted_sum_rows(const float* p, int64_t S, float inv, const uint16_t* v, int64_t stride, int64_t n,
                              uint16_t* out) {
  int64_t c0 = 0;
  for (; c0 + 128 <= n; c0 += 128) weighted_sum_chunk<true>(p, S, inv, v + c0, stride, 128, out + c0);
  if (c0 < n) weighted_sum_chunk<false>(p, S, inv, v + c0, stride, n - c0, out + c0);
}

}  // namespace

torch::Tensor rms_norm_bf16(const torch::Tensor& x0, const torch::Tensor& weight, double eps) {
  RECORD_FUNCTION("reasonseg::rms_norm_bf16", std::vector<c10::IValue>({x0}));
  auto x = x0.contiguous();
  check_bf16(x, "rms_norm_bf16 input");
  auto w = weight.to(torch::kBFloat16).contiguous();
  const int64_t D = x.size(-1), R = x.numel() / D;
  auto y = at::empty_like(x);
  const uint16_t *xp = u16(x), *wp = u16(w);
  uint16_t* yp = u16m(y);
  at::parallel_for(0, R, 8, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const uint16_t* xr = xp + r * D;
      __m512 q = _mm512_setzero_ps();
      for (int64_t i = 0; i < D; i += 16) {
        __m512 v = load_bf16(xr + i, tail_mask(D - i));
        q = _mm512_fmadd_ps(v, v, q);
      }
      const __m512 rs = _mm512_set1_ps(1.0f / std::sqrt(_mm512_reduce_add_ps(q) / D + float(eps)));
      for (int64_t i = 0; i < D; i += 16) {
        __mmask16 k = tail_mask(D - i);
        __m512 h = _mm512_mul_ps(load_bf16(xr + i, k), rs);
        h = load_bf16_from(_mm512_cvtneps_pbh(h));  // HF casts back to bf16 before the weight multiply
        store_bf16(yp + r * D + i, _mm512_mul_ps(h, load_bf16(wp + i, k)), k);
      }
    }
  });
  return y;
}

torch::Tensor silu_mul_bf16(const torch::Tensor& gate0, const torch::Tensor& up0) {
  RECORD_FUNCTION("reasonseg::silu_mul_bf16", std::vector<c10::IValue>({gate0}));
  auto gate = gate0.contiguous(), up = up0.contiguous();
  check_bf16(gate, "silu_mul_bf16 gate");
  check_bf16(up, "silu_mul_bf16 up");
  if (gate.sizes() != up.sizes()) fail("silu_mul_bf16: gate and up differ in shape");
  auto y = at::empty_like(gate);
  const uint16_t *gp = u16(gate), *upp = u16(up);
  uint16_t* yp = u16m(y);
  at::parallel_for(0, gate.numel(), 4096, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i += 16) {
      __mmask16 k = tail_mask(e - i);
      __m512 g = load_bf16(gp + i, k);
      __m512 sg = _mm512_div_ps(g, _mm512_add_ps(_mm512_set1_ps(1.0f), exp_ps(_mm512_sub_ps(_mm512_setzero_ps(), g))));
      store_bf16(yp + i, _mm512_mul_ps(sg, load_bf16(upp + i, k)), k);
    }
  });
  return y;
}

torch::Tensor rope_bf16(const torch::Tensor& x0, const torch::Tensor& cos0, const torch::Tensor& sin0) {
  RECORD_FUNCTION("reasonseg::rope_bf16", std::vector<c10::IValue>({x0}));
  auto x = x0.contiguous();
  check_bf16(x, "rope_bf16 input");
  auto cos = cos0.to(torch::kFloat32).contiguous(), sin = sin0.to(torch::kFloat32).contiguous();
  const int64_t T = x.size(1), heads = x.size(2), hd = x.size(3), half = hd / 2;
  if (cos.numel() != T * hd || sin.numel() != T * hd) fail("rope_bf16: tables do not match the input");
  auto y = at::empty_like(x);
  const uint16_t* xp = u16(x);
  uint16_t* yp = u16m(y);
  const float *cp = cos.data_ptr<float>(), *sp = sin.data_ptr<float>();
  at::parallel_for(0, T * heads, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t t = r / heads;
      const uint16_t* xr = xp + r * hd;
      const float *c = cp + t * hd, *s = sp + t * hd;
      for (int64_t i = 0; i < half; i += 16) {
        __mmask16 k = tail_mask(half - i);
        __m512 lo = load_bf16(xr + i, k), hi = load_bf16(xr + half + i, k);
        // rotate_half(x) = [-hi, lo]
        __m512 ylo = _mm512_fnmadd_ps(hi, _mm512_maskz_loadu_ps(k, s + i), _mm512_mul_ps(lo, _mm512_maskz_loadu_ps(k, c + i)));
        __m512 yhi = _mm512_fmadd_ps(lo, _mm512_maskz_loadu_ps(k, s + half + i),
                                     _mm512_mul_ps(hi, _mm512_maskz_loadu_ps(k, c + half + i)));
        store_bf16(yp + r * hd + i, ylo, k);
        store_bf16(yp + r * hd + half + i, yhi, k);
      }
    }
  });
  return y;
}

torch::Tensor decode_attention_bf16(const torch::Tensor& q0, const torch::Tensor& k_cache, const torch::Tensor& v_cache,
                                    int64_t S) {
  RECORD_FUNCTION("reasonseg::decode_attention_bf16", std::vector<c10::IValue>({q0}));
  auto q = q0.contiguous();
  check_bf16(q, "decode_attention query");
  check_bf16(k_cache, "decode_attention k_cache");
  check_bf16(v_cache, "decode_attention v_cache");
  const int64_t H = q.size(2), hd = q.size(3), KV = k_cache.size(1), cap = k_cache.size(2);
  if (q.size(1) != 1 || H % KV || k_cache.size(3) != hd || S > cap || S < 1) fail("decode_attention: bad shapes");
  const int64_t rep = H / KV;
  const float scale = 1.0f / std::sqrt(float(hd));
  auto y = at::empty({1, 1, H * hd}, q.options());
  const uint16_t *qp = u16(q), *kp = u16(k_cache), *vp = u16(v_cache);
  uint16_t* yp = u16m(y);
  at::parallel_for(0, H, 1, [&](int64_t h0, int64_t h1) {
    std::vector<float> p(S);
    for (int64_t h = h0; h < h1; ++h) {
      const uint16_t* kh = kp + (h / rep) * cap * hd;
      const uint16_t* vh = vp + (h / rep) * cap * hd;
      const uint16_t* qh = qp + h * hd;
      for (int64_t s = 0; s < S; ++s) {
        __m512 d = _mm512_setzero_ps();
        for (int64_t i = 0; i < hd; i += 16) {
          __mmask16 k = tail_mask(hd - i);
          d = _mm512_fmadd_ps(load_bf16(qh + i, k), load_bf16(kh + s * hd + i, k), d);
        }
        p[s] = _mm512_reduce_add_ps(d) * scale;
      }
      float mx = p[0];
      for (int64_t s = 1; s < S; ++s) mx = std::max(mx, p[s]);
      float sum = 0;
      for (int64_t s = 0; s < S; ++s) sum += (p[s] = std::exp(p[s] - mx));
      const float inv = 1.0f / sum;
      weighted_sum_rows(p.data(), S, inv, vh, hd, hd, yp + h * hd);
    }
  });
  return y;
}

torch::Tensor causal_softmax_bf16(const torch::Tensor& scores, float divisor, int64_t past, int64_t T) {
  RECORD_FUNCTION("reasonseg::causal_softmax_bf16", std::vector<c10::IValue>({scores}));
  const int64_t S = scores.size(-1);
  if (T < 1 || scores.size(-2) % T || past + T > S)
    fail("causal_softmax: ", scores.size(-2), " rows of ", past, " + ", T, " positions do not fit ", S, " keys");
  return map_rows_bf16(scores, "causal_softmax scores", [&](int64_t r, const uint16_t* in, float* row, uint16_t* out) {
    const int64_t n = past + r % T + 1;  // visible keys
    for (int64_t i = 0; i < n; i += 16) {
      __mmask16 k = tail_mask(n - i);
      __m512 v = _mm512_div_ps(load_bf16(in + i, k), _mm512_set1_ps(divisor));
      _mm512_mask_storeu_ps(row + i, k, load_bf16_from(_mm512_cvtneps_pbh(v)));
    }
    softmax_row(row, n, out);
    for (int64_t i = n; i < S; i += 16) _mm256_mask_storeu_epi16(out + i, tail_mask(S - i), _mm256_setzero_si256());
  });
}

#else

torch::Tensor causal_softmax_bf16(const torch::Tensor&, float, int64_t, int64_t) { fail("causal_softmax_bf16: not compiled in"); }
torch::Tensor rms_norm_bf16(const torch::Tensor&, const torch::Tensor&, double) { fail("rms_norm_bf16: not compiled in"); }
torch::Tensor silu_mul_bf16(const torch::Tensor&, const torch::Tensor&) { fail("silu_mul_bf16: not compiled in"); }
torch::Tensor rope_bf16(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&) {
  fail("rope_bf16: not compiled in");
}
torch::Tensor decode_attention_bf16(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&, int64_t) {
  fail("decode_attention_bf16: not compiled in");
}

#endif

}  // namespace reasonseg
