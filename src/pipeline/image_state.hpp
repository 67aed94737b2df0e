// Per-image state that the stages share: the image, its encodings and the LLM's key/value cache
// of the last prompt about it. One per ImageContext; used by one thread at a time.
#pragma once
#include <torch/types.h>

#include <map>
#include <memory>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "image/preprocess.hpp"
#include "models/llama.hpp"
#include "models/llama_graph_decoder.hpp"
#include "nn/cuda_support.hpp"

namespace reasonseg {

struct ImageState {
  cv::Mat rgb;
  torch::Tensor clip_features;  // [N_img, H] projected, run dtype, on the device
  torch::Tensor sam_embedding;  // [1, C, E, E]
  SamInput sam_input;           // resized size (pixels dropped after encoding)
  std::unique_ptr<SideWork> sam_work;  // SAM's encoder still running on a second stream (CUDA)
  // Encoding times (clip, sam_encoder), added to the first query's timings.
  std::map<std::string, double> encode_ms;
  KVCache cache;
  std::vector<int64_t> seq;  // expanded token sequence whose keys/values the cache holds
  std::unique_ptr<LlamaGraphDecoder> graph_decoder;  // CUDA graphs of decoding steps over `cache`
};

}  // namespace reasonseg
