// Image inputs: CLIP and SAM tensors of every fixture image, bit-exact Pillow resizing.
#include <catch2/catch.hpp>

#include "config/config.hpp"
#include "fixture.hpp"
#include "image/image_files.hpp"
#include "image/pillow_resample.hpp"
#include "image/preprocess.hpp"
#include "reasonseg/error.hpp"
#include "reasonseg/image.hpp"

using namespace reasonseg;

TEST_CASE("CLIP and SAM inputs equal the reference for every fixture case", "[preprocess]") {
  LisaConfig cfg = read_lisa_config(rstest::model_dir());
  read_clip_tower_config(rstest::model_dir() + "/clip-vit-tiny-a", cfg);
  for (auto& c : rstest::read_json(rstest::data_dir() + "/tiny-lisa-a/fixture.json")["cases"]) {
    std::string name = c["name"];
    INFO(name);
    auto cj = rstest::read_json(rstest::case_dir(name) + "/case.json");
    auto exp = rstest::read_tensors(rstest::case_dir(name) + "/expected.safetensors");
    cv::Mat bgr = reasonseg::read_image_file(rstest::data_dir() + "/tiny-lisa-a/" + c["image"].get<std::string>());
    REQUIRE(!bgr.empty());
    cv::Mat rgb = to_rgb(bgr, ColorOrder::BGR);
    auto clip = clip_preprocess(rgb, cfg.clip_preprocess);
    auto sam = sam_preprocess(rgb, cfg.sam);
    REQUIRE(sam.resized_h == cj["resize"][0].get<int>());
    REQUIRE(sam.resized_w == cj["resize"][1].get<int>());
    int checked = 0;
    for (auto& [key, e] : exp) {
      torch::Tensor full;
      std::string base;
      if (key.rfind("clip_pixel_values", 0) == 0) full = clip, base = "clip_pixel_values";
      else if (key.rfind("sam_input", 0) == 0) full = sam.pixels, base = "sam_input";
      else continue;
      torch::Tensor actual = key == base ? full : rstest::summarize(full, key.substr(base.size() + 1));
      bool sum = key.find("sum") != std::string::npos;
      auto r = rstest::compare(actual, e, sum ? 1e-2 : 1e-5, 0.0);
      INFO(key << " max_abs " << r.max_abs);
      REQUIRE(r.shape_ok);
      REQUIRE(r.violations == 0);
      ++checked;
    }
    REQUIRE(checked >= 3);
  }
}

TEST_CASE("Pillow resampling: identity, known bilinear/bicubic values", "[preprocess]") {
  cv::Mat img(2, 4, CV_8UC1);
  uint8_t v[] = {0, 100, 200, 255, 10, 20, 30, 40};
  std::memcpy(img.data, v, 8);
  REQUIRE(cv::norm(pillow_resize(img, 4, 2, PillowFilter::Bicubic), img, cv::NORM_INF) == 0);
  // Halving 4 -> 2 with bilinear averages pairs with Pillow's antialiased triangle filter:
  // support 2 px, weights (1/8, 3/8, 3/8, 1/8) clipped at the border.
  cv::Mat h = pillow_resize(img, 2, 2, PillowFilter::Bilinear);
  REQUIRE(int(h.at<uint8_t>(0, 0)) == 71);   // (0*3 + 100*3 + 200*1) / 7 = 71.4
  REQUIRE(int(h.at<uint8_t>(0, 1)) == 209);  // (100*1 + 200*3 + 255*3) / 7 = 209.3
}

TEST_CASE("bad images are clear errors", "[preprocess]") {
  REQUIRE_THROWS_WITH(to_rgb(cv::Mat(), ColorOrder::BGR), Catch::Contains("empty"));
  REQUIRE_THROWS_WITH(to_rgb(cv::Mat(4, 4, CV_32FC3), ColorOrder::BGR), Catch::Contains("8-bit"));
  REQUIRE_THROWS_WITH(to_rgb(cv::Mat(4, 4, CV_8UC2), ColorOrder::BGR), Catch::Contains("channels"));
  cv::Mat bgra(3, 3, CV_8UC4, cv::Scalar(1, 2, 3, 4));
  REQUIRE(to_rgb(bgra, ColorOrder::BGR).at<cv::Vec3b>(0, 0) == cv::Vec3b(3, 2, 1));
  cv::Mat gray(3, 3, CV_8UC1, cv::Scalar(7));
  REQUIRE(to_rgb(gray, ColorOrder::RGB).at<cv::Vec3b>(1, 1) == cv::Vec3b(7, 7, 7));
  SamConfig sc;
  REQUIRE_THROWS_AS(sam_preprocess(to_rgb(cv::Mat(1, 5000, CV_8UC3), ColorOrder::RGB), sc), Error);
}
