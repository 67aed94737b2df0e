// Stage 1, loading: device and dtype policy, configuration, tokenizer, CLIP tower discovery and
// weights. The result is immutable; every query reads it.
#pragma once
#include <torch/types.h>

#include <memory>

#include "config/config.hpp"
#include "models/lisa_model.hpp"
#include "reasonseg/options.hpp"
#include "reasonseg/tokenizer.hpp"

namespace reasonseg {

struct LoadedModel {
  SegmenterOptions opt;
  LisaConfig cfg;
  std::unique_ptr<Tokenizer> tok;
  std::unique_ptr<LisaModel> model;
  std::unique_ptr<ClipVisionTower> clip;
  torch::Device device = torch::kCPU;
  torch::ScalarType dtype = torch::kFloat32;
  DType dtype_enum = DType::Float32;
  ModelFamily family = ModelFamily::Lisa;  // resolved (never Auto)
  ConvTemplate tpl = ConvTemplate::LlavaV1;
  int seg_id = -1;
  // Input values per int8 scale of the LLM's linear layers (the checkpoint's stored group, else
  // SegmenterOptions' when quantizing at load); 0: not quantized.
  int64_t quant_group = 0;
  double load_s = 0;
};

// Throws reasonseg::Error naming the option, file or key at fault.
std::unique_ptr<LoadedModel> load_model(const SegmenterOptions& options);

}  // namespace reasonseg
