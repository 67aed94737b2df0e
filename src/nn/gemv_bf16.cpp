#include "nn/gemv_bf16.hpp"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>

#if defined(__x86_64__) && defined(REASONSEG_HAVE_AVX512BF16)
#include <immintrin.h>
#define REASONSEG_GEMV_KERNEL 1
#endif

namespace reasonseg {

#ifdef REASONSEG_GEMV_KERNEL
namespace {

inline float hsum(__m512 v) { return _mm512_reduce_add_ps(v); }

// Four rows at a time share each load of x; the loop streams the weights once.
void rows_kernel(const uint16_t* w, const uint16_t* x, float* y, int64_t n0, int64_t n1, int64_t K) {
  const int64_t K32 = K / 32 * 32;
  const __mmask32 tail = K == K32 ? 0 : (__mmask32(1) << (K - K32)) - 1;
  int64_t n = n0;
  for (; n + 4 <= n1; n += 4) {
    const uint16_t* r0 = w + n * K;
    const uint16_t *r1 = r0 + K, *r2 = r1 + K, *r3 = r2 + K;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t k = 0; k < K32; k += 32) {
      __m512bh xv = (__m512bh)_mm512_loadu_si512(x + k);
      a0 = _mm512_dpbf16_ps(a0, (__m512bh)_mm512_loadu_si512(r0 + k), xv);
      a1 = _mm512_dpbf16_ps(a1, (__m512bh)_mm512_loadu_si512(r1 + k), xv);
      a2 = _mm512_dpbf16_ps(a2, (__m512bh)_mm512_loadu_si512(r2 + k), xv);
      a3 = _mm512_dpbf16_ps(a3, (__m512bh)_mm512_loadu_si512(r3 + k), xv);
    }
    if (tail) {
      __m512bh xv = (__m512bh)_mm512_maskz_loadu_epi16(tail, x + K32);
      a0 = _mm512_dpbf16_ps(a0, (__m512bh)_mm512_maskz_loadu_epi16(tail, r0 + K32), xv);
      a1 = _mm512_dpbf16_ps(a1, (__m512bh)_mm512_maskz_loadu_epi16(tail, r1 + K32), xv);
      a2 = _mm512_dpbf16_ps(a2, (__m512bh)_mm512_maskz_loadu_epi16(tail, r2 + K32), xv);
      a3 = _mm512_dpbf16_ps(a3, (__m512bh)_mm512_maskz_loadu_epi16(tail, r3 + K32), xv);
    }
    y[n] = hsum(a0), y[n + 1] = hsum(a1), y[n + 2] = hsum(a2), y[n + 3] = hsum(a3);
  }
  for (; n < n1; ++n) {
    const uint16_t* r = w + n * K;
    __m512 a = _mm512_setzero_ps();
    for (int64_t k = 0; k < K32; k += 32)
      a = _mm512_dpbf16_ps(a, (__m512bh)_mm512_loadu_si512(r + k), (__m512bh)_mm512_loadu_si512(x + k));
    if (tail)
      a = _mm512_dpbf16_ps(a, (__m512bh)_mm512_maskz_loadu_epi16(tail, r + K32),
                           (__m512bh)_mm512_maskz_loadu_epi16(tail, x + K32));
    y[n] = hsum(a);
  }
}

}  // namespace
#endif

torch::Tensor gemv_bf16(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor* bias) {
#ifdef REASONSEG_GEMV_KERNEL
  RECORD_FUNCTION("reasonseg::gemv_bf16", std::vector<c10::IValue>({x}));
  const int64_t N = w.size(0), K = w.size(1);
  auto xc = x.contiguous();
  auto y = torch::empty({N}, torch::TensorOptions().dtype(torch::kFloat32));
  const uint16_t* wp = reinterpret_cast<const uint16_t*>(w.data_ptr());
  const uint16_t* xp = reinterpret_cast<const uint16_t*>(xc.data_ptr());
  float* yp = y.data_ptr<float>();
  at::parallel_for(0, (N + 3) / 4, 16, [&](int64_t b, int64_t e) {
    rows_kernel(wp, xp, yp, b * 4, std::min(N, e * 4), K);
  });
  if (bias) y += bias->to(torch::kFloat32);
  auto sizes = x.sizes().vec();
  sizes.back() = N;
  return y.to(torch::kBFloat16).view(sizes);
#else
  (void)x, (void)w, (void)bias;
  return torch::Tensor();
#endif
}

}  // namespace reasonseg
