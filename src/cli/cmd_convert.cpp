// reasonseg convert: re-shard a checkpoint as safetensors or torch.save .bin, or write a
// full-size random checkpoint in the release layout (bf16 LLaMA, fp32 SAM + text_hidden_fcs);
// --quantize int8 stores the LLM's linear layers as int8 + scales (docs/models.md).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "cli/args.hpp"
#include "cli/commands.hpp"
#include "config/config.hpp"
#include "io/checkpoint.hpp"
#include "io/safetensors.hpp"
#include "io/torch_bin.hpp"
#include "models/lisa_model.hpp"
#include "nn/module.hpp"
#include "reasonseg/version.hpp"
#include "util/error.hpp"
#include "util/progress.hpp"

namespace fs = std::filesystem;

namespace reasonseg::cli {

namespace {

// Collects tensors into shards of at most `limit` bytes and writes them with an index.
class ShardWriter {
 public:
  ShardWriter(std::string dir, std::string format, int64_t limit) : dir_(std::move(dir)), format_(std::move(format)), limit_(limit) {}
  void add(const std::string& key, torch::Tensor t) {
    int64_t n = t.numel() * t.element_size();
    if (!cur_.empty() && cur_bytes_ + n > limit_) flush();
    cur_.emplace_back(key, std::move(t));
    cur_bytes_ += n;
    total_ += n;
  }
  void finish() {
    flush();
    // Rename shards to the HF pattern now that the count is known; write the index.
    const bool st = format_ == "safetensors";
    const std::string stem = st ? "model" : "pytorch_model", ext = st ? ".safetensors" : ".bin";
    nlohmann::json wm = nlohmann::json::object();
    char buf[64];
    for (size_t i = 0; i < shards_.size(); ++i) {
      std::snprintf(buf, sizeof buf, "-%05zu-of-%05zu", i + 1, shards_.size());
      std::string name = shards_.size() == 1 ? stem + ext : stem + buf + ext;
      fs::rename(shards_[i].first, fs::path(dir_) / name);
      for (auto& k : shards_[i].second) wm[k] = name;
    }
    if (shards_.size() > 1) {
      nlohmann::json idx = {{"metadata", {{"total_size", total_}}}, {"weight_map", wm}};
      std::ofstream(fs::path(dir_) / (stem + ext + ".index.json")) << idx.dump(2) << "\n";
    }
  }

