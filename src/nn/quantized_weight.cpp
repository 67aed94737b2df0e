#include "nn/quantized_weight.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/record_function.h>

#include <atomic>
#include <cmath>
#include <limits>
#include <vector>

#include "nn/gemv_int8.hpp"
#include "nn/weight_memory.hpp"
#include "util/error.hpp"

namespace reasonseg {

namespace {
// The portable GEMV: the same per-group order of operations as the AVX-512 kernel.
void gemv_int8_rows_portable(const float* x, const int8_t* q, const float* scales, int64_t K, int64_t groups,
                             int64_t G, float* y, int64_t n0, int64_t n1) {
  for (int64_t n = n0; n < n1; ++n) {
    const int8_t* r = q + n * K;
    float acc = 0;
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t k1 = std::min(K, (g + 1) * G);
      float part = 0;
      for (int64_t k = g * G; k < k1; ++k) part += float(r[k]) * x[k];
      acc += part * scales[n * groups + g];
    }
    y[n] = acc;
  }
}
}  // namespace

int64_t QuantizedWeight::bytes() const {
  return defined() ? data.numel() * data.element_size() + scales.numel() * scales.element_size() : 0;
}

QuantizedWeight quantize_int8(const torch::Tensor& w, int64_t G, const std::string& name) {
  if (w.dim() != 2 || !w.is_floating_point()) fail(name, ": only 2-D floating-point weights can be quantized");
  if (!valid_group_size(G)) fail("quantize_group_size ", G, " is not one of 32, 64, 128, 256");
  const int64_t N = w.size(0), K = w.size(1), groups = scale_groups(K, G);
  QuantizedWeight out;
  out.group_size = G;
  // Huge pages, as for every weight: decoding streams these bytes once per token.
  out.data = empty_weight({N, K}, torch::TensorOptions().dtype(torch::kInt8));
  out.scales = torch::empty({N, groups}, torch::TensorOptions().dtype(torch::kFloat32));
  int8_t* qp = out.data.data_ptr<int8_t>();
  float* sp = out.scales.data_ptr<float>();
  std::atomic<bool> non_finite{false};
  // Row blocks converted to fp32 one at a time: never a full fp32 copy of a 7B layer.
  const int64_t block = std::max<int64_t>(1, (int64_t(4) << 20) / std::max<int64_t>(K, 1));
  for (int64_t b0 = 0; b0 < N; b0 += block) {
    const int64_t rows = std::min(block, N - b0);
    auto f = w.narrow(0, b0, rows).to(torch::kCPU, torch::kFloat32).contiguous();
    const float* fp = f.data_ptr<float>();
    at::parallel_for(0, rows, 16, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const float* src = fp + r * K;
        int8_t* dst = qp + (b0 + r) * K;
        for (int64_t g = 0; g < groups; ++g) {
          const int64_t k0 = g * G, k1 = std::min(K, k0 + G);
          float amax = 0;
          bool finite = true;
          for (int64_t k = k0; k < k1; ++k) {
            const float a = std::fabs(src[k]);
            amax = std::max(amax, a);
            finite = finite && a <= std::numeric_limits<float>::max();  // false for NaN and Inf
          }
          if (!finite) {
            non_finite = true;
            amax = 0;
          }
          const float scale = amax / 127.0f, inv = amax > 0 ? 127.0f / amax : 0.0f;
          sp[(b0 + r) * groups + g] = scale;
          for (int64_t k = k0; k < k1; ++k)
            dst[k] = int8_t(std::max(-127.0f, std::min(127.0f, std::nearbyint(src[k] * inv))));
        }
      }
    });
    if (non_finite) fail(name, ": holds NaN or Inf values; it cannot be quantized");
  }
  return out;
}

void validate_quantized(const QuantizedWeight& q, int64_t N, int64_t K, const std::string& where) {
  if (!valid_group_size(q.group_size))
    fail(where, ": group size ", q.group_size, " is not one of 32, 64, 128, 256");
  if (q.data.scalar_type() != torch::kInt8) fail(where, ": int8 weights stored as ", c10::toString(q.data.scalar_type()));
  if (q.data.sizes().vec() != std::vector<int64_t>{N, K})
    fail(where, ": int8 weights have shape ", shape_str(q.data.sizes().vec()), " but the config needs ", shape_str({N, K}));
  const std::vector<int64_t> sshape{N, scale_groups(K, q.group_size)};
  if (q.scales.scalar_type() != torch::kFloat32)
    fail(where, ": scales stored as ", c10::toString(q.scales.scalar_type()), " (need F32)");
  if (q.scales.sizes().vec() != sshape)
    fail(where, ": scales have shape ", shape_str(q.scales.sizes().vec()), " but ", shape_str({N, K}),
         " in groups of ", q.group_size, " needs ", shape_str(sshape));
  if (!q.data.is_contiguous() || !q.scales.is_contiguous()) fail(where, ": quantized tensors must be contiguous");
  auto s = q.scales.is_cpu() ? q.scales : q.scales.cpu();
  const float* p = s.data_ptr<float>();
  for (int64_t i = 0; i < s.numel(); ++i)
    if (!(std::isfinite(p[i]) && p[i] >= 0))
      fail(where, ": scale ", i, " is ", p[i], " (scales must be finite and >= 0)");
}

