// int8 weights: the quantizer, the GEMV and tile kernels against plain LibTorch, converted
// checkpoints (identical to quantizing at load) and broken scale tensors.
#include <catch2/catch.hpp>
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "fixture.hpp"
#include "io/safetensors.hpp"
#include "nn/gemv_int8.hpp"
#include "nn/quantized_weight.hpp"
#include "reasonseg/error.hpp"
#include "reasonseg/image_io.hpp"
#include "reasonseg/segmenter.hpp"

using namespace reasonseg;
namespace fs = std::filesystem;

using rstest::error_of;
using rstest::run_cli;

namespace {
torch::Tensor reference_linear(const torch::Tensor& x, const QuantizedWeight& q) {
  return at::linear(x.to(torch::kFloat64), dequantize(q, torch::kFloat64));
}
}  // namespace

TEST_CASE("quantize_int8: per-row groups, error within half a step, zeros, NaN named, thread-independent", "[int8]") {
  torch::manual_seed(7);
  for (int64_t K : {40, 64, 200}) {
    for (int64_t G : {32, 64, 128}) {
      auto w = torch::randn({13, K}) * 0.05;
      w[3].zero_();
      auto q = quantize_int8(w.to(torch::kBFloat16), G, "w");
      const int64_t groups = (K + G - 1) / G;
      REQUIRE(q.scales.sizes().vec() == std::vector<int64_t>{13, groups});
      REQUIRE(q.data.scalar_type() == torch::kInt8);
      REQUIRE(q.data.abs().max().item<int>() <= 127);
      REQUIRE(q.scales[3].abs().max().item<float>() == 0.0f);
      auto wb = w.to(torch::kBFloat16).to(torch::kFloat32);
      auto err = (dequantize(q, torch::kFloat32) - wb).abs();
      auto step = q.scales.repeat_interleave(G, 1).narrow(1, 0, K);
      REQUIRE((err - step * 0.5001).max().item<float>() <= 1e-9f);
      // The largest value of each group is represented exactly (+-127 * scale).
      for (int64_t g = 0; g < groups; ++g) {
        auto blk = wb.narrow(1, g * G, std::min(G, K - g * G));
        REQUIRE((std::get<0>(blk.abs().max(1)) / 127 - q.scales.select(1, g)).abs().max().item<float>() < 1e-7f);
      }
    }
  }
  auto bad = torch::randn({4, 64});
  bad[2][5] = std::nan("");
  REQUIRE_THAT(error_of([&] { quantize_int8(bad, 64, "model.layers.0.mlp.up_proj.weight"); }),
               Catch::Contains("model.layers.0.mlp.up_proj.weight") && Catch::Contains("NaN"));
  REQUIRE_THAT(error_of([&] { quantize_int8(torch::randn({4, 64}), 48, "w"); }), Catch::Contains("48"));
  // Same bytes whatever the thread count: converting ahead and quantizing at load agree.
  auto big = torch::randn({300, 256});
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  auto q1 = quantize_int8(big, 64, "w");
  at::set_num_threads(std::max(2, threads));
  auto q2 = quantize_int8(big, 64, "w");
  at::set_num_threads(threads);
  REQUIRE(torch::equal(q1.data, q2.data));
  REQUIRE(torch::equal(q1.scales, q2.scales));
}

