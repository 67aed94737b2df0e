// Fused bf16 element-wise kernels for CPUs with AVX-512 (LayerNorm, GELU, softmax with SAM's
// relative-position terms). LibTorch 1.13 runs these ops on bf16 through separate conversion,
// arithmetic and rounding passes; here each is one pass in fp32 registers, rounded to bf16 once.
#pragma once
#include <torch/types.h>

namespace reasonseg {

// Kernels by concern: nn/kernels_elementwise.cpp (LayerNorm, GELU, softmax), nn/kernels_sam_attention.cpp,
// nn/kernels_llama.cpp (RMSNorm, SwiGLU, RoPE, prompt softmax, one-token attention).

// True when the kernels were compiled in and this CPU has AVX512-F/BW/VL/BF16.
bool bf16_kernels_available();
// The one dispatch rule: bf16 tensors on the CPU go through these kernels where the CPU has them.
inline bool use_bf16_kernels(const torch::Tensor& x) {
  return x.is_cpu() && x.scalar_type() == torch::kBFloat16 && bf16_kernels_available();
}

// LayerNorm over the last dimension of a contiguous bf16 tensor; weight/bias of any float dtype.
torch::Tensor layer_norm_bf16(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                              double eps);
// Exact (erf) GELU of a bf16 tensor, fp32 math.
torch::Tensor gelu_bf16(const torch::Tensor& x);
// CLIP's quick GELU, x * sigmoid(1.702 x), rounded to bf16 after each of its three operators
// exactly as PyTorch evaluates it in bf16 (one pass instead of three).
torch::Tensor quick_gelu_bf16(const torch::Tensor& x);
// Softmax over the last dimension of a contiguous bf16 tensor, fp32 math, bf16 result.
torch::Tensor softmax_bf16(const torch::Tensor& x);
// SAM attention probabilities: rows r of scores [R, Hk*Wk] (bf16), plus rel_h[r, kh] + rel_w[r, kw]
// (bf16, [R, Hk] and [R, Wk]), softmax over the row, bf16 result. Replaces two broadcast adds, a
// conversion and a softmax, each a full pass over the score matrix.
torch::Tensor rel_pos_softmax_bf16(const torch::Tensor& scores, const torch::Tensor& rel_h, const torch::Tensor& rel_w);
// SAM attention for one layer, fused: for every (batch, head) b and query i,
//   out[b, i] = softmax_j(qs[b, i] . k[b, j] + rel_h[b, i, j / Wk] + rel_w[b, i, j % Wk]) . v[b, j]
// qs (q * scale, rounded to bf16 as the reference does), k, v: [B, heads, N, hd] bf16 views with
// unit stride over hd (e.g. the qkv linear's output permuted, no copy); rel_h [B*heads, N, Hk],
// rel_w [B*heads, N, Wk] contiguous bf16 (Hk * Wk = N), or both undefined for none. Products on
// vdpbf16ps, scores and softmax in fp32 in cache (the reference rounds scores to bf16 first),
// probabilities rounded to bf16 as the reference does, sums in fp32. Returns [B, N, heads * hd],
// the reference's permute + reshape. Needs hd % 16 == 0 and hd <= 128 (sam_attention_bf16_supports).
bool sam_attention_bf16_supports(int64_t head_dim);
torch::Tensor sam_attention_bf16(const torch::Tensor& qs, const torch::Tensor& k, const torch::Tensor& v,
                                 const torch::Tensor& rel_h, const torch::Tensor& rel_w);

// LLaMA RMSNorm as HF computes it in bf16: x * rsqrt(mean(x^2) + eps) in fp32, rounded to bf16,
// then times the bf16 weight (rounded again). x contiguous bf16 [..., D], weight bf16 [D].
torch::Tensor rms_norm_bf16(const torch::Tensor& x, const torch::Tensor& weight, double eps);
// silu(gate) * up in fp32, rounded once; gate and up contiguous bf16 of the same shape.
torch::Tensor silu_mul_bf16(const torch::Tensor& gate, const torch::Tensor& up);
// Rotary embedding (rotate-half form) of x [1, T, heads, hd] (contiguous bf16) with fp32 tables
// cos/sin [T, hd]: x * cos + rotate_half(x) * sin, fp32 math, bf16 result of the same layout.
torch::Tensor rope_bf16(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin);
// Causal attention probabilities of a prompt: scores [..., G*T, S] bf16 (raw q.k products; G
// query heads of T positions stacked) are divided by `divisor` and rounded to bf16 (as HF's bf16
// division does), row g*T + t keeps keys 0..past+t, softmax in fp32, bf16 result (masked keys 0). Replaces a division, two conversions,
// a masked fill and a softmax over the whole score tensor.
torch::Tensor causal_softmax_bf16(const torch::Tensor& scores, float divisor, int64_t past, int64_t T);
// One decoding step of causal attention for one query token, reading the KV cache in place:
// q [1, 1, H, hd] bf16 (after RoPE); k_cache/v_cache [1, KV, capacity, hd] bf16 whose first S
// positions are valid; query head h uses KV head h / (H / KV). fp32 scores, softmax and sums.
// Returns [1, 1, H * hd] bf16.
torch::Tensor decode_attention_bf16(const torch::Tensor& q, const torch::Tensor& k_cache, const torch::Tensor& v_cache,
                                    int64_t S);

}  // namespace reasonseg
