// Concurrency: four threads query one model at once, each with its own ImageContext, mixing first
// queries, follow-ups, teacher forcing, prompt-only SAM and a query that fails; every result must
// equal the same sequence run on one thread, and the failure must leave the context usable.
#include <catch2/catch.hpp>

#include <string>
#include <thread>
#include <vector>

#include "fixture.hpp"
#include "reasonseg/image_io.hpp"
#include "reasonseg/error.hpp"
#include "reasonseg/segmenter.hpp"

using namespace reasonseg;

namespace {

struct Outcome {
  std::vector<int64_t> ids;
  std::vector<cv::Mat> masks;
  std::string error;
};

// The same mixed sequence of calls for every thread, on its own image.
std::vector<Outcome> run_sequence(const ReasoningSegmenter& seg, const cv::Mat& image) {
  std::vector<Outcome> out;
  auto keep = [&](const SegmentResult& r) {
    Outcome o;
    o.ids = r.output_ids;
    for (auto& m : r.masks) o.masks.push_back(m.mask.clone());
    out.push_back(std::move(o));
  };
  const std::string rect = "Please segment the red rectangle in this image.";
  const std::string dog = "What is the dog in this image? Please output segmentation mask.";
  auto ctx = seg.encode_image(image);
  keep(seg.segment(ctx, rect));                                     // first query
  keep(seg.segment(ctx, dog));                                      // follow-up
  keep(seg.segment_teacher_forced(ctx, rect, "Sure, it is [SEG]."));  // teacher forcing
  keep(seg.segment_prompts(ctx, {PointPrompt{float(image.cols) / 3, float(image.rows) / 2, 1}}));
  QueryOptions bad;
  bad.points = {PointPrompt{1, 1, 7}};  // an invalid label: fails in the mask stage, after generation
  try {
    seg.segment_teacher_forced(ctx, rect, "Sure, it is [SEG].", bad);
    out.push_back({{}, {}, "no error"});
  } catch (const Error& e) {
    out.push_back({{}, {}, e.what()});
  }
  keep(seg.segment(ctx, rect));  // the context is still usable
  keep(seg.segment(ctx, dog));
  return out;
}

}  // namespace

TEST_CASE("4 threads x mixed queries on one model equal the sequential results", "[stress]") {
  SegmenterOptions o;
  o.model_dir = rstest::model_dir();
  o.device = Device::CPU;
  o.dtype = DType::Float32;
  o.max_new_tokens = 24;
  ReasoningSegmenter seg(o);
  const std::vector<std::string> files{"a_rect.png", "a_dog.png", "a_truck.png", "a_horn.png"};
  std::vector<cv::Mat> images;
  for (auto& f : files) images.push_back(read_image_file(rstest::data_dir() + "/tiny-lisa-a/images/" + f));
  std::vector<std::vector<Outcome>> sequential;
  for (auto& img : images) sequential.push_back(run_sequence(seg, img));

  for (int round = 0; round < 2; ++round) {
    std::vector<std::vector<Outcome>> parallel(images.size());
    std::vector<std::string> crashed(images.size());
    std::vector<std::thread> threads;
    for (size_t t = 0; t < images.size(); ++t)
      threads.emplace_back([&, t] {
        try {
          parallel[t] = run_sequence(seg, images[t]);
        } catch (const std::exception& e) {
          crashed[t] = e.what();
        }
      });
    for (auto& th : threads) th.join();
    for (size_t t = 0; t < images.size(); ++t) {
      INFO("round " << round << ", thread " << t << " (" << files[t] << ")");
      REQUIRE(crashed[t].empty());
      REQUIRE(parallel[t].size() == sequential[t].size());
      for (size_t q = 0; q < sequential[t].size(); ++q) {
        INFO("call " << q);
        const auto &a = parallel[t][q], &b = sequential[t][q];
        REQUIRE(a.error == b.error);
        REQUIRE(a.ids == b.ids);
        REQUIRE(a.masks.size() == b.masks.size());
        for (size_t m = 0; m < a.masks.size(); ++m) REQUIRE(cv::countNonZero(a.masks[m] != b.masks[m]) == 0);
      }
    }
  }
  REQUIRE_THAT(sequential[0][4].error, Catch::Contains("label must be 0 or 1"));
}
