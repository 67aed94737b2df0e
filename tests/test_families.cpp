// The model families: detection from the checkpoint, each family's template, text, mask and presence
// rules, LISA++'s task sentences, the sesame-7b preset. (Stage-by-stage parity: test_parity.cpp.)
#include <catch2/catch.hpp>

#include <opencv2/core.hpp>

#include "config/config.hpp"
#include "fixture.hpp"
#include "reasonseg/image_io.hpp"
#include "reasonseg/overlay.hpp"
#include "reasonseg/prompts.hpp"
#include "reasonseg/segmenter.hpp"

using namespace reasonseg;

namespace {

SegmenterOptions fixture_options(const std::string& fixture) {
  SegmenterOptions o;
  o.model_dir = rstest::fixture_model_dir(fixture);
  o.device = Device::CPU;
  o.dtype = DType::Float32;
  o.max_new_tokens = 32;
  return o;
}

cv::Mat fixture_image(const std::string& fixture, const std::string& file) {
  return read_image_file(rstest::data_dir() + "/" + fixture + "/images/" + file);
}

}  // namespace

TEST_CASE("the family is read from the checkpoint's config and can be forced", "[families]") {
  REQUIRE(ReasoningSegmenter(fixture_options("tiny-lisa-a")).family() == ModelFamily::Lisa);
  ReasoningSegmenter sesame(fixture_options("tiny-sesame-a"));
  REQUIRE(sesame.family() == ModelFamily::Sesame);
  REQUIRE(ReasoningSegmenter(fixture_options("tiny-lisapp-a")).family() == ModelFamily::LisaPlus);
  // Each family's template: SESAME's demo renders vicuna_v1 ("curious user").
  REQUIRE(sesame.prompt_text("q").rfind("A chat between a curious user", 0) == 0);
  auto forced = fixture_options("tiny-sesame-a");
  forced.family = ModelFamily::Lisa;
  ReasoningSegmenter as_lisa(forced);
  REQUIRE(as_lisa.family() == ModelFamily::Lisa);
  REQUIRE(as_lisa.prompt_text("q").rfind("A chat between a curious human", 0) == 0);
  forced.family = ModelFamily::Auto;
  forced.conv_template = "llava_v1";  // an explicit template wins over the family's
  REQUIRE(ReasoningSegmenter(forced).prompt_text("q").rfind("A chat between a curious human", 0) == 0);
  REQUIRE(parse_model_family("lisa++") == ModelFamily::LisaPlus);
  REQUIRE_THROWS_AS(parse_model_family("llava"), Error);
  REQUIRE(to_string(ModelFamily::Sesame) == "sesame");
}

TEST_CASE("detection rule: architectures, then LLaVA-1.5's projector key; writers keep v1 configs v1", "[families]") {
  LisaConfig v1 = read_lisa_config(rstest::model_dir());
  REQUIRE(detect_family(v1) == ModelFamily::Lisa);
  // A LISA v1 config written back (reasonseg convert) gains no projector type and stays LISA v1.
  auto j = lisa_config_json(v1, "tower");
  REQUIRE_FALSE(j.contains("mm_projector_type"));
  LisaConfig pp = read_lisa_config(rstest::data_dir() + "/tiny-lisapp-a");
  REQUIRE(pp.llava15);
  REQUIRE(pp.mm_projector_type == "mlp2x_gelu");
  REQUIRE(detect_family(pp) == ModelFamily::LisaPlus);
  REQUIRE(lisa_config_json(pp, "tower")["mm_projector_type"] == "mlp2x_gelu");
  LisaConfig sa = read_lisa_config(rstest::data_dir() + "/tiny-sesame-a");
  REQUIRE(sa.architecture == "SESAMEForCausalLM");
  REQUIRE(detect_family(sa) == ModelFamily::Sesame);
  REQUIRE(lisa_config_json(sa, "tower")["architectures"][0] == "SESAMEForCausalLM");
  // The preset of LLaVA-1.5-7B's shape: CLIP-L/336 = 576 image tokens, mlp2x_gelu, SESAME.
  LisaConfig s7 = preset_config("sesame-7b");
  REQUIRE(detect_family(s7) == ModelFamily::Sesame);
  REQUIRE(s7.image_tokens() == 576);
  REQUIRE(s7.mm_projector_type == "mlp2x_gelu");
  REQUIRE(preset_added_tokens(s7).at("[SEG]") == 32000);
}

