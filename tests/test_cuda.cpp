// The CUDA-only paths: decoding from captured graphs, SAM's encoder on a second stream. They run
// when REASONSEG_TEST_DEVICE=cuda (scripts/gpu-check.sh); elsewhere each test says it was skipped
// and checks what the CPU does instead.
#include <catch2/catch.hpp>

#include "fixture.hpp"
#include "reasonseg/image_io.hpp"
#include "nn/cuda_support.hpp"
#include "reasonseg/error.hpp"
#include "reasonseg/segmenter.hpp"

using namespace reasonseg;

namespace {
SegmenterOptions cuda_options(DType dtype, bool graphs, bool overlap) {
  SegmenterOptions o;
  o.model_dir = rstest::model_dir();
  o.device = Device::CUDA;
  o.dtype = dtype;
  o.max_new_tokens = 32;
  o.cuda_graphs = graphs;
  o.overlap_sam_encoder = overlap;
  return o;
}

double iou(const cv::Mat& a, const cv::Mat& b) {
  double inter = cv::countNonZero(a & b), uni = cv::countNonZero(a | b);
  return uni == 0 ? 1.0 : inter / uni;
}

cv::Mat fixture_image(const std::string& file) {
  return read_image_file(rstest::data_dir() + "/tiny-lisa-a/images/" + file);
}

// The fixture's case whose answer holds two [SEG] (with this model and 32 new tokens).
std::string two_seg_instruction() {
  return rstest::read_json(rstest::case_dir("g2_two_seg_a_horn") + "/case.json")["instruction"];
}
}  // namespace

TEST_CASE("CPU: no graphs, side-stream work runs inline", "[cuda]") {
  REQUIRE_THROWS_AS(capture_cuda_graph(torch::kCPU, [] {}), Error);
  int runs = 0;
  auto work = run_on_side_stream(torch::kCPU, {}, [&] { ++runs; });
  REQUIRE(runs == 1);
  work->join();
  REQUIRE(work->elapsed_ms() >= 0);
}

TEST_CASE("CUDA graphs and the SAM stream give the answers and masks of plain launches", "[cuda]") {
  if (rstest::test_device() != Device::CUDA || !cuda_support_compiled()) {
    WARN("skipped: needs REASONSEG_TEST_DEVICE=cuda and a build with CUDA (scripts/gpu-check.sh runs it)");
    return;
  }
  const cv::Mat img = fixture_image("a_horn.png");
  for (DType dtype : {DType::Float32, DType::BFloat16}) {
    ReasoningSegmenter plain(cuda_options(dtype, false, false)), fast(cuda_options(dtype, true, true));
    auto c1 = plain.encode_image(img), c2 = fast.encode_image(img);
    QueryOptions q;
    auto a = plain.segment(c1, two_seg_instruction(), q), b = fast.segment(c2, two_seg_instruction(), q);
    INFO(to_string(dtype) << ": plain '" << a.text << "', graphs '" << b.text << "'");
    REQUIRE(a.output_ids == b.output_ids);
    REQUIRE(a.masks.size() == b.masks.size());
    REQUIRE(!b.masks.empty());
    for (size_t i = 0; i < a.masks.size(); ++i) REQUIRE(iou(a.masks[i].mask, b.masks[i].mask) >= 0.99);
    // A follow-up on the same context replays the graphs captured by the first query.
    auto a2 = plain.segment(c1, "What is it made of? Please output segmentation mask.", q);
    auto b2 = fast.segment(c2, "What is it made of? Please output segmentation mask.", q);
    REQUIRE(a2.output_ids == b2.output_ids);
    REQUIRE(b2.timings_ms.count("sam_encoder") == 0);  // encoded once, by the first query
  }
}

TEST_CASE("CUDA: the SAM encoder overlapped with the prefill gives the same image embedding", "[cuda]") {
  if (rstest::test_device() != Device::CUDA || !cuda_support_compiled()) {
    WARN("skipped: needs REASONSEG_TEST_DEVICE=cuda and a build with CUDA (scripts/gpu-check.sh runs it)");
    return;
  }
  const cv::Mat img = fixture_image("a_rect.png");
  ReasoningSegmenter serial(cuda_options(DType::Float32, false, false)), overlap(cuda_options(DType::Float32, false, true));
  auto c1 = serial.encode_image(img), c2 = overlap.encode_image(img);
  QueryOptions q;
  q.keep_logits = true;
  auto a = serial.segment_teacher_forced(c1, "What is the rectangle? Please output segmentation mask.", "Sure, [SEG].", q);
  auto b = overlap.segment_teacher_forced(c2, "What is the rectangle? Please output segmentation mask.", "Sure, [SEG].", q);
  REQUIRE(a.masks.size() == 1);
  REQUIRE(b.masks.size() == 1);
  REQUIRE(cv::norm(a.masks[0].logits, b.masks[0].logits, cv::NORM_INF) == 0.0);  // same kernels, other stream
  REQUIRE(b.timings_ms.at("sam_encoder") > 0);
}

TEST_CASE("int8 weights on CUDA (per-layer dequantization, graphs on) match int8 on the CPU", "[cuda][int8]") {
  if (rstest::test_device() != Device::CUDA || !cuda_support_compiled()) {
    WARN("skipped: needs REASONSEG_TEST_DEVICE=cuda and a build with CUDA (scripts/gpu-check.sh runs it)");
    return;
  }
  auto gpu = cuda_options(DType::BFloat16, true, true), cpu = gpu;
  gpu.quantize = cpu.quantize = Quantization::Int8;
  cpu.device = Device::CPU;
  ReasoningSegmenter g(gpu), c(cpu);
  REQUIRE(g.quantization() == Quantization::Int8);
  // Same int8 bytes on both devices: the model holds about half the LLM bytes of bf16.
  REQUIRE(g.weight_bytes() == c.weight_bytes());
  const cv::Mat img = fixture_image("a_horn.png");
  auto cg = g.encode_image(img), cc = c.encode_image(img);
  auto a = g.segment(cg, two_seg_instruction()), b = c.segment(cc, two_seg_instruction());
  // bf16 GEMMs of different libraries: the ids agree up to the first near-tie; masks of the same
  // answer overlap as bf16 CPU vs fp32 does.
  size_t same = 0;
  while (same < a.output_ids.size() && same < b.output_ids.size() && a.output_ids[same] == b.output_ids[same]) ++same;
  INFO("ids agree for " << same << " of " << a.output_ids.size());
  REQUIRE(same >= 4);
  if (a.output_ids == b.output_ids)
    for (size_t i = 0; i < a.masks.size(); ++i) REQUIRE(iou(a.masks[i].mask, b.masks[i].mask) >= 0.95);
}