torch::Tensor dequantize(const QuantizedWeight& q, torch::ScalarType dtype) {
  const int64_t K = q.data.size(1);
  auto s = q.scales.repeat_interleave(q.group_size, 1).narrow(1, 0, K);
  return (q.data.to(torch::kFloat32) * s).to(dtype);
}

namespace {
torch::Tensor with_bias(torch::Tensor y, const torch::Tensor* bias) {
  if (bias) y += bias->to(y.scalar_type());
  return y;
}

// One token: the int8 GEMV, fp32 accumulation, result in x's dtype.
torch::Tensor gemv_int8(const torch::Tensor& x, const QuantizedWeight& q, const torch::Tensor* bias, bool simd) {
  RECORD_FUNCTION("reasonseg::gemv_int8", std::vector<c10::IValue>({x}));
  const int64_t N = q.data.size(0), K = q.data.size(1), G = q.group_size, groups = q.scales.size(1);
  auto xf = x.reshape({K}).to(torch::kFloat32).contiguous();
  auto y = torch::empty({N}, torch::TensorOptions().dtype(torch::kFloat32));
  const float* xp = xf.data_ptr<float>();
  const int8_t* qp = q.data.data_ptr<int8_t>();
  const float* sp = q.scales.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  if (simd) {
    std::vector<int16_t> xq(static_cast<size_t>(groups * G));
    std::vector<float> xs(static_cast<size_t>(groups));
    quantize_x_int16(xp, K, groups, G, xq.data(), xs.data());
    at::parallel_for(0, (N + 7) / 8, 8, [&](int64_t b, int64_t e) {
      gemv_int8_rows_simd(xq.data(), xs.data(), qp, sp, K, groups, G, yp, b * 8, std::min(N, e * 8));
    });
  } else {
    at::parallel_for(0, N, 64, [&](int64_t n0, int64_t n1) { gemv_int8_rows_portable(xp, qp, sp, K, groups, G, yp, n0, n1); });
  }
  if (bias) y += bias->to(torch::kFloat32);
  auto sizes = x.sizes().vec();
  sizes.back() = N;
  return y.to(x.scalar_type()).view(sizes);
}

// Several tokens on the CPU: row tiles of W dequantized into a bf16 buffer that stays in cache
// and multiplied by LibTorch's GEMM; no full-size bf16 copy of the weight is made.
torch::Tensor linear_tiles_bf16(const torch::Tensor& x, const QuantizedWeight& q, const torch::Tensor* bias) {
  RECORD_FUNCTION("reasonseg::linear_int8_tiles", std::vector<c10::IValue>({x}));
  const int64_t N = q.data.size(0), K = q.data.size(1), G = q.group_size, groups = q.scales.size(1);
  // ~2 MB of bf16 per tile: as fast as bf16 weights on a 276-token prompt, 8 MB tiles 2-5% and
  // the whole layer ~40% slower (docs/performance.md).
  const int64_t tile = std::min<int64_t>(N, std::max<int64_t>(64, (int64_t(1) << 20) / K / 64 * 64));
  auto x2 = x.reshape({-1, K});
  auto y = torch::empty({x2.size(0), N}, x.options());
  auto buf = torch::empty({tile, K}, torch::TensorOptions().dtype(torch::kBFloat16));
  const int8_t* qp = q.data.data_ptr<int8_t>();
  const float* sp = q.scales.data_ptr<float>();
  auto* bp = reinterpret_cast<uint16_t*>(buf.data_ptr());
  for (int64_t n0 = 0; n0 < N; n0 += tile) {
    const int64_t rows = std::min(tile, N - n0);
    {
      RECORD_FUNCTION("reasonseg::dequantize_tile", std::vector<c10::IValue>());
      at::parallel_for(0, rows, 8, [&](int64_t r0, int64_t r1) {
        dequantize_rows_bf16_simd(qp + n0 * K, sp + n0 * groups, K, groups, G, bp + r0 * K, r0, r1);
      });
    }
    y.narrow(1, n0, rows).copy_(at::linear(x2, buf.narrow(0, 0, rows)));
  }
  auto sizes = x.sizes().vec();
  sizes.back() = N;
  return with_bias(y, bias).view(sizes);
}
}  // namespace

namespace {
torch::Tensor linear(const torch::Tensor& x, const QuantizedWeight& q, const torch::Tensor* bias, bool simd) {
  if (x.is_cpu() && x.numel() == x.size(-1)) return gemv_int8(x, q, bias, simd);
  if (simd && x.is_cpu() && x.scalar_type() == torch::kBFloat16) return linear_tiles_bf16(x, q, bias);
  auto w = dequantize(q, x.scalar_type());
  return bias ? at::linear(x, w, bias->to(x.scalar_type())) : at::linear(x, w);
}
}  // namespace

torch::Tensor quantized_linear(const torch::Tensor& x, const QuantizedWeight& q, const torch::Tensor* bias) {
  return linear(x, q, bias, int8_simd_available());
}

torch::Tensor quantized_linear_portable(const torch::Tensor& x, const QuantizedWeight& q, const torch::Tensor* bias) {
  return linear(x, q, bias, false);
}

}  // namespace reasonseg
