// SAM attention kernels: the rel-pos softmax and the fused vdpbf16ps attention per (window, head).
#include "nn/cpu_kernels.hpp"

#include "nn/bf16_simd.hpp"
#include "util/error.hpp"

namespace reasonseg {

#ifdef REASONSEG_HAVE_AVX512BF16
using namespace bf16simd;
namespace {

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
inline void sam_attention_head(const uint16_t* q, int64_t ldq, const uint16_t* k, const uint16_t* v, int64_t ld_in, int64_t N,
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

}  // namespace

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
#define REASONSEG_SAM_HEAD(NV) \
  case NV:              \
    sam_attention_head<NV>(qp + qoff, qs.stride(2), kp0 + off, vp0 + off, k.stride(2), N, rh, rw, Hk, Wk, o, heads * hd, kp, vp, sbuf, pbuf); \
    break;
        REASONSEG_SAM_HEAD(1) REASONSEG_SAM_HEAD(2) REASONSEG_SAM_HEAD(3) REASONSEG_SAM_HEAD(4) REASONSEG_SAM_HEAD(5) REASONSEG_SAM_HEAD(6) REASONSEG_SAM_HEAD(7)
        REASONSEG_SAM_HEAD(8)
#undef REASONSEG_SAM_HEAD
      }
    }
  });
  return out;
}

#else

torch::Tensor rel_pos_softmax_bf16(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&) {
  fail("rel_pos_softmax_bf16: not compiled in");
}
bool sam_attention_bf16_supports(int64_t) { return false; }
torch::Tensor sam_attention_bf16(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&, const torch::Tensor&,
                                 const torch::Tensor&) {
  fail("sam_attention_bf16: not compiled in");
}

#endif

}  // namespace reasonseg
