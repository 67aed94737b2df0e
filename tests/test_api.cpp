// The public API: model/session split, KV-cache reuse, .bin checkpoints, prompts, bad input.
#include <catch2/catch.hpp>
#include <algorithm>
#include <filesystem>
#include <limits>
#include <fstream>
#include <unistd.h>  // getpid
#include <opencv2/imgproc.hpp>
#include <thread>

#include "fixture.hpp"
#include "reasonseg/image_io.hpp"
#include "io/safetensors.hpp"
#include "reasonseg/process.hpp"
#include "reasonseg/segmenter.hpp"

namespace fs = std::filesystem;
using namespace reasonseg;

namespace {

SegmenterOptions fp32_options(const std::string& dir) {
  SegmenterOptions o;
  o.model_dir = dir;
  o.device = Device::CPU;
  o.dtype = DType::Float32;
  o.max_new_tokens = 32;
  return o;
}

const ReasoningSegmenter& model() {
  static ReasoningSegmenter seg(fp32_options(rstest::model_dir()));
  return seg;
}

cv::Mat case_image(const std::string& file) { return reasonseg::read_image_file(rstest::data_dir() + "/tiny-lisa-a/images/" + file); }

const char* kRectPrompt = "Please segment the red rectangle in this image.";

std::string temp_copy_of_model(const std::string& tag) {
  auto d = fs::temp_directory_path() / ("reasonseg_api_" + tag + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::copy(rstest::model_dir(), d, fs::copy_options::recursive);
  for (auto& e : fs::recursive_directory_iterator(d)) fs::permissions(e.path(), fs::perms::owner_write, fs::perm_options::add);
  return d.string();
}

std::string load_error(const SegmenterOptions& o) {
  try {
    ReasoningSegmenter s(o);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("a follow-up question reuses the image and KV prefix and gives the same answer", "[api]") {
  auto& seg = model();
  auto ctx = seg.encode_image(case_image("a_dog.png"));
  auto first = seg.segment(ctx, "What is the dog in this image? Please output segmentation mask.");
  auto second = seg.segment(ctx, kRectPrompt);
  auto fresh_ctx = seg.encode_image(case_image("a_dog.png"));
  auto fresh = seg.segment(fresh_ctx, kRectPrompt);
  REQUIRE(second.output_ids == fresh.output_ids);
  REQUIRE(second.masks.size() == fresh.masks.size());
  for (size_t i = 0; i < fresh.masks.size(); ++i) REQUIRE(cv::countNonZero(second.masks[i].mask != fresh.masks[i].mask) == 0);
  // The follow-up neither re-encodes the image nor re-runs the shared prompt prefix.
  REQUIRE(second.timings_ms.count("clip") == 0);
  REQUIRE(second.prefill_tokens < fresh.prefill_tokens - 256);
  REQUIRE(first.timings_ms.count("clip") == 1);
}

TEST_CASE("new images reuse the keys/values of the text before the image, the same on every model", "[api]") {
  // That the split prefill equals the reference's single forward is the parity test's job (it runs
  // this path); here: the prefix is reused from the first query on, in fp32 and bf16, and a model
  // whose cache was filled by other images answers exactly as a fresh one.
  auto dtype = GENERATE(DType::Float32, DType::BFloat16);
  auto opt = fp32_options(rstest::model_dir());
  opt.dtype = dtype;
  ReasoningSegmenter seg(opt);  // its own model: the prefix cache starts empty
  for (const char* file : {"a_rect.png", "a_dog.png", "a_rect.png"}) {
    ReasoningSegmenter fresh_model(opt);
    auto fresh_ctx = fresh_model.encode_image(case_image(file));
    auto fresh = fresh_model.segment(fresh_ctx, kRectPrompt);
    auto ctx = seg.encode_image(case_image(file));
    auto r = seg.segment(ctx, kRectPrompt);
    const auto image_at = std::find(r.input_ids.begin(), r.input_ids.end(), -200) - r.input_ids.begin();
    REQUIRE(image_at == 35);  // BOS, the system prompt, "USER:" and <im_start>
    const int64_t positions = int64_t(r.input_ids.size()) - 1 + 256;  // the image token becomes 256
    REQUIRE(r.prefill_tokens == positions - image_at);
    REQUIRE(fresh.prefill_tokens == positions - image_at);
    REQUIRE(r.output_ids == fresh.output_ids);
    REQUIRE(r.masks.size() == fresh.masks.size());
    for (size_t i = 0; i < r.masks.size(); ++i) {
      REQUIRE(cv::countNonZero(r.masks[i].mask != fresh.masks[i].mask) == 0);
      REQUIRE(r.masks[i].score == fresh.masks[i].score);
    }
  }
}

TEST_CASE("threads with their own contexts query one model at once and get the sequential answers", "[api]") {
  ReasoningSegmenter seg(fp32_options(rstest::model_dir()));  // fresh: the threads race for the prefix cache
  const std::vector<std::string> files{"a_rect.png", "a_dog.png", "a_truck.png"};
  std::vector<SegmentResult> got(files.size());
  std::vector<std::string> errors(files.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < files.size(); ++i)
    threads.emplace_back([&, i] {
      try {
        auto ctx = seg.encode_image(case_image(files[i]));
        got[i] = seg.segment(ctx, kRectPrompt);
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    });
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < files.size(); ++i) {
    REQUIRE(errors[i].empty());
    auto want = model().segment(case_image(files[i]), kRectPrompt);
    REQUIRE(got[i].output_ids == want.output_ids);
    REQUIRE(got[i].masks.size() == want.masks.size());
    for (size_t m = 0; m < want.masks.size(); ++m)
      REQUIRE(cv::countNonZero(got[i].masks[m].mask != want.masks[m].mask) == 0);
  }
}

TEST_CASE("NaN weights are errors naming the stage, never empty masks or <unk> answers", "[api]") {
  auto with_nan = [](const std::string& tag, const std::string& key) {
    auto d = temp_copy_of_model(tag);
    auto t = rstest::read_tensors(d + "/model.safetensors");
    REQUIRE(t.count(key));
    t[key].view(-1)[0] = std::numeric_limits<float>::quiet_NaN();
    write_safetensors(d + "/model.safetensors", t);
    return d;
  };
  // By default the loader reads every weight and names the bad one.
  const auto lm_head_nan = with_nan("nan_lm_head", "lm_head.weight");
  REQUIRE_THAT(load_error(fp32_options(lm_head_nan)), Catch::Contains("'lm_head.weight'") && Catch::Contains("NaN"));
  // Without that scan (or when a run overflows), the query stops at the first non-finite stage.
  auto unchecked = [](const std::string& dir) {
    auto o = fp32_options(dir);
    o.check_finite_weights = false;
    return o;
  };
  {
    ReasoningSegmenter seg(unchecked(lm_head_nan));
    REQUIRE_THROWS_WITH(seg.segment(case_image("a_rect.png"), kRectPrompt), Catch::Contains("non-finite") && Catch::Contains("logits"));
  }
  {
    ReasoningSegmenter seg(unchecked(with_nan("nan_fcs", "model.text_hidden_fcs.0.0.weight")));
    REQUIRE_THROWS_WITH(seg.segment(case_image("a_rect.png"), kRectPrompt),
                        Catch::Contains("non-finite") && Catch::Contains("[SEG] embeddings"));
    // A failed query leaves the context usable: teacher forcing without [SEG] needs no embedding.
    auto ctx = seg.encode_image(case_image("a_rect.png"));
    REQUIRE_THROWS_AS(seg.segment(ctx, kRectPrompt), Error);
    REQUIRE(seg.segment_teacher_forced(ctx, kRectPrompt, "It is red.").masks.empty());
  }
}

TEST_CASE("zero [SEG] is an explicit no-target result; masks carry score, area and box", "[api]") {
  auto& seg = model();
  auto dog = seg.segment(case_image("a_dog.png"), "What is the dog in this image? Please output segmentation mask.");
  REQUIRE_FALSE(dog.has_target());
  REQUIRE(dog.stopped_by == StopReason::MaxNewTokens);
  auto rect = seg.segment(case_image("a_rect.png"), kRectPrompt);
  REQUIRE(rect.has_target());
  REQUIRE(rect.stopped_by == StopReason::Eos);
  auto& m = rect.masks[0];
  REQUIRE(m.mask.type() == CV_8U);
  REQUIRE(m.mask.size() == cv::Size(331, 197));
  REQUIRE(m.area == cv::countNonZero(m.mask));
  REQUIRE(m.bbox == cv::boundingRect(m.mask));
  REQUIRE(m.score == Approx(0.14174538850784302).margin(2e-4));
  REQUIRE(rect.text.find("[SEG]") != std::string::npos);
}

TEST_CASE("the release-layout .bin checkpoint gives the same answer and masks", "[api]") {
  ReasoningSegmenter bin(fp32_options(rstest::data_dir() + "/tiny-lisa-a-bin"));
  auto a = bin.segment(case_image("a_rect.png"), kRectPrompt);
  auto b = model().segment(case_image("a_rect.png"), kRectPrompt);
  REQUIRE(a.output_ids == b.output_ids);
  REQUIRE(a.masks.size() == 1);
  REQUIRE(cv::countNonZero(a.masks[0].mask != b.masks[0].mask) == 0);
}

TEST_CASE("point and box prompts segment without the language model", "[api]") {
  auto& seg = model();
  auto ctx = seg.encode_image(case_image("a_truck.png"));
  auto r = seg.segment_prompts(ctx, {PointPrompt{100, 80, 1}});
  REQUIRE(r.masks.size() == 1);
  REQUIRE(r.masks[0].mask.size() == cv::Size(256, 171));
  BoxPrompt box{10, 10, 200, 150};
  auto rb = seg.segment_prompts(ctx, {}, &box);
  REQUIRE(rb.masks.size() == 1);
  REQUIRE(cv::countNonZero(rb.masks[0].mask != r.masks[0].mask) > 0);  // the prompt matters
  REQUIRE_THROWS_AS(seg.segment_prompts(ctx, {}), Error);
}

TEST_CASE("bad options and bad files are Errors that name the culprit", "[api]") {
  SECTION("missing model directory") {
    REQUIRE_THAT(load_error(fp32_options("/nonexistent/model")), Catch::Contains("/nonexistent/model"));
  }
  SECTION("broken config.json") {
    auto d = temp_copy_of_model("json");
    std::ofstream(d + "/config.json") << "{\"hidden_size\": 40,";
    REQUIRE_THAT(load_error(fp32_options(d)), Catch::Contains("config.json") && Catch::Contains("invalid JSON"));
  }
  SECTION("config sizes that do not match the weights") {
    auto d = temp_copy_of_model("shape");
    auto j = rstest::read_json(d + "/config.json");
    j["intermediate_size"] = 100;
    std::ofstream(d + "/config.json") << j.dump();
    REQUIRE_THAT(load_error(fp32_options(d)), Catch::Contains("mlp.gate_proj.weight") && Catch::Contains("shape"));
  }
  SECTION("a missing tensor") {
    auto d = temp_copy_of_model("missing");
    auto t = rstest::read_tensors(d + "/model.safetensors");
    t.erase("model.norm.weight");
    write_safetensors(d + "/model.safetensors", t);
    REQUIRE_THAT(load_error(fp32_options(d)), Catch::Contains("'model.norm.weight'") && Catch::Contains("missing"));
  }
  SECTION("a truncated weights file") {
    auto d = temp_copy_of_model("trunc");
    fs::resize_file(d + "/model.safetensors", fs::file_size(d + "/model.safetensors") - 1000);
    REQUIRE_THAT(load_error(fp32_options(d)), Catch::Contains("model.safetensors"));
  }
  SECTION("no CLIP tower anywhere") {
    auto d = temp_copy_of_model("tower");
    fs::remove_all(d + "/clip-vit-tiny-a");
    auto t = rstest::read_tensors(d + "/model.safetensors");
    for (auto it = t.begin(); it != t.end();) it = it->first.find("vision_tower") != std::string::npos ? t.erase(it) : std::next(it);
    write_safetensors(d + "/model.safetensors", t);
    REQUIRE_THAT(load_error(fp32_options(d)), Catch::Contains("--vision-tower") && Catch::Contains("clip-vit-tiny-a"));
  }
  SECTION("an image over max_image_pixels") {
    auto o = fp32_options(rstest::model_dir());
    o.max_image_pixels = 1000;
    ReasoningSegmenter seg(o);
    REQUIRE_THROWS_WITH(seg.encode_image(case_image("a_dog.png")), Catch::Contains("max_image_pixels") && Catch::Contains("1000"));
  }
  SECTION("bad option values") {
    ProcessSettings ps;
    ps.threads = 100000;  // rejected before anything changes
    REQUIRE_THROWS_WITH(configure_process(ps), Catch::Contains("threads") && Catch::Contains("100000"));
    REQUIRE_THROWS_WITH(parse_dtype("fp8"), Catch::Contains("fp8"));
  }
}

TEST_CASE("bad queries are Errors, not crashes", "[api]") {
  auto& seg = model();
  REQUIRE_THROWS_WITH(seg.encode_image(cv::Mat()), Catch::Contains("empty"));
  ImageContext empty;
  REQUIRE_THROWS_AS(seg.segment(empty, "x"), Error);
  auto ctx = seg.encode_image(case_image("a_dog.png"));
  std::string huge;
  for (int i = 0; i < 3000; ++i) huge += "dog ";
  REQUIRE_THROWS_WITH(seg.segment(ctx, huge), Catch::Contains("context"));
  // The context still works after a refused query.
  REQUIRE_NOTHROW(seg.segment(ctx, "Where is it?", QueryOptions{2}));
}
