#include "config/config.hpp"

#include "nn/quantized_weight.hpp"

#include <filesystem>
#include <fstream>
#include <limits>
#include <type_traits>
#include <nlohmann/json.hpp>

#include "util/error.hpp"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace reasonseg {

namespace {

json read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail(path, ": cannot open");
  try {
    json j = json::parse(in);
    if (!j.is_object()) fail(path, ": expected a JSON object");
    return j;
  } catch (const json::exception& e) {
    fail(path, ": invalid JSON: ", e.what());
  }
}

// Reads j[key] into out when present and not null; wrong types name file and key.
template <typename T>
void opt(const json& j, const char* key, T& out, const std::string& file) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return;
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    // nlohmann's get<int> truncates: 4294967298 would read as 2, 3.5 as 3.
    if (!it->is_number_integer()) fail(file, ": field \"", key, "\" must be an integer (got ", it->dump(), ")");
    const bool fits = it->is_number_unsigned() ? it->get<uint64_t>() <= uint64_t(std::numeric_limits<T>::max())
                                               : it->get<int64_t>() >= int64_t(std::numeric_limits<T>::min()) &&
                                                     it->get<int64_t>() <= int64_t(std::numeric_limits<T>::max());
    if (!fits) fail(file, ": field \"", key, "\" is out of range (", it->dump(), ")");
  }
  try {
    out = it->get<T>();
  } catch (const json::exception&) {
    fail(file, ": field \"", key, "\" has the wrong type (", it->dump(), ")");
  }
}

// The schema, written once: each config struct's JSON keys and members, visited by the readers
// (opt) and the writers (lisa_config_json, clip_vision_config_json) alike.
template <typename C, typename V>
void vision_fields(C& c, V&& f) {
  f("hidden_size", c.hidden_size);
  f("intermediate_size", c.intermediate_size);
  f("num_hidden_layers", c.num_hidden_layers);
  f("num_attention_heads", c.num_attention_heads);
  f("num_channels", c.num_channels);
  f("image_size", c.image_size);
  f("patch_size", c.patch_size);
  f("layer_norm_eps", c.layer_norm_eps);
  f("hidden_act", c.hidden_act);
}

template <typename C, typename V>
void sam_fields(C& c, V&& f) {
  f("encoder_embed_dim", c.encoder_embed_dim);
  f("encoder_depth", c.encoder_depth);
  f("encoder_num_heads", c.encoder_num_heads);
  f("encoder_global_attn_indexes", c.encoder_global_attn_indexes);
  f("encoder_layer_norm_eps", c.encoder_layer_norm_eps);
  f("encoder_mlp_ratio", c.encoder_mlp_ratio);
  f("encoder_qkv_bias", c.encoder_qkv_bias);
  f("encoder_use_rel_pos", c.encoder_use_rel_pos);
  f("window_size", c.window_size);
  f("image_size", c.image_size);
  f("patch_size", c.patch_size);
  f("prompt_embed_dim", c.prompt_embed_dim);
  f("mask_in_chans", c.mask_in_chans);
  f("num_multimask_outputs", c.num_multimask_outputs);
  f("mask_decoder_transformer_depth", c.mask_decoder_transformer_depth);
  f("mask_decoder_num_heads", c.mask_decoder_num_heads);
  f("mask_decoder_mlp_dim", c.mask_decoder_mlp_dim);
  f("iou_head_depth", c.iou_head_depth);
  f("iou_head_hidden_dim", c.iou_head_hidden_dim);
  f("pixel_mean", c.pixel_mean);
  f("pixel_std", c.pixel_std);
}

