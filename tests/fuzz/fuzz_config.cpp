// config.json of a checkpoint (with sam_config and vision_config), then a CLIP tower's config.json
// and preprocessor_config.json: the input holds the model config, "\n----\n", the tower config.
#include <filesystem>
#include <nlohmann/json.hpp>

#include "config/config.hpp"
#include "fuzz_common.hpp"
#include "reasonseg/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto [model_cfg, tower_cfg] = rsfuzz::split2(data, size);
  const auto dir = rsfuzz::scratch() / "model";
  const auto tower = rsfuzz::scratch() / "tower";
  std::filesystem::create_directories(dir);
  std::filesystem::create_directories(tower);
  std::ofstream(dir / "config.json", std::ios::trunc) << model_cfg;
  std::ofstream(tower / "config.json", std::ios::trunc) << tower_cfg;
  std::ofstream(tower / "preprocessor_config.json", std::ios::trunc) << tower_cfg;
  try {
    reasonseg::LisaConfig c = reasonseg::read_lisa_config(dir.string());
    (void)c.image_tokens();
    (void)c.clip_layers_needed();
    (void)reasonseg::detect_family(c);
    reasonseg::read_clip_tower_config(tower.string(), c);
    (void)reasonseg::lisa_config_json(c, "tower").dump();
  } catch (const reasonseg::Error&) {
  }
  return 0;
}
