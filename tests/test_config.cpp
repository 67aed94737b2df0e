// The config schema: what convert writes reads back to the same configuration, for every preset;
// numbers that do not fit are errors.
#include <catch2/catch.hpp>
#include <unistd.h>  // getpid

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "config/config.hpp"
#include "reasonseg/error.hpp"
#include "reasonseg/segmenter.hpp"
#include "util/error.hpp"

using namespace reasonseg;
namespace fs = std::filesystem;

namespace {
std::string temp_dir(const std::string& tag) {
  auto d = fs::temp_directory_path() / ("reasonseg_config_" + tag + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d / "tower");
  return d.string();
}
}  // namespace

TEST_CASE("every preset's config.json and CLIP config read back to the same configuration", "[config]") {
  for (const auto& name : preset_names()) {
    INFO(name);
    const LisaConfig c = preset_config(name);
    const std::string d = temp_dir(name);
    std::ofstream(d + "/config.json") << lisa_config_json(c, "tower").dump(2);
    std::ofstream(d + "/tower/config.json") << clip_vision_config_json(c.vision).dump(2);
    LisaConfig r = read_lisa_config(d);
    read_clip_tower_config(d + "/tower", r);
    REQUIRE(lisa_config_json(r, "tower") == lisa_config_json(c, "tower"));
    REQUIRE(clip_vision_config_json(r.vision) == clip_vision_config_json(c.vision));
    REQUIRE(r.sam.encoder_embed_dim == c.sam.encoder_embed_dim);  // mid is SAM ViT-B: no longer read back as ViT-H
    REQUIRE(r.sam.encoder_global_attn_indexes == c.sam.encoder_global_attn_indexes);
    fs::remove_all(d);
  }
}

TEST_CASE("config numbers that do not fit their field are errors naming the field", "[config]") {
  const std::string d = temp_dir("range");
  auto j = lisa_config_json(preset_config("mid"), "tower");
  auto error_for = [&](const std::string& key, const nlohmann::json& value) {
    auto k = j;
    k[key] = value;
    std::ofstream(d + "/config.json") << k.dump();
    try {
      read_lisa_config(d);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  REQUIRE_THAT(error_for("num_hidden_layers", 4294967298ull), Catch::Contains("num_hidden_layers") && Catch::Contains("range"));
  REQUIRE_THAT(error_for("hidden_size", -5000000000ll), Catch::Contains("hidden_size") && Catch::Contains("range"));
  REQUIRE_THAT(error_for("vocab_size", 3.5), Catch::Contains("vocab_size") && Catch::Contains("integer"));
  fs::remove_all(d);
}

TEST_CASE("error messages show untrusted bytes escaped: invalid UTF-8 and control characters", "[config][hostile]") {
  using reasonseg::printable;
  REQUIRE(printable("plain: é, 世界, 🦙\n\ttab") == "plain: é, 世界, 🦙\n\ttab");
  REQUIRE(printable(std::string("a\xff" "b")) == "a\\xffb");
  REQUIRE(printable("\x1b[31mred") == "\\x1b[31mred");               // a terminal escape sequence
  REQUIRE(printable(std::string("x\0y", 3)) == "x\\x00y");
  REQUIRE(printable("\xC0\xAF") == "\\xc0\\xaf");                    // overlong '/'
  REQUIRE(printable("\xED\xA0\x80") == "\\xed\\xa0\\x80");           // a UTF-16 surrogate
  REQUIRE(printable("\xE4\xB8") == "\\xe4\\xb8");                    // cut short
  // A model directory named with such bytes: the message names it, escaped.
  reasonseg::SegmenterOptions o;
  o.model_dir = "/nonexistent/\xff\x1b[2Jdir";
  try {
    reasonseg::ReasoningSegmenter s(o);
    FAIL("no error");
  } catch (const reasonseg::Error& e) {
    const std::string m = e.what();
    REQUIRE(m.find("/nonexistent/\\xff\\x1b[2Jdir") != std::string::npos);
    REQUIRE(m.find('\x1b') == std::string::npos);
  }
}