// LLaMA sizes and LISA's own fields of config.json (num_key_value_heads defaults to the heads,
// rope_scaling is an object: both handled beside the table).
template <typename C, typename V>
void lisa_fields(C& c, V&& f) {
  f("hidden_size", c.llm.hidden_size);
  f("intermediate_size", c.llm.intermediate_size);
  f("num_hidden_layers", c.llm.num_hidden_layers);
  f("num_attention_heads", c.llm.num_attention_heads);
  f("num_key_value_heads", c.llm.num_key_value_heads);
  f("vocab_size", c.llm.vocab_size);
  f("max_position_embeddings", c.llm.max_position_embeddings);
  f("rms_norm_eps", c.llm.rms_norm_eps);
  f("rope_theta", c.llm.rope_theta);
  f("mm_hidden_size", c.mm_hidden_size);
  f("mm_vision_select_layer", c.mm_vision_select_layer);
  f("mm_vision_select_feature", c.mm_vision_select_feature);
  f("mm_projector_type", c.mm_projector_type);
  f("mm_use_im_start_end", c.mm_use_im_start_end);
  f("out_dim", c.out_dim);
  f("bos_token_id", c.bos_token_id);
  f("eos_token_id", c.eos_token_id);
  f("pad_token_id", c.pad_token_id);
}

void positive(int v, const char* key, const std::string& file) {
  if (v <= 0) fail(file, ": field \"", key, "\" must be positive (got ", v, ")");
}

void read_vision(const json& v, ClipVisionConfig& c, const std::string& file) {
  vision_fields(c, [&](const char* key, auto& member) { opt(v, key, member, file); });
  positive(c.hidden_size, "vision hidden_size", file);
  positive(c.num_hidden_layers, "vision num_hidden_layers", file);
  positive(c.num_attention_heads, "vision num_attention_heads", file);
  positive(c.patch_size, "vision patch_size", file);
  if (c.hidden_size % c.num_attention_heads) fail(file, ": vision hidden_size is not a multiple of the heads");
  if (c.image_size < c.patch_size) fail(file, ": vision image_size is smaller than patch_size");
  if (c.hidden_act != "quick_gelu" && c.hidden_act != "gelu")
    fail(file, ": vision hidden_act \"", c.hidden_act, "\" is not supported (quick_gelu, gelu)");
}

void read_sam(const json& s, SamConfig& c, const std::string& file) {
  sam_fields(c, [&](const char* key, auto& member) { opt(s, key, member, file); });
  positive(c.encoder_embed_dim, "sam encoder_embed_dim", file);
  positive(c.encoder_num_heads, "sam encoder_num_heads", file);
  positive(c.patch_size, "sam patch_size", file);
  positive(c.prompt_embed_dim, "sam prompt_embed_dim", file);
  positive(c.mask_decoder_num_heads, "sam mask_decoder_num_heads", file);
  if (c.encoder_embed_dim % c.encoder_num_heads) fail(file, ": sam encoder_embed_dim is not a multiple of the heads");
  if (c.prompt_embed_dim % 8) fail(file, ": sam prompt_embed_dim must be a multiple of 8");
  if (c.image_size % c.patch_size) fail(file, ": sam image_size is not a multiple of patch_size");
  for (int g : c.encoder_global_attn_indexes)
    if (g < 0 || g >= c.encoder_depth) fail(file, ": sam global attention index ", g, " is outside the encoder");
}

}  // namespace

int LisaConfig::clip_layers_needed() const {
  int n = vision.num_hidden_layers;
  int idx = mm_vision_select_layer < 0 ? n + 1 + mm_vision_select_layer : mm_vision_select_layer;
  if (idx < 0 || idx > n)
    fail(source, ": mm_vision_select_layer ", mm_vision_select_layer, " is outside the ", n, "-layer vision tower");
  return idx;  // hidden_states[idx] is the output of layer idx (0 = embeddings)
}

ModelFamily detect_family(const LisaConfig& cfg) {
  if (cfg.architecture.find("SESAME") != std::string::npos) return ModelFamily::Sesame;
  if (cfg.llava15) return ModelFamily::LisaPlus;
  return ModelFamily::Lisa;
}

ConvTemplate default_conv_template(ModelFamily family) {
  return family == ModelFamily::Sesame ? ConvTemplate::VicunaV1 : ConvTemplate::LlavaV1;
}

