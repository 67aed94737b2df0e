#include "nn/cpu_kernels.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/record_function.h>

#include <cmath>
#include <cstring>
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

torch::Tensor gelu_bf16(const torch::Tensor& x0) {
  RECORD_FUNCTION("reasonseg::gelu_bf16", std::vector<c10::IValue>({x0}));
  auto x = x0.contiguous();
  check_bf16(x, "gelu_bf16 input");
  auto y = at::empty_like(x);
  const uint16_t* xp = u16(x);
  uint16_t* yp = u16m(y);
  at::parallel_for(0, x.numel(), 16384, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i += 16) {
      __mmask16 k = tail_mask(e - i);
      store_bf16(yp + i, gelu_ps(load_bf16(xp + i, k)), k);
    }
  });
  return y;
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
      for (int64_t i = 0; i < N; i += 16) {
        __mmask16 k = tail_mask(N - i);
        _mm512_mask_storeu_ps(row.data() + i, k, load_bf16(xp + r * N + i, k));
      }
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
      for (int64_t i = 0; i < Wk; i += 16) {
        __mmask16 k = tail_mask(Wk - i);
        _mm512_mask_storeu_ps(rw.data() + i, k, load_bf16(wp + r * Wk + i, k));
      }
      const uint16_t* s = sp + r * N;
      for (int64_t kh = 0; kh < Hk; ++kh) {
        uint16_t hb = hp[r * Hk + kh];
        uint32_t hbits = uint32_t(hb) << 16;
        float hv;
        std::memcpy(&hv, &hbits, 4);
        const __m512 h = _mm512_set1_ps(hv);
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

#else

torch::Tensor layer_norm_bf16(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&, double) {
  fail("layer_norm_bf16: not compiled in");
}
torch::Tensor gelu_bf16(const torch::Tensor&) { fail("gelu_bf16: not compiled in"); }
torch::Tensor softmax_bf16(const torch::Tensor&) { fail("softmax_bf16: not compiled in"); }
torch::Tensor rel_pos_softmax_bf16(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&) {
  fail("rel_pos_softmax_bf16: not compiled in");
}

#endif

}  // namespace reasonseg
