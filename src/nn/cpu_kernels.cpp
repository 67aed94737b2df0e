#include "nn/cpu_kernels.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/record_function.h>

#include <cmath>
#include <vector>

#include "util/error.hpp"

#if defined(__x86_64__) && defined(REASONSEG_HAVE_AVX512BF16)
#include <immintrin.h>
#define RS_BF16_KERNELS 1
#endif

namespace reasonseg {

#ifdef RS_BF16_KERNELS
namespace {

inline __mmask16 tail_mask(int64_t n) { return n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1); }

inline __m512 load_bf16(const uint16_t* p, __mmask16 m) {
  __m256i h = _mm256_maskz_loadu_epi16(m, p);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

inline __m512 load_bf16_from(__m256bh v) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32((__m256i)v), 16));
}

inline void store_bf16(uint16_t* p, __m512 v, __mmask16 m) {
  _mm256_mask_storeu_epi16(p, m, (__m256i)_mm512_cvtneps_pbh(v));  // round to nearest even
}

// e^x, relative error ~1e-7: x = n ln2 + r, |r| <= ln2/2, degree-6 Taylor polynomial, 2^n by scalef.
// Arguments below -87.3 give 0 (so -inf scores vanish in a softmax).
inline __m512 exp_ps(__m512 x) {
  const __m512 lo = _mm512_set1_ps(-87.3f);
  __mmask16 underflow = _mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ);
  x = _mm512_min_ps(_mm512_max_ps(x, lo), _mm512_set1_ps(88.7f));
  __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                  _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187045e-06f), r);
  __m512 p = _mm512_set1_ps(1.0f / 720);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_maskz_mov_ps(~underflow, _mm512_scalef_ps(p, n));
}

// GELU(x) = x/2 * erfc(-x/sqrt2). erfc by the Chebyshev fit of Numerical Recipes (erfcc: relative
// error < 1.2e-7 everywhere), so large negative inputs keep their small values instead of the
// cancellation of 1 + erf(x).
inline __m512 gelu_ps(__m512 x) {
  const __m512 one = _mm512_set1_ps(1.0f);
  __m512 z = _mm512_mul_ps(_mm512_abs_ps(x), _mm512_set1_ps(0.70710678118654752f));
  __m512 t = _mm512_div_ps(one, _mm512_fmadd_ps(_mm512_set1_ps(0.5f), z, one));
  __m512 p = _mm512_set1_ps(0.17087277f);
  for (float c : {-0.82215223f, 1.48851587f, -1.13520398f, 0.27886807f, -0.18628806f, 0.09678418f, 0.37409196f,
                  1.00002368f, -1.26551223f})
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(c));
  __m512 e = _mm512_mul_ps(t, exp_ps(_mm512_fnmadd_ps(z, z, p)));  // erfc(|x|/sqrt2)
  __mmask16 pos = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GE_OQ);
  __m512 c = _mm512_mask_sub_ps(e, pos, _mm512_set1_ps(2.0f), e);  // erfc(-x/sqrt2)
  return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), x), c);
}

const uint16_t* u16(const torch::Tensor& t) { return reinterpret_cast<const uint16_t*>(t.data_ptr()); }
uint16_t* u16m(torch::Tensor& t) { return reinterpret_cast<uint16_t*>(t.data_ptr()); }

void check_bf16(const torch::Tensor& t, const char* what) {
  if (!t.is_cpu() || t.scalar_type() != torch::kBFloat16 || !t.is_contiguous())
    fail(what, ": expected a contiguous bf16 CPU tensor");
}

// y = f(x) element-wise over a bf16 tensor, f on 16 fp32 lanes at a time, in parallel.
template <typename F>
torch::Tensor map_bf16(const torch::Tensor& x0, const char* what, F f) {
  auto x = x0.contiguous();
  check_bf16(x, what);
  auto y = at::empty_like(x);
  const uint16_t* xp = u16(x);
  uint16_t* yp = u16m(y);
  at::parallel_for(0, x.numel(), 16384, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i += 16) {
      __mmask16 k = tail_mask(e - i);
      store_bf16(yp + i, f(load_bf16(xp + i, k)), k);
    }
  });
  return y;
}

// n bf16 values to fp32.
inline void load_row_fp32(const uint16_t* src, int64_t n, float* dst) {
  for (int64_t i = 0; i < n; i += 16) {
    __mmask16 k = tail_mask(n - i);
    _mm512_mask_storeu_ps(dst + i, k, load_bf16(src + i, k));
  }
}

