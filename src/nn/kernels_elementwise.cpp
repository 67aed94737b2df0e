// Generic fused bf16 kernels: LayerNorm, GELU, quick GELU, softmax; and the run-time check.
#include "nn/cpu_kernels.hpp"

#include "nn/bf16_simd.hpp"
#include "util/error.hpp"

namespace reasonseg {

bool bf16_kernels_available() {
#ifdef REASONSEG_HAVE_AVX512BF16
  static const bool ok = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bf16");
  return ok;
#else
  return false;
#endif
}

#ifdef REASONSEG_HAVE_AVX512BF16
using namespace bf16simd;

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

torch::Tensor softmax_bf16(const torch::Tensor& x) {
  RECORD_FUNCTION("reasonseg::softmax_bf16", std::vector<c10::IValue>({x}));
  const int64_t N = x.size(-1);
  return map_rows_bf16(x, "softmax_bf16 input", [&](int64_t, const uint16_t* in, float* row, uint16_t* out) {
    load_row_fp32(in, N, row);
    softmax_row(row, N, out);
  });
}

#else

torch::Tensor layer_norm_bf16(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&, double) {
  fail("layer_norm_bf16: not compiled in");
}
torch::Tensor gelu_bf16(const torch::Tensor&) { fail("gelu_bf16: not compiled in"); }
torch::Tensor softmax_bf16(const torch::Tensor&) { fail("softmax_bf16: not compiled in"); }
torch::Tensor quick_gelu_bf16(const torch::Tensor&) { fail("quick_gelu_bf16: not compiled in"); }

#endif

}  // namespace reasonseg
