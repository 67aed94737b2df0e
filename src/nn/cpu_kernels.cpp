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
  for (int64_t i = n64; i < n; i += 16) m0 = _mm512_mask_max_ps(m0, tail_mask(n - i), m0, _mm512_loadu_ps(v + i));
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
// softmax_row4 changed fixture answers within bf16 (one mask IoU vs fp32 0.984 -> 0.974, below
// the 0.98 the bf16 table asks) for ~0.2 ms per CLIP layer.
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

// ---- fused SAM attention (vdpbf16ps) -----------------------------------------------------------

// Broadcast of the bf16 pair at p (two consecutive values) to all 16 lanes.
inline __m512bh pair_bcast(const uint16_t* p) {
  int32_t w;
  std::memcpy(&w, p, 4);
  return (__m512bh)_mm512_set1_epi32(w);
}

// S[r, 0 .. 64) = q[r] . k[j] for R query rows and one tile of 64 keys: kt holds the tile as bf16
// pairs over the head dimension, [pairs][64] (lane j of pair p = k[j, 2p], k[j, 2p + 1]).
template <int R>
inline void qk_tile(const uint16_t* q, int64_t ldq, const uint32_t* kt, int pairs, float* s, int64_t lds) {
  constexpr int NV = 4;
  __m512 acc[R][NV];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < NV; ++c) acc[r][c] = _mm512_setzero_ps();
  for (int p = 0; p < pairs; ++p) {
    __m512bh kv[NV];
    for (int c = 0; c < NV; ++c) kv[c] = (__m512bh)_mm512_loadu_si512(kt + p * 64 + 16 * c);
    for (int r = 0; r < R; ++r) {
      const __m512bh qb = pair_bcast(q + r * ldq + 2 * p);
      for (int c = 0; c < NV; ++c) acc[r][c] = _mm512_dpbf16_ps(acc[r][c], qb, kv[c]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < NV; ++c) _mm512_storeu_ps(s + r * lds + 16 * c, acc[r][c]);
}

// acc[r, 0 .. 16 NV) += sum_j p[r, j] v[j] over `pairs` key pairs for R rows: p bf16 rows, vp
// holds v as bf16 pairs over keys, [pairs][16 NV] (lane d of pair jp = v[2 jp, d], v[2 jp + 1, d]);
// acc fp32 rows of 16 NV.
template <int R, int NV>
inline void pv_tile(const uint16_t* p, int64_t ldp, const uint32_t* vp, int64_t pairs, float* acc_rows) {
  __m512 acc[R][NV];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < NV; ++c) acc[r][c] = _mm512_loadu_ps(acc_rows + (r * NV + c) * 16);
  for (int64_t jp = 0; jp < pairs; ++jp) {
    __m512bh vv[NV];
    for (int c = 0; c < NV; ++c) vv[c] = (__m512bh)_mm512_loadu_si512(vp + jp * 16 * NV + 16 * c);
    for (int r = 0; r < R; ++r) {
      const __m512bh pb = pair_bcast(p + r * ldp + 2 * jp);
      for (int c = 0; c < NV; ++c) acc[r][c] = _mm512_dpbf16_ps(acc[r][c], pb, vv[c]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < NV; ++c) _mm512_storeu_ps(acc_rows + (r * NV + c) * 16, acc[r][c]);
}

// Attention of one (batch, head) pair; q/k/v rows at the given strides, out rows at ldo.
template <int NV>
void sam_attention_head(const uint16_t* q, int64_t ldq, const uint16_t* k, const uint16_t* v, int64_t ld_in, int64_t N,
                        const uint16_t* rh, const uint16_t* rw, int64_t Hk, int64_t Wk, uint16_t* out, int64_t ldo,
                        std::vector<uint32_t>& kp, std::vector<uint32_t>& vp, std::vector<float>& sbuf,
                        std::vector<uint16_t>& pbuf) {
  constexpr int hd = 16 * NV, pairs = hd / 2;
  constexpr int RP = NV <= 4 ? 6 : NV <= 6 ? 4 : 3;  // rows per PV tile: RP * NV accumulators <= 24
  const int64_t ldk = (N + 63) / 64 * 64, n2 = (N + 1) / 2 * 2;
  // Rows per block: the scores of a block stay in L2 (whole windows; 36 rows of a 64x64 grid).
  const int64_t MB = N <= 512 ? N : 36;  // 36: whole tiles of 6, 4 and 3 rows
  kp.assign(size_t(pairs * ldk), 0u);
  vp.assign(size_t(n2 / 2 * hd), 0u);
  sbuf.resize(size_t(MB * ldk + MB * hd));  // scores, then the fp32 output accumulators
  pbuf.assign(size_t(MB * n2), 0);
  float* oacc = sbuf.data() + MB * ldk;
  for (int64_t j = 0; j < N; ++j) {
    const uint16_t* kr = k + j * ld_in;
    uint32_t* kt = kp.data() + (j / 64) * pairs * 64 + (j % 64);  // tiles of 64 keys, [pairs][64] each
    for (int p = 0; p < pairs; ++p) std::memcpy(kt + p * 64, kr + 2 * p, 4);
    const uint16_t* vr = v + j * ld_in;
    uint16_t* dst = reinterpret_cast<uint16_t*>(vp.data() + (j / 2) * hd) + (j & 1);
    for (int d = 0; d < hd; ++d) dst[2 * d] = vr[d];
  }
  for (int64_t i0 = 0; i0 < N; i0 += MB) {
    const int64_t m = std::min(MB, N - i0);
    // Scores, 6 query rows x 64 keys per tile (24 accumulators), keys padded to ldk with zeros;
    // each key tile is read once per block and stays in L1 while all rows of the block use it.
    int64_t r = 0;
    for (int64_t j0 = 0; j0 < ldk; j0 += 64) {
      const uint32_t* kt = kp.data() + j0 * pairs;
      for (r = 0; r < m; r += 6) {
        const uint16_t* qr = q + (i0 + r) * ldq;
        float* sr = sbuf.data() + r * ldk + j0;
        switch (std::min<int64_t>(6, m - r)) {  // the block's last rows: a tile of their own height
          case 6: qk_tile<6>(qr, ldq, kt, pairs, sr, ldk); break;
          case 5: qk_tile<5>(qr, ldq, kt, pairs, sr, ldk); break;
          case 4: qk_tile<4>(qr, ldq, kt, pairs, sr, ldk); break;
          case 3: qk_tile<3>(qr, ldq, kt, pairs, sr, ldk); break;
          case 2: qk_tile<2>(qr, ldq, kt, pairs, sr, ldk); break;
          default: qk_tile<1>(qr, ldq, kt, pairs, sr, ldk);
        }
      }
    }
    // Relative positions and softmax per row, in fp32; probabilities to bf16.
    for (r = 0; r < m; ++r) {
      float* row = sbuf.data() + r * ldk;
      if (rh) add_rel_pos_row(row, rh + (i0 + r) * Hk, rw + (i0 + r) * Wk, Hk, Wk);
      softmax_row4(row, N, pbuf.data() + r * n2);
    }
    // Probabilities times values, 64 key pairs at a time (a 4-32 KB slice of v stays in L1
    // while all rows of the block use it), fp32 accumulators in memory between slices.
    std::fill(oacc, oacc + m * hd, 0.0f);
    for (int64_t c0 = 0; c0 < n2 / 2; c0 += 64) {
      const int64_t cp = std::min<int64_t>(64, n2 / 2 - c0);
      const uint32_t* vs = vp.data() + c0 * hd;
      for (r = 0; r < m; r += RP) {
        const uint16_t* pr = pbuf.data() + r * n2 + 2 * c0;
        float* acc = oacc + r * hd;
        switch (std::min<int64_t>(RP, m - r)) {
          case 6: pv_tile<6 <= RP ? 6 : 1, NV>(pr, n2, vs, cp, acc); break;
          case 5: pv_tile<5 <= RP ? 5 : 1, NV>(pr, n2, vs, cp, acc); break;
          case 4: pv_tile<4 <= RP ? 4 : 1, NV>(pr, n2, vs, cp, acc); break;
          case 3: pv_tile<3, NV>(pr, n2, vs, cp, acc); break;
          case 2: pv_tile<2, NV>(pr, n2, vs, cp, acc); break;
          default: pv_tile<1, NV>(pr, n2, vs, cp, acc);
        }
      }
    }
    for (r = 0; r < m; ++r)
      for (int c = 0; c < NV; ++c) store_bf16(out + (i0 + r) * ldo + 16 * c, _mm512_loadu_ps(oacc + r * hd + 16 * c), 0xFFFF);
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

torch::Tensor softmax_bf16(const torch::Tensor& x) {
  RECORD_FUNCTION("reasonseg::softmax_bf16", std::vector<c10::IValue>({x}));
  const int64_t N = x.size(-1);
  return map_rows_bf16(x, "softmax_bf16 input", [&](int64_t, const uint16_t* in, float* row, uint16_t* out) {
    load_row_fp32(in, N, row);
    softmax_row(row, N, out);
  });
}

torch::Tensor rel_pos_softmax_bf16(const torch::Tensor& scores, const torch::Tensor& rel_h, const torch::Tensor& rel_w) {
  RECORD_FUNCTION("reasonseg::rel_pos_softmax_bf16", std::vector<c10::IValue>({scores}));
  check_bf16(rel_h, "rel_pos_softmax rel_h");
  check_bf16(rel_w, "rel_pos_softmax rel_w");
  const int64_t Hk = rel_h.size(-1), Wk = rel_w.size(-1), N = Hk * Wk, R = rel_h.numel() / Hk;
  if (scores.numel() != R * N || rel_w.numel() != R * Wk) fail("rel_pos_softmax: inconsistent shapes");
  const uint16_t *hp = u16(rel_h), *wp = u16(rel_w);
  return map_rows_bf16(scores, "rel_pos_softmax scores", [&](int64_t r, const uint16_t* in, float* row, uint16_t* out) {
    load_row_fp32(in, N, row);
    add_rel_pos_row(row, hp + r * Hk, wp + r * Wk, Hk, Wk);
    softmax_row(row, N, out);
  });
}

bool sam_attention_bf16_supports(int64_t hd) { return hd > 0 && hd % 16 == 0 && hd <= 128; }

torch::Tensor sam_attention_bf16(const torch::Tensor& qs, const torch::Tensor& k, const torch::Tensor& v,
                                 const torch::Tensor& rel_h, const torch::Tensor& rel_w) {
  RECORD_FUNCTION("reasonseg::sam_attention_bf16", std::vector<c10::IValue>({qs}));
  const int64_t B = qs.size(0), heads = qs.size(1), N = qs.size(2), hd = qs.size(3);
  for (const auto* t : {&qs, &k, &v}) {
    if (!t->is_cpu() || t->scalar_type() != torch::kBFloat16 || t->dim() != 4 || t->sizes() != qs.sizes() ||
        t->stride(3) != 1)
      fail("sam_attention_bf16: q, k, v must be bf16 CPU [B, heads, N, hd] with unit stride over hd");
  }
  // k and v share their strides (slices of one qkv tensor); qs may be laid out differently.
  if (v.strides() != k.strides()) fail("sam_attention_bf16: k and v must share their strides");
  if (!sam_attention_bf16_supports(hd)) fail("sam_attention_bf16: head size ", hd, " is not a multiple of 16 up to 128");
  const bool rel = rel_h.defined();
  int64_t Hk = 0, Wk = 0;
  if (rel) {
    check_bf16(rel_h, "sam_attention_bf16 rel_h");
    check_bf16(rel_w, "sam_attention_bf16 rel_w");
    Hk = rel_h.size(-1), Wk = rel_w.size(-1);
    if (Hk * Wk != N || rel_h.numel() != B * heads * N * Hk || rel_w.numel() != B * heads * N * Wk)
      fail("sam_attention_bf16: relative-position terms do not match the grid");
  }
  auto out = at::empty({B, N, heads * hd}, qs.options().memory_format(at::MemoryFormat::Contiguous));
  const uint16_t *qp = u16(qs), *kp0 = u16(k), *vp0 = u16(v);
  const uint16_t *rhp = rel ? u16(rel_h) : nullptr, *rwp = rel ? u16(rel_w) : nullptr;
  uint16_t* op = u16m(out);
  at::parallel_for(0, B * heads, 1, [&](int64_t b0, int64_t b1) {
    std::vector<uint32_t> kp, vp;
    std::vector<float> sbuf;
    std::vector<uint16_t> pbuf;
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t bi = b / heads, h = b % heads;
      const int64_t qoff = bi * qs.stride(0) + h * qs.stride(1), off = bi * k.stride(0) + h * k.stride(1);
      const uint16_t* rh = rel ? rhp + b * N * Hk : nullptr;
      const uint16_t* rw = rel ? rwp + b * N * Wk : nullptr;
      uint16_t* o = op + bi * N * heads * hd + h * hd;
      switch (hd / 16) {
#define RS_SAM_HEAD(NV) \
  case NV:              \
    sam_attention_head<NV>(qp + qoff, qs.stride(2), kp0 + off, vp0 + off, k.stride(2), N, rh, rw, Hk, Wk, o, heads * hd, kp, vp, sbuf, pbuf); \
    break;
        RS_SAM_HEAD(1) RS_SAM_HEAD(2) RS_SAM_HEAD(3) RS_SAM_HEAD(4) RS_SAM_HEAD(5) RS_SAM_HEAD(6) RS_SAM_HEAD(7)
        RS_SAM_HEAD(8)
#undef RS_SAM_HEAD
      }
    }
  });
  return out;
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
bool sam_attention_bf16_supports(int64_t) { return false; }
torch::Tensor sam_attention_bf16(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&, const torch::Tensor&,
                                 const torch::Tensor&) {
  fail("sam_attention_bf16: not compiled in");
}
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