// Softmax of v[0..n) in place (fp32), written as bf16 to out.
inline void softmax_row(float* v, int64_t n, uint16_t* out) {
  __m512 mx = _mm512_set1_ps(-INFINITY);
  for (int64_t i = 0; i < n; i += 16) mx = _mm512_mask_max_ps(mx, tail_mask(n - i), mx, _mm512_loadu_ps(v + i));
  const __m512 m = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
  __m512 sum = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    __mmask16 k = tail_mask(n - i);
    __m512 e = exp_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, v + i), m));
    sum = _mm512_mask_add_ps(sum, k, sum, e);
    _mm512_mask_storeu_ps(v + i, k, e);
  }
  const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
  for (int64_t i = 0; i < n; i += 16) {
    __mmask16 k = tail_mask(n - i);
    store_bf16(out + i, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, v + i), inv), k);
  }
}

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
#endif

bool bf16_kernels_available() {
#ifdef RS_BF16_KERNELS
  static const bool ok = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bf16");
  return ok;
#else
  return false;
#endif
}

#ifdef RS_BF16_KERNELS

torch::Tensor layer_norm_bf16(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                              double eps) {
  RECORD_FUNCTION("reasonseg::layer_norm_bf16", std::vector<c10::IValue>({x}));
  check_bf16(x, "layer_norm_bf16 input");
  const int64_t C = x.size(-1), R = x.numel() / C;
  auto w = weight.to(torch::kFloat32).contiguous(), b = bias.to(torch::kFloat32).contiguous();
  auto y = at::empty_like(x);
  const uint16_t* xp = u16(x);
  uint16_t* yp = u16m(y);
  const float *wp = w.data_ptr<float>(), *bp = b.data_ptr<float>();
  at::parallel_for(0, R, 16, [&](int64_t r0, int64_t r1) {
    std::vector<float> row(C);
    for (int64_t r = r0; r < r1; ++r) {
      const uint16_t* xr = xp + r * C;
      __m512 s = _mm512_setzero_ps();
      for (int64_t i = 0; i < C; i += 16) {
        __mmask16 k = tail_mask(C - i);
        __m512 v = load_bf16(xr + i, k);
        _mm512_mask_storeu_ps(row.data() + i, k, v);
        s = _mm512_add_ps(s, v);
      }
      const float mean = _mm512_reduce_add_ps(s) / C;
      const __m512 mv = _mm512_set1_ps(mean);
      __m512 q = _mm512_setzero_ps();
      for (int64_t i = 0; i < C; i += 16) {  // two passes: the variance of deviations, as ATen does
        __m512 d = _mm512_maskz_sub_ps(tail_mask(C - i), _mm512_maskz_loadu_ps(tail_mask(C - i), row.data() + i), mv);
        q = _mm512_fmadd_ps(d, d, q);
      }
      const __m512 rstd = _mm512_set1_ps(1.0f / std::sqrt(_mm512_reduce_add_ps(q) / C + float(eps)));
      for (int64_t i = 0; i < C; i += 16) {
        __mmask16 k = tail_mask(C - i);
        __m512 d = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, row.data() + i), mv), rstd);
        store_bf16(yp + r * C + i, _mm512_fmadd_ps(d, _mm512_maskz_loadu_ps(k, wp + i), _mm512_maskz_loadu_ps(k, bp + i)),
                   k);
      }
    }
  });
  return y;
}

torch::Tensor gelu_bf16(const torch::Tensor& x) {
  RECORD_FUNCTION("reasonseg::gelu_bf16", std::vector<c10::IValue>({x}));
  return map_bf16(x, "gelu_bf16 input", [](__m512 v) { return gelu_ps(v); });
}

torch::Tensor quick_gelu_bf16(const torch::Tensor& x) {
  RECORD_FUNCTION("reasonseg::quick_gelu_bf16", std::vector<c10::IValue>({x}));
  auto round = [](__m512 v) { return load_bf16_from(_mm512_cvtneps_pbh(v)); };
  return map_bf16(x, "quick_gelu_bf16 input", [&](__m512 v) {
    __m512 t = round(_mm512_mul_ps(v, _mm512_set1_ps(1.703125f)));  // PyTorch casts 1.702 to bf16 first
    __m512 sg = round(_mm512_div_ps(_mm512_set1_ps(1.0f),
                                    _mm512_add_ps(_mm512_set1_ps(1.0f), exp_ps(_mm512_sub_ps(_mm512_setzero_ps(), t)))));
    return _mm512_mul_ps(v, sg);
  });
}

