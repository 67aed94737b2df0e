// AVX-512 kernels for int8 weights (nn/quantized_weight.hpp): the decode GEMV and the
// dequantisation of row blocks into bf16 for the prefill GEMM.
#pragma once
#include <cstdint>

namespace reasonseg {

// True when compiled in and the CPU has AVX512-F/BW/VL/BF16 (bf16_kernels_available()) and VNNI.
bool int8_simd_available();

// x prepared for gemv_int8_rows_simd: per group of `group_size` values an fp32 scale
// max|x_g| / 32767 and the values as int16 (x / scale, rounded), zero-padded to groups * group_size.
// Its rounding error (at most 1/65534 of the group's largest value) is ~250x below the int8
// weights' own and below bf16's rounding of x itself.
void quantize_x_int16(const float* x, int64_t K, int64_t groups, int64_t group_size, int16_t* xq, float* xscale);

// y[n] = sum_g scales[n, g] * xscale[g] * sum_{k in g} q[n, k] * xq[k] for rows [n0, n1): int8 x
// int16 products summed exactly in int32 (AVX512-VNNI vpdpwssd), one fp32 multiply-add per group.
// q int8 [N, K], scales fp32 [N, groups], group size a multiple of 32. Single-threaded.
void gemv_int8_rows_simd(const int16_t* xq, const float* xscale, const int8_t* q, const float* scales, int64_t K,
                         int64_t groups, int64_t group_size, float* y, int64_t n0, int64_t n1);

// out[(n - n0) * K + k] = bf16(q[n, k] * scales[n, k / group_size]) for rows [n0, n1), rounded
// to nearest even. Single-threaded.
void dequantize_rows_bf16_simd(const int8_t* q, const float* scales, int64_t K, int64_t groups, int64_t group_size,
                               uint16_t* out, int64_t n0, int64_t n1);

}  // namespace reasonseg
