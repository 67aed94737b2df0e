// Model configuration read from LISA's config.json, the CLIP tower's config and built-in presets.
#pragma once
#include <array>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "reasonseg/options.hpp"
#include "reasonseg/tokenizer.hpp"

namespace reasonseg {

// CLIP vision tower (HF CLIPVisionConfig names and defaults).
struct ClipVisionConfig {
  int hidden_size = 768;
  int intermediate_size = 3072;
  int num_hidden_layers = 12;
  int num_attention_heads = 12;
  int num_channels = 3;
  int image_size = 224;
  int patch_size = 32;
  double layer_norm_eps = 1e-5;
  std::string hidden_act = "quick_gelu";
  int num_patches() const { return (image_size / patch_size) * (image_size / patch_size); }
};

// CLIPImageProcessor settings (preprocessor_config.json).
struct ClipPreprocessConfig {
  bool do_resize = true;
  int shortest_edge = 224;
  bool do_center_crop = true;
  int crop_height = 224, crop_width = 224;
  bool do_rescale = true;
  double rescale_factor = 1.0 / 255.0;
  bool do_normalize = true;
  std::array<double, 3> image_mean{0.48145466, 0.4578275, 0.40821073};
  std::array<double, 3> image_std{0.26862954, 0.26130258, 0.27577711};
  int resample = 3;  // PIL code: 2 bilinear, 3 bicubic
};

// HF LlamaConfig fields LISA uses.
struct LlamaConfig {
  int hidden_size = 4096;
  int intermediate_size = 11008;
  int num_hidden_layers = 32;
  int num_attention_heads = 32;
  int num_key_value_heads = 32;
  int vocab_size = 32000;
  int max_position_embeddings = 2048;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  double rope_linear_factor = 1.0;  // rope_scaling {"type": "linear"}
  int head_dim() const { return hidden_size / num_attention_heads; }
};

// SAM sizes: the arguments of segment-anything's _build_sam (ViT-H unless config says otherwise).
struct SamConfig {
  int encoder_embed_dim = 1280;
  int encoder_depth = 32;
  int encoder_num_heads = 16;
  std::vector<int> encoder_global_attn_indexes{7, 15, 23, 31};
  double encoder_layer_norm_eps = 1e-6;
  double encoder_mlp_ratio = 4.0;
  bool encoder_qkv_bias = true;
  bool encoder_use_rel_pos = true;
  int window_size = 14;
  int image_size = 1024;
  int patch_size = 16;
  int prompt_embed_dim = 256;
  int mask_in_chans = 16;
  int num_multimask_outputs = 3;
  int mask_decoder_transformer_depth = 2;
  int mask_decoder_num_heads = 8;
  int mask_decoder_mlp_dim = 2048;
  int iou_head_depth = 3;
  int iou_head_hidden_dim = 256;
  std::array<double, 3> pixel_mean{123.675, 116.28, 103.53};
  std::array<double, 3> pixel_std{58.395, 57.12, 57.375};
  int embedding_size() const { return image_size / patch_size; }
};

struct LisaConfig {
  LlamaConfig llm;
  ClipVisionConfig vision;
  ClipPreprocessConfig clip_preprocess;
  SamConfig sam;
  int mm_hidden_size = 1024;
  int mm_vision_select_layer = -2;
  std::string mm_vision_select_feature = "patch";  // or "cls_patch"
  std::string mm_projector_type = "linear";        // or "mlp2x_gelu"
  bool mm_use_im_start_end = true;
  int out_dim = 256;
  int bos_token_id = 1, eos_token_id = 2, pad_token_id = 0;
  std::string architecture;        // "architectures"[0] of config.json ("LISAForCausalLM", ...)
  bool llava15 = false;            // config.json has LLaVA-1.5's "mm_projector_type" key
  std::string vision_tower;        // as named in config.json
  bool has_vision_config = false;  // config.json embeds a "vision_config"
  std::string source;              // file the config came from (for messages)
  // Group size of the int8 weights a converted checkpoint stores (config.json's
  // "reasonseg_quantization": {"method": "int8", "group_size": G}); 0: none stored.
  int64_t stored_quantization_group = 0;

  // Number of LLM positions the image occupies.
  int image_tokens() const {
    return vision.num_patches() + (mm_vision_select_feature == "cls_patch" ? 1 : 0);
  }
  // Number of CLIP encoder layers that must run to produce the selected hidden state.
  int clip_layers_needed() const;
};

// The family a config describes, the rule of ModelFamily::Auto: "architectures" naming SESAME ->
// Sesame; else LLaVA-1.5's "mm_projector_type" key -> LisaPlus; else Lisa (docs/models.md).
ModelFamily detect_family(const LisaConfig& cfg);
// The template each family's own inference code renders (SESAME's demo: vicuna_v1; else llava_v1).
ConvTemplate default_conv_template(ModelFamily family);

// Reads config.json of a LISA model directory (sizes of every sub-model; SAM ViT-H when
// "sam_config" is absent). Throws reasonseg::Error naming file and key on bad input.
LisaConfig read_lisa_config(const std::string& model_dir);
// Reads a CLIP tower directory's config.json (CLIPVisionConfig, or CLIPConfig with
// "vision_config") and preprocessor_config.json into `cfg`.
void read_clip_tower_config(const std::string& tower_dir, LisaConfig& cfg);
// The writers of the same schema the readers use: config.json of a LISA checkpoint (with a
// "sam_config" object, so that SAM sizes other than ViT-H read back) and a CLIP tower's config.json.
nlohmann::json lisa_config_json(const LisaConfig& c, const std::string& vision_tower);
// config.json's "reasonseg_quantization" entry of an int8 checkpoint with this group size.
nlohmann::json quantization_config_json(int64_t group_size);
nlohmann::json clip_vision_config_json(const ClipVisionConfig& c);
// Built-in full-size configurations: "lisa-7b", "lisa-13b", "sesame-7b", "mid".
LisaConfig preset_config(const std::string& name);
std::vector<std::string> preset_names();
// Added tokens of the released checkpoint a preset imitates (LISA-7B-v1: [SEG] = 32003;
// LISA-13B-llama2-v1: [SEG] = 32000).
std::map<std::string, int> preset_added_tokens(const LisaConfig& c);

}  // namespace reasonseg
