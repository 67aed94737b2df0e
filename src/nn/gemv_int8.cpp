#include "nn/gemv_int8.hpp"
#include <algorithm>
#include <cmath>

#include "nn/cpu_kernels.hpp"

#if defined(__x86_64__) && defined(REASONSEG_HAVE_AVX512BF16)
#include <immintrin.h>
#define REASONSEG_INT8_KERNEL 1
#endif

namespace reasonseg {

bool int8_simd_available() {
#ifdef REASONSEG_INT8_KERNEL
  static const bool ok = bf16_kernels_available() && __builtin_cpu_supports("avx512vnni");
  return ok;
#else
  return false;
#endif
}

#ifdef REASONSEG_INT8_KERNEL
namespace {

// 16 int8 weights -> fp32 (masked at the end of a row).
inline __m512 load_q16(const int8_t* p, __mmask16 m) {
  return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, p)));
}
inline __mmask16 lanes(int64_t n) { return n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1); }

}  // namespace

void quantize_x_int16(const float* x, int64_t K, int64_t groups, int64_t G, int16_t* xq, float* xscale) {
  for (int64_t g = 0; g < groups; ++g) {
    const int64_t k0 = g * G, k1 = std::min(K, k0 + G);
    float amax = 0;
    for (int64_t k = k0; k < k1; ++k) amax = std::max(amax, std::fabs(x[k]));
    const float inv = amax > 0 ? 32767.0f / amax : 0.0f;
    xscale[g] = amax / 32767.0f;
    for (int64_t k = k0; k < k1; ++k) xq[k] = int16_t(std::nearbyint(x[k] * inv));
    for (int64_t k = k1; k < k0 + G; ++k) xq[k] = 0;
  }
}

// R rows at a time share each load of x (R = 8: eight weight streams in flight per core read
// faster than four, docs/performance.md). Per 32 weights: one sign-extending load to int16 and one
// vpdpwssd (int16 pairs into int32 lanes: at most 16 products of |127 * 32767| per lane in a group
// of 256, far from overflow); per group: one conversion and one fp32 multiply-add.
template <int R>
void rows_block(const int16_t* xq, const float* xscale, const int8_t* q, const float* scales, int64_t K,
                int64_t groups, int64_t G, float* y, int64_t n) {
  const int64_t full = K / 32 * 32;  // weights at k >= full are read with a mask (end of the row)
  const __mmask32 tail = K == full ? 0 : __mmask32((uint64_t(1) << (K - full)) - 1);
  __m512 a[R];
  for (int r = 0; r < R; ++r) a[r] = _mm512_setzero_ps();
  for (int64_t g = 0; g < groups; ++g) {
    __m512i acc[R];
    for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_si512();
    const int64_t k1 = std::min(K, (g + 1) * G);
    for (int64_t k = g * G; k < k1; k += 32) {
      const __m512i xv = _mm512_loadu_si512(xq + k);
      for (int r = 0; r < R; ++r) {
        const int8_t* p = q + (n + r) * K + k;
        const __m256i w = k < full ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)) : _mm256_maskz_loadu_epi8(tail, p);
        acc[r] = _mm512_dpwssd_epi32(acc[r], _mm512_cvtepi8_epi16(w), xv);
      }
    }
    for (int r = 0; r < R; ++r)
      a[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[r]), _mm512_set1_ps(scales[(n + r) * groups + g] * xscale[g]), a[r]);
  }
  for (int r = 0; r < R; ++r) y[n + r] = _mm512_reduce_add_ps(a[r]);
}

void gemv_int8_rows_simd(const int16_t* xq, const float* xscale, const int8_t* q, const float* scales, int64_t K,
                         int64_t groups, int64_t G, float* y, int64_t n0, int64_t n1) {
  int64_t n = n0;
  for (; n + 8 <= n1; n += 8) rows_block<8>(xq, xscale, q, scales, K, groups, G, y, n);
  for (; n < n1; ++n) rows_block<1>(xq, xscale, q, scales, K, groups, G, y, n);
}

void dequantize_rows_bf16_simd(const int8_t* q, const float* scales, int64_t K, int64_t groups, int64_t G,
                               uint16_t* out, int64_t n0, int64_t n1) {
  for (int64_t n = n0; n < n1; ++n) {
    const int8_t* r = q + n * K;
    uint16_t* o = out + (n - n0) * K;
    for (int64_t g = 0; g < groups; ++g) {
      const __m512 s = _mm512_set1_ps(scales[n * groups + g]);
      const int64_t k1 = std::min(K, (g + 1) * G);
      for (int64_t k = g * G; k < k1; k += 16) {
        const __mmask16 m = lanes(k1 - k);
        const __m256i b = (__m256i)_mm512_cvtneps_pbh(_mm512_mul_ps(load_q16(r + k, m), s));
        _mm256_mask_storeu_epi16(o + k, m, b);
      }
    }
  }
}

#else

void quantize_x_int16(const float*, int64_t, int64_t, int64_t, int16_t*, float*) {}
void gemv_int8_rows_simd(const int16_t*, const float*, const int8_t*, const float*, int64_t, int64_t, int64_t, float*,
                         int64_t, int64_t) {}
void dequantize_rows_bf16_simd(const int8_t*, const float*, int64_t, int64_t, int64_t, uint16_t*, int64_t, int64_t) {}

#endif

}  // namespace reasonseg