LisaConfig read_lisa_config(const std::string& model_dir) {
  const std::string file = (fs::path(model_dir) / "config.json").string();
  json j = read_json(file);
  LisaConfig c;
  c.source = file;
  auto& l = c.llm;
  l.num_key_value_heads = std::numeric_limits<int>::min();  // absent: one KV head per attention head
  lisa_fields(c, [&](const char* key, auto& member) { opt(j, key, member, file); });
  if (l.num_key_value_heads == std::numeric_limits<int>::min()) l.num_key_value_heads = l.num_attention_heads;
  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null()) {
    auto& rs = j["rope_scaling"];
    std::string type;
    opt(rs, "type", type, file);
    if (type != "linear") fail(file, ": rope_scaling type \"", type, "\" is not supported (only linear)");
    opt(rs, "factor", l.rope_linear_factor, file);
  }
  for (auto [v, k] : {std::pair{l.hidden_size, "hidden_size"}, {l.num_hidden_layers, "num_hidden_layers"},
                      {l.num_attention_heads, "num_attention_heads"}, {l.num_key_value_heads, "num_key_value_heads"},
                      {l.vocab_size, "vocab_size"}, {l.intermediate_size, "intermediate_size"},
                      {l.max_position_embeddings, "max_position_embeddings"}})
    positive(v, k, file);
  if (l.hidden_size % l.num_attention_heads) fail(file, ": hidden_size is not a multiple of num_attention_heads");
  if (l.head_dim() % 2) fail(file, ": head dimension must be even for rotary embeddings");
  if (l.num_attention_heads % l.num_key_value_heads)
    fail(file, ": num_attention_heads is not a multiple of num_key_value_heads");
  std::string act = "silu";
  opt(j, "hidden_act", act, file);
  if (act != "silu") fail(file, ": hidden_act \"", act, "\" is not supported (silu)");
  if (c.mm_vision_select_feature != "patch" && c.mm_vision_select_feature != "cls_patch")
    fail(file, ": mm_vision_select_feature \"", c.mm_vision_select_feature, "\" is not supported");
  if (c.mm_projector_type != "linear" && c.mm_projector_type != "mlp2x_gelu")
    fail(file, ": mm_projector_type \"", c.mm_projector_type, "\" is not supported (linear, mlp2x_gelu)");
  positive(c.out_dim, "out_dim", file);
  c.llava15 = j.contains("mm_projector_type");
  if (j.contains("architectures")) {
    const auto& a = j["architectures"];
    if (!a.is_array() || (!a.empty() && !a[0].is_string())) fail(file, ": \"architectures\" must be a list of names");
    if (!a.empty()) c.architecture = a[0].get<std::string>();
  }
  opt(j, "mm_vision_tower", c.vision_tower, file);
  if (c.vision_tower.empty()) opt(j, "vision_tower", c.vision_tower, file);
  if (j.contains("vision_config") && j["vision_config"].is_object()) {
    read_vision(j["vision_config"], c.vision, file);
    c.has_vision_config = true;
    c.clip_preprocess.shortest_edge = c.clip_preprocess.crop_height = c.clip_preprocess.crop_width =
        c.vision.image_size;
  }
  if (j.contains("sam_config")) {
    if (!j["sam_config"].is_object()) fail(file, ": \"sam_config\" must be an object");
    read_sam(j["sam_config"], c.sam, file);
  }
  if (j.contains("reasonseg_quantization")) {
    const auto& q = j["reasonseg_quantization"];
    if (!q.is_object()) fail(file, ": \"reasonseg_quantization\" must be an object");
    std::string method;
    opt(q, "method", method, file);
    if (method != "int8") fail(file, ": reasonseg_quantization method \"", method, "\" is not supported (int8)");
    int group = 0;
    opt(q, "group_size", group, file);
    if (!valid_group_size(group))
      fail(file, ": reasonseg_quantization group_size ", group, " is not one of 32, 64, 128, 256");
    c.stored_quantization_group = group;
  }
  return c;
}

