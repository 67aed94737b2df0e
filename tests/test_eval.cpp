// Evaluation: LISA's rasterisation and metric rules on hand-made data with hand-worked numbers.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <opencv2/imgcodecs.hpp>

#include "reasonseg/error.hpp"
#include "reasonseg/eval.hpp"
#include "synthetic.hpp"

namespace fs = std::filesystem;
using namespace reasonseg;

TEST_CASE("ground truth: polygons drawn largest first, ignore = 255, flags skipped", "[eval]") {
  // Target 10x10 square and a smaller ignore square inside it: the ignore ends on top.
  std::vector<Polygon> ps = {{"target", {{0, 0}, {9, 0}, {9, 9}, {0, 9}}},
                             {"ignore", {{5, 0}, {9, 0}, {9, 9}, {5, 9}}}};
  cv::Mat gt = rasterize_ground_truth(ps, 12, 12);
  REQUIRE(cv::countNonZero(gt == 1) == 50);
  REQUIRE(cv::countNonZero(gt == 255) == 50);
  // Listing the small one first changes nothing: order comes from the drawn areas.
  std::swap(ps[0], ps[1]);
  REQUIRE(cv::countNonZero(rasterize_ground_truth(ps, 12, 12) != gt) == 0);
}

TEST_CASE("ground truth: equal areas keep numpy's argsort()[::-1] order", "[eval]") {
  // Same pixel count: the last-listed is drawn first, so the first-listed ends on top.
  std::vector<Polygon> ps = {{"ignore", {{0, 0}, {4, 0}, {4, 4}, {0, 4}}}, {"target", {{2, 2}, {6, 2}, {6, 6}, {2, 6}}}};
  cv::Mat gt = rasterize_ground_truth(ps, 8, 8);
  REQUIRE(int(gt.at<uint8_t>(3, 3)) == 255);
  REQUIRE(int(gt.at<uint8_t>(5, 5)) == 1);
  // Coordinates truncate toward zero, as np.int32 does: -0.9 becomes 0.
  std::vector<Polygon> neg = {{"target", {{-0.9, -0.9}, {2.9, -0.9}, {2.9, 2.9}, {-0.9, 2.9}}}};
  REQUIRE(cv::countNonZero(rasterize_ground_truth(neg, 5, 5)) == 9);
}

TEST_CASE("metrics: LISA's IoU, gIoU and cIoU rules, Acc@0.5", "[eval]") {
  cv::Mat gt = cv::Mat::zeros(10, 10, CV_8U), pred = cv::Mat::zeros(10, 10, CV_8U);
  gt(cv::Rect(0, 0, 10, 10)) = 1;
  pred(cv::Rect(0, 0, 5, 10)) = 255;
  IoUCounts half = intersection_union(pred, gt);
  REQUIRE(half.intersection == 50);
  REQUIRE(half.union_ == 100);
  REQUIRE(half.iou() == Approx(50.0 / (100 + 1e-5)).epsilon(1e-12));
  // Ignored pixels count in neither prediction nor target.
  cv::Mat gt2 = gt.clone();
  gt2(cv::Rect(5, 0, 5, 10)) = 255;
  cv::Mat full = cv::Mat(10, 10, CV_8U, cv::Scalar(1));
  IoUCounts ign = intersection_union(full, gt2);
  REQUIRE(ign.intersection == 50);
  REQUIRE(ign.union_ == 50);
  // Empty target and empty prediction: union 0 scores 1.
  IoUCounts none = intersection_union(cv::Mat::zeros(10, 10, CV_8U), cv::Mat::zeros(10, 10, CV_8U));
  REQUIRE(none.union_ == 0);
  REQUIRE(none.iou() == 1.0);
  MetricAccumulator acc;
  acc.add(half);
  acc.add(ign);
  acc.add(none);
  REQUIRE(acc.count() == 3);
  REQUIRE(acc.giou() == Approx((50.0 / (100 + 1e-5) + 50.0 / (50 + 1e-5) + 1.0) / (3 + 1e-5)).epsilon(1e-12));
  REQUIRE(acc.ciou() == Approx(100.0 / (150 + 1e-10)).epsilon(1e-12));
  REQUIRE(acc.acc_at_05() == Approx(2.0 / 3.0));  // 0.4999999 is not > 0.5
  REQUIRE_THROWS_AS(intersection_union(cv::Mat::zeros(3, 3, CV_8U), gt), Error);
}

TEST_CASE("ReasonSeg files: cp1252 fallback, flags, malformed samples named", "[eval]") {
  auto dir = rstest::make_synthetic_reasonseg("files");
  auto names = list_reasonseg_samples(dir);
  REQUIRE(names == std::vector<std::string>{"a_half", "b_ignore", "c_empty", "d_cp1252", "e_two_points", "f_no_image", "g_bad_json"});
  auto d = load_reasonseg_sample(dir, "d_cp1252");
  REQUIRE(d.texts[0] == "the caf\xC3\xA9 sign");  // é from the cp1252 byte 0xE9
  REQUIRE(d.polygons.size() == 1);                 // the "Flag" shape is skipped
  REQUIRE(d.is_sentence);
  REQUIRE(reasonseg_question(d.texts[0], true) == "the caf\xC3\xA9 sign Please output segmentation mask.");
  REQUIRE(reasonseg_question("the dog", false) == "What is the dog in this image? Please output segmentation mask.");
  REQUIRE_THROWS_WITH(load_reasonseg_sample(dir, "e_two_points"), Catch::Contains("e_two_points.json") && Catch::Contains("3"));
  REQUIRE_THROWS_WITH(load_reasonseg_sample(dir, "f_no_image"), Catch::Contains("f_no_image") && Catch::Contains("missing"));
  REQUIRE_THROWS_WITH(load_reasonseg_sample(dir, "g_bad_json"), Catch::Contains("g_bad_json.json"));
  auto a = load_reasonseg_sample(dir, "a_half");
  REQUIRE_NOTHROW(validate_polygons(a, 20, 20));
  a.polygons[0].points[0].x = 500;
  REQUIRE_THROWS_WITH(validate_polygons(a, 20, 20), Catch::Contains("far outside"));
}
