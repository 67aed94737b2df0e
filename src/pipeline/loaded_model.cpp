#include "pipeline/loaded_model.hpp"

#include <torch/cuda.h>

#include <chrono>
#include <filesystem>

#include "io/checkpoint.hpp"
#include "pipeline/finite.hpp"
#include "reasonseg/process.hpp"
#include "reasonseg/version.hpp"
#include "util/error.hpp"
#include "util/progress.hpp"

namespace fs = std::filesystem;


namespace reasonseg {

std::unique_ptr<LoadedModel> load_model(const SegmenterOptions& options) {
  auto t0 = std::chrono::steady_clock::now();
  auto m = std::make_unique<LoadedModel>();
  m->opt = options;
  auto& opt = m->opt;
  auto& cfg = m->cfg;
  auto& tok = m->tok;
  auto& device = m->device;
  auto& dtype = m->dtype;
  auto& dtype_enum = m->dtype_enum;
  // Device and dtype.
  Device dev = opt.device;
  if (dev == Device::Auto) dev = torch::cuda::is_available() ? Device::CUDA : Device::CPU;
  if (dev == Device::CUDA && !torch::cuda::is_available())
    fail("--device cuda: this LibTorch build or machine has no CUDA device");
  device = dev == Device::CUDA ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
  dtype_enum = opt.dtype;
  if (dtype_enum == DType::Auto) dtype_enum = auto_dtype(dev);
  if (dtype_enum == DType::Float16 && device.is_cpu())
    fail("--dtype fp16 is supported on CUDA only (use bf16 or fp32 on CPU)");
  dtype = dtype_enum == DType::BFloat16 ? torch::kBFloat16 : dtype_enum == DType::Float16 ? torch::kFloat16 : torch::kFloat32;
  if (opt.max_new_tokens < 0) fail("max_new_tokens must be >= 0 (got ", opt.max_new_tokens, ")");
  if (opt.quantize != Quantization::None && !valid_group_size(opt.quantize_group_size))
    fail("quantize_group_size ", opt.quantize_group_size, " is not one of 32, 64, 128, 256");

  std::unique_ptr<TensorSource> src, tower_src;
  std::string tower_prefix = "vision_model.";
  if (!opt.random_weights.empty()) {
    cfg = preset_config(opt.random_weights);
    std::string tokdir = opt.model_dir;
    if (!tokdir.empty() && fs::exists(fs::path(tokdir) / "tokenizer.model")) {
      tok = std::make_unique<Tokenizer>(Tokenizer::from_dir(tokdir));
    } else {
      // LLaMA's vocabulary, installed with the library (reasonseg/version.hpp).
      const std::string sp = data_path("tokenizer.model");
      tok = std::make_unique<Tokenizer>(sp, preset_added_tokens(cfg));
    }
  } else {
    if (opt.model_dir.empty()) fail("--model: no model directory given");
    if (!fs::is_directory(opt.model_dir)) fail(opt.model_dir, ": model directory does not exist");
    cfg = read_lisa_config(opt.model_dir);
    tok = std::make_unique<Tokenizer>(Tokenizer::from_dir(opt.model_dir));
    src = std::make_unique<TensorSource>(TensorSource::open_dir(opt.model_dir));
    // The CLIP tower: explicit option, then the config's path, then weights embedded in the checkpoint.
    std::string tower = opt.vision_tower_dir;
    if (tower.empty() && !cfg.vision_tower.empty()) {
      auto p = fs::path(cfg.vision_tower).is_absolute() ? fs::path(cfg.vision_tower) : fs::path(opt.model_dir) / cfg.vision_tower;
      if (fs::is_directory(p)) tower = p.string();
    }
    const std::string embedded = "model.vision_tower.vision_tower.vision_model.";
    if (!tower.empty()) {
      if (!fs::is_directory(tower)) fail("--vision-tower: '", tower, "' is not a directory");
      read_clip_tower_config(tower, cfg);
      tower_src = std::make_unique<TensorSource>(TensorSource::open_dir(tower));
    } else if (cfg.has_vision_config && src->contains(embedded + "embeddings.class_embedding")) {
      tower_prefix = embedded;
    } else {
      fail(opt.model_dir, ": the CLIP vision tower '", cfg.vision_tower,
           "' was not found. Released LISA checkpoints do not contain it: download the Hugging Face repo '",
           cfg.vision_tower.empty() ? "openai/clip-vit-large-patch14" : cfg.vision_tower,
           "' (config.json, preprocessor_config.json, pytorch_model.bin or model.safetensors) and pass its directory "
           "with --vision-tower DIR (SegmenterOptions::vision_tower_dir)");
    }
  }
  m->family = opt.family != ModelFamily::Auto ? opt.family : detect_family(cfg);
  m->tpl = !opt.conv_template.empty() ? parse_conv_template(opt.conv_template) : default_conv_template(m->family);
  if (cfg.mm_hidden_size != cfg.vision.hidden_size)
    fail(cfg.source, ": mm_hidden_size ", cfg.mm_hidden_size, " differs from the vision tower width ", cfg.vision.hidden_size);
  if (cfg.out_dim != cfg.sam.prompt_embed_dim)
    fail(cfg.source, ": out_dim ", cfg.out_dim, " must equal SAM's prompt_embed_dim ", cfg.sam.prompt_embed_dim);
  m->seg_id = tok->added_token_id("[SEG]");
  if (cfg.mm_use_im_start_end) {
    tok->added_token_id("<im_start>");
    tok->added_token_id("<im_end>");
  }
  for (auto& [t, id] : tok->added_tokens())
    if (id >= cfg.llm.vocab_size)
      fail(cfg.source, ": added token '", t, "' has id ", id, " outside vocab_size ", cfg.llm.vocab_size);

  auto& model = m->model;
  auto& clip = m->clip;
  model = std::make_unique<LisaModel>(cfg);
  clip = std::make_unique<ClipVisionTower>(cfg.vision, cfg.clip_layers_needed());
  m->quant_group = cfg.stored_quantization_group > 0 ? cfg.stored_quantization_group
                   : opt.quantize == Quantization::Int8 ? opt.quantize_group_size : 0;
  int64_t total = module_bytes(*model, dtype, m->quant_group) + module_bytes(*clip, dtype);
  ProgressBar bar(opt.random_weights.empty() ? "loading" : "random weights", total, true, opt.progress);
  LoadSettings ls;
  ls.dtype = dtype;
  ls.device = device;
  ls.zero_copy = opt.zero_copy_weights;
  ls.quantize_group_size = opt.quantize == Quantization::Int8 ? opt.quantize_group_size : 0;
  ls.stored_group_size = cfg.stored_quantization_group;
  ls.on_bytes = [&](int64_t n) { bar.advance(n); };
  if (!opt.random_weights.empty()) {
    randomize_module(*model, ls, 1234);
    randomize_module(*clip, ls, 4321);
  } else {
    load_module(*model, "", *src, ls);
    load_module(*clip, tower_prefix, tower_src ? *tower_src : *src, ls);
    if (opt.check_finite_weights) {
      // One read of every weight (the first query reads them all anyway): NaN/Inf in a released
      // file otherwise surfaces as <unk> answers or blank masks, far from its cause.
      std::vector<Module::Slot> slots;
      model->collect("", slots);
      clip->collect(tower_prefix, slots);
      for (auto& s : slots)  // (int8 weights were checked as they were quantized or validated)
        if (s.value->defined() && s.value->numel() && !all_finite(*s.value))
          fail(opt.model_dir, ": tensor '", s.key, "' holds NaN or Inf values (SegmenterOptions::check_finite_weights)");
    }
  }
  bar.finish();
  m->load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return m;
}

}  // namespace reasonseg