void read_clip_tower_config(const std::string& tower_dir, LisaConfig& c) {
  const std::string file = (fs::path(tower_dir) / "config.json").string();
  json j = read_json(file);
  ClipVisionConfig v;
  if (j.contains("vision_config") && j["vision_config"].is_object()) read_vision(j["vision_config"], v, file);
  else read_vision(j, v, file);
  c.vision = v;
  c.has_vision_config = true;
  auto& p = c.clip_preprocess;
  p = ClipPreprocessConfig{};
  p.shortest_edge = p.crop_height = p.crop_width = v.image_size;
  const std::string pfile = (fs::path(tower_dir) / "preprocessor_config.json").string();
  if (!fs::exists(pfile)) return;
  json q = read_json(pfile);
  opt(q, "do_resize", p.do_resize, pfile);
  opt(q, "do_center_crop", p.do_center_crop, pfile);
  opt(q, "do_rescale", p.do_rescale, pfile);
  opt(q, "rescale_factor", p.rescale_factor, pfile);
  opt(q, "do_normalize", p.do_normalize, pfile);
  opt(q, "image_mean", p.image_mean, pfile);
  opt(q, "image_std", p.image_std, pfile);
  opt(q, "resample", p.resample, pfile);
  if (p.resample != 2 && p.resample != 3) fail(pfile, ": resample ", p.resample, " is not supported (2 bilinear, 3 bicubic)");
  if (q.contains("size")) {
    auto& s = q["size"];
    if (s.is_number_integer()) p.shortest_edge = s.get<int>();
    else if (s.is_object() && s.contains("shortest_edge")) opt(s, "shortest_edge", p.shortest_edge, pfile);
    else fail(pfile, ": \"size\" must be an integer or {\"shortest_edge\": N}");
  }
  if (q.contains("crop_size")) {
    auto& s = q["crop_size"];
    if (s.is_number_integer()) p.crop_height = p.crop_width = s.get<int>();
    else if (s.is_object()) { opt(s, "height", p.crop_height, pfile); opt(s, "width", p.crop_width, pfile); }
    else fail(pfile, ": \"crop_size\" must be an integer or {\"height\", \"width\"}");
  }
  positive(p.shortest_edge, "size", pfile);
  positive(p.crop_height, "crop_size", pfile);
  positive(p.crop_width, "crop_size", pfile);
}

nlohmann::json clip_vision_config_json(const ClipVisionConfig& c) {
  json j = {{"model_type", "clip_vision_model"}};
  vision_fields(c, [&](const char* key, const auto& member) { j[key] = member; });
  return j;
}

nlohmann::json lisa_config_json(const LisaConfig& c, const std::string& vision_tower) {
  json j = {{"architectures", {"LISAForCausalLM"}}, {"model_type", "llava"}, {"hidden_act", "silu"},
            {"mm_vision_tower", vision_tower}, {"vision_tower", vision_tower}, {"pretraining_tp", 1},
            {"tie_word_embeddings", false}, {"torch_dtype", "bfloat16"}, {"train_mask_decoder", true},
            {"transformers_version", "4.31.0"}, {"tune_mm_mlp_adapter", false}, {"use_cache", false},
            {"use_mm_proj", true}};
  lisa_fields(c, [&](const char* key, const auto& member) { j[key] = member; });
  // LISA v1 configs have no projector type; its presence marks a LLaVA-1.5 family (docs/models.md).
  if (!c.llava15) j.erase("mm_projector_type");
  if (!c.architecture.empty()) j["architectures"] = {c.architecture};
  j["rope_scaling"] = c.llm.rope_linear_factor == 1.0 ? json(nullptr)
                                                      : json{{"type", "linear"}, {"factor", c.llm.rope_linear_factor}};
  json sam;
  sam_fields(c.sam, [&](const char* key, const auto& member) { sam[key] = member; });
  j["sam_config"] = sam;
  if (c.stored_quantization_group > 0) j["reasonseg_quantization"] = quantization_config_json(c.stored_quantization_group);
  return j;
}