TEST_CASE("SESAME: no [SEG] is 'no target'; the answer without special tokens; the overlay says so", "[families]") {
  ReasoningSegmenter seg(fixture_options("tiny-sesame-a"));
  auto cj = rstest::read_json(rstest::case_dir("g2_no_seg_sa_truck", "tiny-sesame-a") + "/case.json");
  cv::Mat img = fixture_image("tiny-sesame-a", "sa_truck.png");
  auto ctx = seg.encode_image(img);
  auto r = seg.segment(ctx, cj["instruction"].get<std::string>());
  REQUIRE_FALSE(r.has_target());
  REQUIRE(r.masks.empty());
  REQUIRE(r.text == cj["text_output"].get<std::string>());
  // The picture of a result without target: the image untouched, a legend that says "no target".
  cv::Mat pic = draw_overlay(img, ColorOrder::BGR, r, r.text);
  REQUIRE(pic.cols == img.cols);
  REQUIRE(pic.rows > img.rows);
  REQUIRE(cv::countNonZero(pic.rowRange(0, img.rows).reshape(1) != img.reshape(1)) == 0);

  auto cj1 = rstest::read_json(rstest::case_dir("g1_one_seg_sa_rect", "tiny-sesame-a") + "/case.json");
  auto ctx1 = seg.encode_image(fixture_image("tiny-sesame-a", "sa_rect.png"));
  auto r1 = seg.segment(ctx1, cj1["instruction"].get<std::string>());
  REQUIRE(r1.has_target());
  REQUIRE(r1.masks.size() == 1);
  REQUIRE(r1.text == cj1["text_output"].get<std::string>());  // "parse [SEG] ..": EOS dropped, [SEG] kept
  REQUIRE(r1.text.find("</s>") == std::string::npos);
}

TEST_CASE("LISA++: task sentences as its code appends them; several [SEG], one mask each", "[families]") {
  auto cj = rstest::read_json(rstest::case_dir("g1_two_seg_inst_pa_dog", "tiny-lisapp-a") + "/case.json");
  REQUIRE(cj["suffix_name"] == "DEFAULT_INST_CONV_SEG");
  REQUIRE(std::string(lisa_plus_suffix(LisaPlusTask::InstanceConvSeg)) == cj["suffix"].get<std::string>());
  REQUIRE(lisa_plus_prompt(cj["instruction_base"], LisaPlusTask::InstanceConvSeg) == cj["instruction"].get<std::string>());
  REQUIRE(parse_lisa_plus_task("inst-seg") == LisaPlusTask::InstanceSeg);
  REQUIRE_THROWS_AS(parse_lisa_plus_task("panoptic"), Error);
  for (auto t : {LisaPlusTask::SemanticSeg, LisaPlusTask::InstanceSeg, LisaPlusTask::SemanticConvSeg,
                 LisaPlusTask::InstanceConvSeg, LisaPlusTask::PureConv, LisaPlusTask::ChainOfThought})
    REQUIRE(lisa_plus_suffix(t)[0] == ' ');

  ReasoningSegmenter seg(fixture_options("tiny-lisapp-a"));
  auto ctx = seg.encode_image(fixture_image("tiny-lisapp-a", "pa_dog.png"));
  auto r = seg.segment(ctx, lisa_plus_prompt(cj["instruction_base"], LisaPlusTask::InstanceConvSeg));
  REQUIRE(r.output_ids == cj["generated_ids"].get<std::vector<int64_t>>());
  REQUIRE(r.masks.size() == 2);
  REQUIRE(r.has_target());
}