TEST_CASE("int8 linear: one token (GEMV) and several (bf16 tiles) against dequantized fp64, SIMD vs portable", "[int8][kernels]") {
  torch::manual_seed(11);
  for (int64_t K : {40, 112, 4096 + 24}) {
    for (int64_t N : {1, 5, 67, 4100}) {
      auto q = quantize_int8(torch::randn({N, K}) * 0.02, 64, "w");
      auto bias = torch::randn({N}) * 0.1;
      for (auto dt : {torch::kFloat32, torch::kBFloat16}) {
        auto x = torch::randn({1, 1, K}).to(dt);
        auto ref = reference_linear(x, q) + bias.to(torch::kFloat64);
        auto y = quantized_linear(x, q, &bias);
        REQUIRE(y.scalar_type() == dt);
        REQUIRE(y.sizes().vec() == std::vector<int64_t>{1, 1, N});
        // fp32: the AVX-512 kernel rounds x to int16 per group of 64 (<= 1/65534 of the group's
        // largest value), the portable one sums in fp32; bf16: the result's own rounding.
        const double tol = dt == torch::kFloat32 ? 1e-4 : 8e-3, tol_portable = dt == torch::kFloat32 ? 1e-5 : 8e-3;
        const double scale = ref.abs().max().item<double>() + 1e-6;
        INFO("K " << K << " N " << N << " dtype " << c10::toString(dt));
        REQUIRE((y.to(torch::kFloat64) - ref).abs().max().item<double>() <= tol * scale);
        auto yp = quantized_linear_portable(x, q, &bias);
        REQUIRE((yp.to(torch::kFloat64) - ref).abs().max().item<double>() <= tol_portable * scale);
      }
      // A prompt: dequantized bf16 tiles into LibTorch's GEMM, one rounding of each weight to bf16.
      auto xs = torch::randn({1, 9, K}).to(torch::kBFloat16);
      auto ys = quantized_linear(xs, q, nullptr);
      auto refs = reference_linear(xs, q);
      REQUIRE(ys.sizes().vec() == std::vector<int64_t>{1, 9, N});
      REQUIRE((ys.to(torch::kFloat64) - refs).abs().max().item<double>() <= 1.5e-2 * (refs.abs().max().item<double>() + 1e-6));
      REQUIRE((quantized_linear_portable(xs, q, nullptr).to(torch::kFloat64) - refs).abs().max().item<double>() <=
              1.5e-2 * (refs.abs().max().item<double>() + 1e-6));
    }
  }
  if (!int8_simd_available()) WARN("SKIPPED the AVX-512 int8 kernels: this CPU or build lacks AVX512-BF16; the portable path was tested");
}

namespace {
std::string tmpdir(const std::string& name) {
  auto d = fs::temp_directory_path() / ("reasonseg_int8_" + std::to_string(::getpid())) / name;
  fs::remove_all(d);
  fs::create_directories(d.parent_path());
  return d.string();
}
SegmenterOptions int8_options(const std::string& dir, bool quantize_at_load) {
  SegmenterOptions o;
  o.model_dir = dir;
  o.device = Device::CPU;
  o.dtype = DType::BFloat16;
  o.max_new_tokens = 32;
  if (quantize_at_load) o.quantize = Quantization::Int8;
  return o;
}
// The converted tiny model (once per test run).
const std::string& converted_model() {
  static const std::string dir = [] {
    auto d = tmpdir("tiny-lisa-a-int8");
    REQUIRE(run_cli("convert --quiet --model " + rstest::model_dir() + " --quantize int8 --out " + d) == 0);
    return d;
  }();
  return dir;
}
}  // namespace

TEST_CASE("a checkpoint converted to int8 ahead gives exactly the results of quantizing at load", "[int8]") {
  const std::string& dir = converted_model();
  auto st = SafetensorsFile(dir + "/model.safetensors");
  REQUIRE(st.find("model.layers.0.self_attn.q_proj.weight_int8") != nullptr);
  REQUIRE(st.find("model.layers.0.self_attn.q_proj.weight_scale") != nullptr);
  REQUIRE(st.find("lm_head.weight_int8") != nullptr);
  REQUIRE(st.find("model.layers.0.self_attn.q_proj.weight") == nullptr);
  REQUIRE(st.find("model.embed_tokens.weight") != nullptr);  // embeddings stay in their dtype
  REQUIRE(rstest::read_json(dir + "/config.json")["reasonseg_quantization"]["group_size"] == 64);

  ReasoningSegmenter at_load(int8_options(rstest::model_dir(), true)), ahead(int8_options(dir, false));
  REQUIRE(ahead.quantization() == Quantization::Int8);
  REQUIRE(ahead.weight_bytes() == at_load.weight_bytes());
  for (const char* c : {"g1_one_seg_a_rect", "g2_two_seg_a_horn"}) {
    auto cj = rstest::read_json(rstest::case_dir(c) + "/case.json");
    auto fx = rstest::read_json(rstest::data_dir() + "/tiny-lisa-a/fixture.json");
    std::string image;
    for (auto& fc : fx["cases"])
      if (fc["name"] == c) image = fc["image"];
    cv::Mat img = read_image_file(rstest::data_dir() + "/tiny-lisa-a/" + image);
    auto ca = at_load.encode_image(img), cb = ahead.encode_image(img);
    auto a = at_load.segment(ca, cj["instruction"].get<std::string>());
    auto b = ahead.segment(cb, cj["instruction"].get<std::string>());
    REQUIRE(a.output_ids == b.output_ids);
    REQUIRE(a.masks.size() == b.masks.size());
    for (size_t i = 0; i < a.masks.size(); ++i) {
      REQUIRE(cv::countNonZero(a.masks[i].mask != b.masks[i].mask) == 0);
      REQUIRE(a.masks[i].score == b.masks[i].score);
    }
  }
  // Converting an int8 checkpoint again is refused.
  REQUIRE(run_cli("convert --quiet --model " + dir + " --quantize int8 --out " + tmpdir("twice") + " 2> /dev/null") != 0);
}