nlohmann::json quantization_config_json(int64_t group_size) { return {{"method", "int8"}, {"group_size", group_size}}; }

LisaConfig preset_config(const std::string& name) {
  LisaConfig c;
  c.source = "preset " + name;
  c.vision.hidden_size = 1024;
  c.vision.intermediate_size = 4096;
  c.vision.num_hidden_layers = 24;
  c.vision.num_attention_heads = 16;
  c.vision.patch_size = 14;
  c.vision.image_size = 224;
  c.has_vision_config = true;
  c.vision_tower = "openai/clip-vit-large-patch14";
  if (name == "lisa-7b") {
    c.llm.vocab_size = 32004;  // LISA-7B-v1: [SEG] = 32003
    c.llm.rms_norm_eps = 1e-6;
  } else if (name == "lisa-13b") {
    c.llm.hidden_size = 5120;
    c.llm.intermediate_size = 13824;
    c.llm.num_hidden_layers = 40;
    c.llm.num_attention_heads = c.llm.num_key_value_heads = 40;
    c.llm.vocab_size = 32003;
    c.llm.max_position_embeddings = 4096;
    c.llm.rms_norm_eps = 1e-5;
  } else if (name == "mid") {
    // The mid-size model of the CPU comparison: LLaMA 1024 x 8 layers, CLIP ViT-B/14, SAM ViT-B.
    c.llm.hidden_size = 1024;
    c.llm.intermediate_size = 2816;
    c.llm.num_hidden_layers = 8;
    c.llm.num_attention_heads = c.llm.num_key_value_heads = 8;
    c.llm.vocab_size = 32003;
    c.vision.hidden_size = 768;
    c.vision.intermediate_size = 3072;
    c.vision.num_hidden_layers = 12;
    c.vision.num_attention_heads = 12;
    c.sam.encoder_embed_dim = 768;
    c.sam.encoder_depth = 12;
    c.sam.encoder_num_heads = 12;
    c.sam.encoder_global_attn_indexes = {2, 5, 8, 11};
  } else if (name == "sesame-7b") {
    // SESAME-7B: LLaVA-1.5-7B (Vicuna-7B v1.5, CLIP ViT-L/14 at 336 px = 576 image tokens,
    // mlp2x_gelu projector) + SAM ViT-H; [SEG] = 32000, no <im_start>/<im_end>.
    c.architecture = "SESAMEForCausalLM";
    c.llava15 = true;
    c.mm_projector_type = "mlp2x_gelu";
    c.mm_use_im_start_end = false;
    c.vision.image_size = 336;
    c.vision_tower = "openai/clip-vit-large-patch14-336";
    c.llm.vocab_size = 32001;
    c.llm.max_position_embeddings = 4096;
    c.llm.rms_norm_eps = 1e-5;
  } else {
    fail("unknown preset '", name, "' (known: lisa-7b, lisa-13b, sesame-7b, mid)");
  }
  c.clip_preprocess.shortest_edge = c.clip_preprocess.crop_height = c.clip_preprocess.crop_width = c.vision.image_size;
  c.mm_hidden_size = c.vision.hidden_size;
  return c;
}

std::vector<std::string> preset_names() { return {"lisa-7b", "lisa-13b", "sesame-7b", "mid"}; }

std::map<std::string, int> preset_added_tokens(const LisaConfig& c) {
  if (c.llm.vocab_size == 32004)
    return {{"<im_patch>", 32000}, {"<im_start>", 32001}, {"<im_end>", 32002}, {"[SEG]", 32003}};
  if (c.llm.vocab_size == 32001) return {{"[SEG]", 32000}};  // SESAME
  return {{"[SEG]", 32000}, {"<im_start>", 32001}, {"<im_end>", 32002}};
}

}  // namespace reasonseg
