// Building blocks of the AVX512-BF16 kernels (nn/kernels_*.cpp): masked bf16 loads and stores,
// exp and GELU in fp32 registers, row softmaxes, and the scaffolds that check a bf16 tensor and
// run a function over its elements or rows in parallel. Included only by files compiled with
// -mavx512bf16 (CMakeLists.txt), and only where REASONSEG_HAVE_AVX512BF16 is set.
#pragma once
#ifdef REASONSEG_HAVE_AVX512BF16
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <immintrin.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "util/error.hpp"

namespace reasonseg::bf16simd {

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

inline const uint16_t* u16(const torch::Tensor& t) { return reinterpret_cast<const uint16_t*>(t.data_ptr()); }
inline uint16_t* u16m(torch::Tensor& t) { return reinterpret_cast<uint16_t*>(t.data_ptr()); }

inline void check_bf16(const torch::Tensor& t, const char* what) {
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

// Softmax of v[0..n) in place (fp32), written as bf16 to out. Four independent max and sum
// accumulators: one chain of dependent adds would bound each pass at its latency (~3 cycles a
// vector), twice what the arithmetic needs.
inline void softmax_row4(float* v, int64_t n, uint16_t* out) {
  const int64_t n64 = n / 64 * 64;
  __m512 m0 = _mm512_set1_ps(-INFINITY), m1 = m0, m2 = m0, m3 = m0;
  for (int64_t i = 0; i < n64; i += 64) {
    m0 = _mm512_max_ps(m0, _mm512_loadu_ps(v + i));
    m1 = _mm512_max_ps(m1, _mm512_loadu_ps(v + i + 16));
    m2 = _mm512_max_ps(m2, _mm512_loadu_ps(v + i + 32));
    m3 = _mm512_max_ps(m3, _mm512_loadu_ps(v + i + 48));
  }
  for (int64_t i = n64; i < n; i += 16) {
    // A masked load: a plain one reads past the row's end (found by scripts/sanitize.sh).
    const __mmask16 k = tail_mask(n - i);
    m0 = _mm512_mask_max_ps(m0, k, m0, _mm512_maskz_loadu_ps(k, v + i));
  }
  const __m512 m = _mm512_set1_ps(_mm512_reduce_max_ps(_mm512_max_ps(_mm512_max_ps(m0, m1), _mm512_max_ps(m2, m3))));
  __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  for (int64_t i = 0; i < n64; i += 64) {
    __m512 e0 = exp_ps(_mm512_sub_ps(_mm512_loadu_ps(v + i), m));
    __m512 e1 = exp_ps(_mm512_sub_ps(_mm512_loadu_ps(v + i + 16), m));
    __m512 e2 = exp_ps(_mm512_sub_ps(_mm512_loadu_ps(v + i + 32), m));
    __m512 e3 = exp_ps(_mm512_sub_ps(_mm512_loadu_ps(v + i + 48), m));
    s0 = _mm512_add_ps(s0, e0), s1 = _mm512_add_ps(s1, e1), s2 = _mm512_add_ps(s2, e2), s3 = _mm512_add_ps(s3, e3);
    _mm512_storeu_ps(v + i, e0), _mm512_storeu_ps(v + i + 16, e1);
    _mm512_storeu_ps(v + i + 32, e2), _mm512_storeu_ps(v + i + 48, e3);
  }
  for (int64_t i = n64; i < n; i += 16) {
    __mmask16 k = tail_mask(n - i);
    __m512 e = exp_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, v + i), m));
    s0 = _mm512_mask_add_ps(s0, k, s0, e);
    _mm512_mask_storeu_ps(v + i, k, e);
  }
  const __m512 inv =
      _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3))));
  for (int64_t i = 0; i < n; i += 16) {
    __mmask16 k = tail_mask(n - i);
    store_bf16(out + i, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, v + i), inv), k);
  }
}

// Softmax of v[0..n) in place (fp32), written as bf16 to out; one accumulator per reduction.
// CLIP's, LLaMA's and the unfused SAM softmaxes keep this summation order: switching them to
// softmax_row4 moved a fixture mask's bf16 IoU below the bf16 table's bound for a small gain
// (docs/performance.md).
inline void softmax_row(float* v, int64_t n, uint16_t* out) {
  __m512 mx = _mm512_set1_ps(-INFINITY);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = tail_mask(n - i);  // masked load: never past the row's end
    mx = _mm512_mask_max_ps(mx, k, mx, _mm512_maskz_loadu_ps(k, v + i));
  }
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

// row[kh * Wk + kw] += rel_h[kh] + rel_w[kw] in fp32 (in that order, as the fused kernels
// compute SAM's (scores + rel_h) + rel_w): one row of keys over an Hk x Wk grid.
inline void add_rel_pos_row(float* row, const uint16_t* rel_h, const uint16_t* rel_w, int64_t Hk, int64_t Wk) {
  for (int64_t kh = 0; kh < Hk; ++kh) {
    const __m512 h = _mm512_set1_ps(float(c10::BFloat16(rel_h[kh], c10::BFloat16::from_bits())));
    for (int64_t w0 = 0; w0 < Wk; w0 += 16) {
      const __mmask16 km = tail_mask(Wk - w0);
      float* sp = row + kh * Wk + w0;
      _mm512_mask_storeu_ps(sp, km, _mm512_add_ps(_mm512_add_ps(_mm512_maskz_loadu_ps(km, sp), h), load_bf16(rel_w + w0, km)));
    }
  }
}

// y[r] = f(r, x[r], scratch, y[r]) for every row r of the last dimension of a bf16 tensor, in
// parallel; scratch is an fp32 row per thread (for softmaxes, which work in fp32).
template <typename F>
torch::Tensor map_rows_bf16(const torch::Tensor& x0, const char* what, F f) {
  auto x = x0.contiguous();
  check_bf16(x, what);
  const int64_t N = x.size(-1), R = x.numel() / N;
  auto y = at::empty_like(x);
  const uint16_t* xp = u16(x);
  uint16_t* yp = u16m(y);
  at::parallel_for(0, R, 8, [&](int64_t r0, int64_t r1) {
    std::vector<float> row(N);
    for (int64_t r = r0; r < r1; ++r) f(r, xp + r * N, row.data(), yp + r * N);
  });
  return y;
}

}  // namespace reasonseg::bf16simd
#endif  // REASONSEG_HAVE_AVX512BF16
