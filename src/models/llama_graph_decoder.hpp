// Greedy decoding of one KV cache from CUDA graphs: each step is Llama::decode_static replayed
// from a graph, so a token costs one graph launch instead of ~20 kernel launches per layer.
#pragma once
#include <map>
#include <memory>

#include "models/llama.hpp"
#include "nn/cuda_support.hpp"

namespace reasonseg {

class LlamaGraphDecoder {
 public:
  // Attention spans are cache positions rounded up to this: one graph per span serves this many tokens.
  static constexpr int64_t kSpanStep = 256;

  LlamaGraphDecoder(const Llama& llama, KVCache& cache);
  // True while this decoder was built for `cache`'s buffers (a reallocated cache needs a new one).
  bool serves(const KVCache& cache) const;
  // Runs `token` at position cache.length and advances it. hidden [H] and logits [vocab] are the
  // step's outputs, valid until the next step. The first step of each span captures its graph.
  void step(int64_t token, torch::Tensor& hidden, torch::Tensor& logits);
  size_t graphs() const { return graphs_.size(); }

 private:
  struct Graph {
    torch::Tensor span_positions, hidden, logits;
    std::unique_ptr<CapturedWork> work;
  };
  const Llama& llama_;
  KVCache& cache_;
  const void* cache_data_;
  StaticDecodeInputs in_;
  std::map<int64_t, Graph> graphs_;
};

}  // namespace reasonseg