 private:
  void flush() {
    if (cur_.empty()) return;
    std::string tmp = (fs::path(dir_) / ("shard-" + std::to_string(shards_.size()) + ".tmp")).string();
    std::vector<std::string> keys;
    for (auto& [k, t] : cur_) keys.push_back(k);
    if (format_ == "safetensors") {
      std::map<std::string, torch::Tensor> m(cur_.begin(), cur_.end());
      write_safetensors(tmp, m, {{"format", "pt"}});
    } else {
      write_torch_bin(tmp, cur_);
    }
    shards_.emplace_back(tmp, keys);
    cur_.clear();
    cur_bytes_ = 0;
  }
  std::string dir_, format_;
  int64_t limit_, cur_bytes_ = 0, total_ = 0;
  std::vector<std::pair<std::string, torch::Tensor>> cur_;
  std::vector<std::pair<std::string, std::vector<std::string>>> shards_;
};

// Adds a tensor, or its int8 form (`<key>_int8`, `<key>_scale`) when it is one of the LLM's
// linear weights and quantization was asked for.
struct TensorAdder {
  ShardWriter& w;
  std::set<std::string> quantizable;
  int64_t group = 0;
  void operator()(const std::string& key, const torch::Tensor& t, const std::string& where) {
    if (group > 0 && quantizable.count(key)) {
      auto q = quantize_int8(t, group, where + ": tensor '" + key + "'");
      w.add(int8_key(key), q.data);
      w.add(scale_key(key), q.scales);
    } else {
      w.add(key, t);
    }
  }
};

std::set<std::string> quantizable_keys(LisaModel& model) {
  std::vector<Module::Slot> slots;
  model.collect("", slots);
  std::set<std::string> keys;
  for (auto& s : slots)
    if (s.quant) keys.insert(s.key);
  return keys;
}

}  // namespace

const CommandSpec& convert_spec() {
  static const CommandSpec spec{
      "convert", "(--model DIR | --random-weights PRESET) --out DIR",
      "Re-shards a checkpoint, or writes a full-size random checkpoint in the released layout.",
      {{"model", "DIR", "the checkpoint to re-shard (tensors keep their dtypes; other files are copied)"},
       {"random-weights", "PRESET", "write random weights of lisa-7b, lisa-13b or mid instead"},
       {"out", "DIR", "output directory"},
       {"format", "F", "safetensors or bin (safetensors)"},
       {"shard-gb", "N", "shard size in GB (10)"},
       {"quantize", "Q", "int8: store the LLM's linear layers and lm_head as int8 + fp32 scales (safetensors only)"},
       {"quantize-group", "N", "input values per int8 scale: 32, 64, 128 or 256 (64)"},
       {"quiet", "", "no progress output"}},
      "Random checkpoints: bf16 LLaMA and projector, fp32 SAM and text_hidden_fcs, no vision-tower keys, plus a\n"
      "random CLIP tower directory, a config and the bundled tokenizer."};
  return spec;
}

int cmd_convert(const Args& a) {
  const std::string out = a.require("out"), format = a.get("format", "safetensors");
  if (format != "safetensors" && format != "bin") fail("--format: '", format, "' is not safetensors or bin");
  const int64_t limit = int64_t(a.get_double("shard-gb", 10.0) * 1e9);
  if (limit <= 0) fail("--shard-gb must be positive");
  if (a.has("model") == a.has("random-weights")) fail("convert: give exactly one of --model DIR or --random-weights PRESET");
  const Quantization quant = parse_quantization(a.get("quantize", "none"));
  const int64_t group = quant == Quantization::Int8 ? a.get_int("quantize-group", 64) : 0;
  if (quant == Quantization::Int8 && !valid_group_size(group))
    fail("--quantize-group ", group, " is not one of 32, 64, 128, 256");
  if (quant == Quantization::Int8 && format != "safetensors") fail("--quantize int8 writes safetensors only (--format)");
  fs::create_directories(out);
  ShardWriter w(out, format, limit);
  if (a.has("model")) {
    const std::string dir = a.get("model");
    auto src = TensorSource::open_dir(dir);
    TensorAdder add{w, {}, group};
    if (group > 0) {
      LisaConfig cfg = read_lisa_config(dir);
      if (cfg.stored_quantization_group > 0) fail(dir, ": the checkpoint is already quantized (int8)");
      LisaModel model(cfg);
      add.quantizable = quantizable_keys(model);
    }
    ProgressBar bar("convert", int64_t(src.total_file_bytes()), true, !a.has("quiet"));
    for (auto& f : src.files())
      for (auto& [k, t] : src.read_file(f)) {
        bar.advance(t.numel() * t.element_size());
        add(k, t, f);
      }
    w.finish();
    bar.finish();
    for (auto& e : fs::directory_iterator(dir)) {
      auto name = e.path().filename().string();
      bool weights = name.rfind("model", 0) == 0 || name.rfind("pytorch_model", 0) == 0;
      if (weights) continue;
      fs::copy(e.path(), fs::path(out) / name, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
    }
    if (group > 0) {
      // The loader learns the group size (and that int8 keys are expected) from config.json.
      const auto cfg_path = fs::path(out) / "config.json";
      std::ifstream in(cfg_path);
      auto j = nlohmann::json::parse(in);
      in.close();
      j["reasonseg_quantization"] = quantization_config_json(group);
      std::ofstream(cfg_path) << j.dump(2) << "\n";
    }
    return 0;
  }
  const std::string preset = a.get("random-weights");
  LisaConfig cfg = preset_config(preset);
  cfg.stored_quantization_group = group;
  LisaModel model(cfg);
  TensorAdder add{w, group > 0 ? quantizable_keys(model) : std::set<std::string>{}, group};
  std::vector<Module::Slot> slots;
  model.collect("", slots);
  // The seeds of ReasoningSegmenter's --random-weights: the written model equals the in-memory one.
  const uint64_t seed = 1234, clip_seed = 4321;
  // The release layout: SAM and text_hidden_fcs in fp32, everything else bf16.
  auto release_dtype = [](const std::string& key) {
    bool fp32 = key.rfind("model.visual_model.", 0) == 0 || key.rfind("model.text_hidden_fcs.", 0) == 0;
    return fp32 ? torch::kFloat32 : torch::kBFloat16;
  };
  int64_t total = 0;
  for (auto& s : slots) {
    int64_t n = 1;
    for (auto d : s.shape) n *= d;
    total += n * int64_t(c10::elementSize(release_dtype(s.key)));
  }
  {
    ProgressBar bar("random " + preset, total, true, !a.has("quiet"));
    for (auto& s : slots) {
      auto t = random_tensor(s, release_dtype(s.key), torch::kCPU, seed);
      bar.advance(t.numel() * t.element_size());
      add(s.key, t, preset);
    }
    w.finish();
  }
  // A random CLIP tower of the preset's size in its own HF-style directory.
  const std::string tower = "clip-vit-random";
  fs::create_directories(fs::path(out) / tower);
  ClipVisionTower clip(cfg.vision, cfg.vision.num_hidden_layers);
  std::vector<Module::Slot> cs;
  clip.collect("vision_model.", cs);
  std::map<std::string, torch::Tensor> ct;
  for (auto& s : cs) ct[s.key] = random_tensor(s, torch::kFloat32, torch::kCPU, clip_seed);
  write_safetensors((fs::path(out) / tower / "model.safetensors").string(), ct, {{"format", "pt"}});
  std::ofstream(fs::path(out) / tower / "config.json") << clip_vision_config_json(cfg.vision).dump(2) << "\n";
  std::ofstream(fs::path(out) / "config.json") << lisa_config_json(cfg, tower).dump(2) << "\n";
  std::ofstream(fs::path(out) / "added_tokens.json") << nlohmann::json(preset_added_tokens(cfg)).dump(2) << "\n";
  fs::copy_file(data_path("tokenizer.model"), fs::path(out) / "tokenizer.model", fs::copy_options::overwrite_existing);
  return 0;
}

}  // namespace reasonseg::cli