TEST_CASE("broken int8 checkpoints: scales of the wrong shape, dtype or sign, NaN, missing, undeclared group", "[int8]") {
  const std::string& good = converted_model();
  const std::string key = "model.layers.1.mlp.down_proj.weight";
  // Copies the converted model with `edit` applied to its tensors (and to its config).
  auto broken = [&](const std::string& name, const std::function<void(std::map<std::string, torch::Tensor>&)>& edit,
                    const std::function<void(nlohmann::json&)>& edit_config = nullptr) {
    auto d = tmpdir(name);
    fs::copy(good, d, fs::copy_options::recursive);
    std::map<std::string, torch::Tensor> t;
    {
      SafetensorsFile f(d + "/model.safetensors");
      for (auto& s : f.tensors()) t[s.key] = f.view(s).clone();
    }
    edit(t);
    write_safetensors(d + "/model.safetensors", t);
    if (edit_config) {
      auto j = rstest::read_json(d + "/config.json");
      edit_config(j);
      std::ofstream(d + "/config.json") << j.dump(2);
    }
    return error_of([&] { ReasoningSegmenter s(int8_options(d, false)); });
  };
  auto wrong_shape = broken("shape", [&](auto& t) { t[key + "_scale"] = t[key + "_scale"].narrow(1, 0, 1).clone(); });
  REQUIRE_THAT(wrong_shape, Catch::Contains("model.safetensors") && Catch::Contains(key) && Catch::Contains("scales have shape"));
  auto nan = broken("nan", [&](auto& t) { t[key + "_scale"][0][0] = std::nan(""); });
  REQUIRE_THAT(nan, Catch::Contains(key) && Catch::Contains("finite"));
  auto negative = broken("negative", [&](auto& t) { t[key + "_scale"][3][1] = -0.5; });
  REQUIRE_THAT(negative, Catch::Contains(key) && Catch::Contains("-0.5"));
  auto half = broken("half", [&](auto& t) { t[key + "_scale"] = t[key + "_scale"].to(torch::kFloat16); });
  REQUIRE_THAT(half, Catch::Contains(key) && Catch::Contains("F32"));
  auto int16 = broken("data", [&](auto& t) { t[key + "_int8"] = t[key + "_int8"].to(torch::kInt16); });
  REQUIRE_THAT(int16, Catch::Contains(key) && Catch::Contains("int8 weights stored as"));
  auto missing = broken("missing", [&](auto& t) { t.erase(key + "_scale"); });
  REQUIRE_THAT(missing, Catch::Contains(key + "_scale") && Catch::Contains("missing"));
  auto undeclared = broken("undeclared", [](auto&) {}, [](nlohmann::json& j) { j.erase("reasonseg_quantization"); });
  REQUIRE_THAT(undeclared, Catch::Contains("reasonseg_quantization"));
  auto group = broken("group", [](auto&) {}, [](nlohmann::json& j) { j["reasonseg_quantization"]["group_size"] = 128; });
  REQUIRE_THAT(group, Catch::Contains(key) || Catch::Contains("scales have shape"));
  auto method = broken("method", [](auto&) {}, [](nlohmann::json& j) { j["reasonseg_quantization"]["method"] = "q4"; });
  REQUIRE_THAT(method, Catch::Contains("config.json") && Catch::Contains("q4"));
}