torch::Tensor softmax_bf16(const torch::Tensor& x0) {
  RECORD_FUNCTION("reasonseg::softmax_bf16", std::vector<c10::IValue>({x0}));
  auto x = x0.contiguous();
  check_bf16(x, "softmax_bf16 input");
  const int64_t N = x.size(-1), R = x.numel() / N;
  auto y = at::empty_like(x);
  const uint16_t* xp = u16(x);
  uint16_t* yp = u16m(y);
  at::parallel_for(0, R, 8, [&](int64_t r0, int64_t r1) {
    std::vector<float> row(N);
    for (int64_t r = r0; r < r1; ++r) {
      load_row_fp32(xp + r * N, N, row.data());
      softmax_row(row.data(), N, yp + r * N);
    }
  });
  return y;
}

torch::Tensor rel_pos_softmax_bf16(const torch::Tensor& scores, const torch::Tensor& rel_h, const torch::Tensor& rel_w) {
  RECORD_FUNCTION("reasonseg::rel_pos_softmax_bf16", std::vector<c10::IValue>({scores}));
  check_bf16(scores, "rel_pos_softmax scores");
  check_bf16(rel_h, "rel_pos_softmax rel_h");
  check_bf16(rel_w, "rel_pos_softmax rel_w");
  const int64_t Hk = rel_h.size(-1), Wk = rel_w.size(-1), N = Hk * Wk, R = rel_h.numel() / Hk;
  if (scores.numel() != R * N || rel_w.numel() != R * Wk) fail("rel_pos_softmax: inconsistent shapes");
  auto y = at::empty_like(scores);
  const uint16_t *sp = u16(scores), *hp = u16(rel_h), *wp = u16(rel_w);
  uint16_t* yp = u16m(y);
  at::parallel_for(0, R, 8, [&](int64_t r0, int64_t r1) {
    std::vector<float> row(N), rw(Wk);
    for (int64_t r = r0; r < r1; ++r) {
      load_row_fp32(wp + r * Wk, Wk, rw.data());
      const uint16_t* s = sp + r * N;
      for (int64_t kh = 0; kh < Hk; ++kh) {
        const __m512 h = _mm512_set1_ps(float(c10::BFloat16(hp[r * Hk + kh], c10::BFloat16::from_bits())));
        for (int64_t i = 0; i < Wk; i += 16) {
          __mmask16 k = tail_mask(Wk - i);
          __m512 v = _mm512_add_ps(_mm512_add_ps(load_bf16(s + kh * Wk + i, k), h), _mm512_maskz_loadu_ps(k, rw.data() + i));
          _mm512_mask_storeu_ps(row.data() + kh * Wk + i, k, v);
        }
      }
      softmax_row(row.data(), N, yp + r * N);
    }
  });
  return y;
}

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

torch::Tensor causal_softmax_bf16(const torch::Tensor& scores0, float divisor, int64_t past, int64_t T) {
  RECORD_FUNCTION("reasonseg::causal_softmax_bf16", std::vector<c10::IValue>({scores0}));
  auto x = scores0.contiguous();
  check_bf16(x, "causal_softmax scores");
  const int64_t S = x.size(-1), R = x.numel() / S;
  if (T < 1 || x.size(-2) % T || past + T > S)
    fail("causal_softmax: ", x.size(-2), " rows of ", past, " + ", T, " positions do not fit ", S, " keys");
  auto y = at::empty_like(x);
  const uint16_t* xp = u16(x);
  uint16_t* yp = u16m(y);
  at::parallel_for(0, R, 8, [&](int64_t r0, int64_t r1) {
    std::vector<float> row(S);
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t n = past + r % T + 1;  // visible keys
      for (int64_t i = 0; i < n; i += 16) {
        __mmask16 k = tail_mask(n - i);
        __m512 v = _mm512_div_ps(load_bf16(xp + r * S + i, k), _mm512_set1_ps(divisor));
        _mm512_mask_storeu_ps(row.data() + i, k, load_bf16_from(_mm512_cvtneps_pbh(v)));
      }
      softmax_row(row.data(), n, yp + r * S);
      for (int64_t i = n; i < S; i += 16) _mm256_mask_storeu_epi16(yp + r * S + i, tail_mask(S - i), _mm256_setzero_si256());
    }
  });
  return y;
}

#else

torch::Tensor layer_norm_bf16(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&, double) {
  fail("layer_norm_bf16: not compiled in");
}
torch::Tensor gelu_bf16(const torch::Tensor&) { fail("gelu_bf16: not compiled in"); }
torch::Tensor softmax_bf16(const torch::Tensor&) { fail("softmax_bf16: not compiled in"); }
torch::Tensor quick_gelu_bf16(const torch::Tensor&) { fail("quick_gelu_bf16: not compiled in"); }
torch::Tensor rel_pos_softmax_bf16(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&) {
  fail("rel_pos_softmax_bf16: not compiled in");
}
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
