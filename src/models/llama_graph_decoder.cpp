#include "models/llama_graph_decoder.hpp"

#include <ATen/ATen.h>

#include <algorithm>

#include "util/error.hpp"

namespace reasonseg {

LlamaGraphDecoder::LlamaGraphDecoder(const Llama& llama, KVCache& cache)
    : llama_(llama), cache_(cache), cache_data_(cache.k.empty() ? nullptr : cache.k[0].data_ptr()) {
  if (cache.k.empty()) fail("LlamaGraphDecoder: the KV cache is empty");
  const auto& k = cache.k[0];
  auto ids = torch::TensorOptions().dtype(torch::kLong).device(k.device());
  in_.token = at::zeros({1}, ids);
  in_.position = at::zeros({1}, ids);
  llama.rope_table(k.scalar_type(), k.device(), in_.cos, in_.sin);
  // Masked positions get zero attention weight, but 0 * NaN is NaN: the never-written part of the
  // cache (allocated uninitialised) must hold finite values.
  const int64_t free = cache.capacity() - cache.length;
  for (size_t l = 0; l < cache.k.size() && free > 0; ++l) {
    cache.k[l].narrow(2, cache.length, free).zero_();
    cache.v[l].narrow(2, cache.length, free).zero_();
  }
}

bool LlamaGraphDecoder::serves(const KVCache& cache) const {
  return &cache == &cache_ && !cache.k.empty() && cache.k[0].data_ptr() == cache_data_;
}

void LlamaGraphDecoder::step(int64_t token, torch::Tensor& hidden, torch::Tensor& logits) {
  const int64_t pos = cache_.length;
  if (pos >= cache_.capacity()) fail("decoding past the KV cache's ", cache_.capacity(), " positions");
  const int64_t span = std::min(cache_.capacity(), (pos + kSpanStep) / kSpanStep * kSpanStep);
  in_.token.fill_(token);  // device-side fills: no host synchronisation
  in_.position.fill_(pos);
  Graph& g = graphs_[span];
  if (!g.work) {
    g.span_positions = at::arange(span, in_.token.options());
    g.work = capture_cuda_graph(in_.token.device(), [&] {
      StaticDecodeInputs in = in_;
      in.span_positions = g.span_positions;
      g.hidden = llama_.decode_static(in, cache_)[0][0];
      g.logits = llama_.logits(g.hidden);
    });
  }
  g.work->replay();
  cache_.length = pos + 1;
  hidden = g.hidden;
  logits = g.logits;
}

}  // namespace reasonseg
