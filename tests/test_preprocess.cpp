// Image inputs: CLIP and SAM tensors of every fixture image, bit-exact Pillow resizing.
#include <catch2/catch.hpp>
#include <tuple>
#include <fstream>
#include <filesystem>

#include "config/config.hpp"
#include "fixture.hpp"
#include "reasonseg/image_io.hpp"
#include "image/pillow_resample.hpp"
#include "image/preprocess.hpp"
#include "reasonseg/error.hpp"
#include "reasonseg/image.hpp"

using namespace reasonseg;

TEST_CASE("CLIP and SAM inputs equal the reference for every fixture case", "[preprocess]") {
  LisaConfig cfg = read_lisa_config(rstest::model_dir());
  read_clip_tower_config(rstest::model_dir() + "/clip-vit-tiny-a", cfg);
  // Named: a range-for over a member of a temporary reads freed memory (found by scripts/sanitize.sh).
  auto fixture = rstest::read_json(rstest::data_dir() + "/tiny-lisa-a/fixture.json");
  size_t cases = 0;
  for (auto& c : fixture["cases"]) {
    ++cases;
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
      // Row and column sums are stored without the batch dimension ([3, 1024]).
      if (actual.dim() == e.dim() + 1 && actual.size(0) == 1) actual = actual.squeeze(0);
      bool sum = key.find("sum") != std::string::npos;
      auto r = rstest::compare(actual, e, sum ? 1e-2 : 1e-5, 0.0);
      INFO(key << " max_abs " << r.max_abs);
      REQUIRE(r.shape_ok);
      REQUIRE(r.violations == 0);
      ++checked;
    }
    REQUIRE(checked >= 3);
  }
  REQUIRE((cases > 0 && cases == fixture["cases"].size()));
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

TEST_CASE("a window of a Pillow resize equals cropping the full resize, bit for bit", "[preprocess]") {
  cv::RNG rng(5);
  for (auto filter : {PillowFilter::Bilinear, PillowFilter::Bicubic}) {
    for (auto [iw, ih, ow, oh] : {std::tuple{37, 23, 91, 61}, {120, 80, 33, 29}, {64, 1, 64, 40}, {1, 50, 30, 50}}) {
      cv::Mat src(ih, iw, CV_8UC3);
      rng.fill(src, cv::RNG::UNIFORM, 0, 256);
      const cv::Mat full = pillow_resize(src, ow, oh, filter);
      for (auto win : {cv::Rect(0, 0, ow, oh), cv::Rect(ow / 3, oh / 4, ow / 2, oh / 2), cv::Rect(ow - 1, oh - 1, 1, 1)}) {
        INFO(iw << "x" << ih << " -> " << ow << "x" << oh << ", window " << win);
        REQUIRE(cv::norm(pillow_resize_window(src, ow, oh, filter, win), full(win), cv::NORM_INF) == 0);
      }
    }
  }
}

TEST_CASE("hostile image sizes: bounded CLIP preprocessing, clear errors", "[preprocess]") {
  // 1 x 20000: CLIP's shortest-edge resize would be 224 x 4480000 (3 GB) before its crop; only
  // the crop is computed now.
  cv::Mat thin(1, 20000, CV_8UC3, cv::Scalar(10, 200, 30));
  ClipPreprocessConfig clip;
  auto t = clip_preprocess(thin, clip);
  REQUIRE(t.sizes() == torch::IntArrayRef({1, 3, 224, 224}));
  // SAM cannot resize it to 1024 on the long side (0 rows): an error, not an empty tensor.
  REQUIRE_THROWS_WITH(sam_preprocess(thin, SamConfig{}), Catch::Contains("too thin"));
  // A PNG whose header claims 100000 x 100000 is refused before it is decoded.
  const std::string png = (std::filesystem::temp_directory_path() / "reasonseg_huge_header.png").string();
  {
    // PNG signature and an IHDR chunk (8-bit RGB) whose width and height are 100000; no pixel data.
    const unsigned char head[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R',
                                  0x00, 0x01, 0x86, 0xA0, 0x00, 0x01, 0x86, 0xA0, 8, 2, 0, 0, 0, 0, 0, 0, 0};
    std::ofstream(png, std::ios::binary).write(reinterpret_cast<const char*>(head), sizeof head);
  }
  REQUIRE(image_file_size(png) == std::pair<int64_t, int64_t>{100000, 100000});
  REQUIRE_THROWS_WITH(read_image_file(png), Catch::Contains("100000x100000") && Catch::Contains("over the limit"));
  // Found by fuzz_image: sizes near 2^32 overflowed width * height (UBSan); now compared by division.
  {
    const unsigned char head[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R',
                                  0x99, 0x99, 0x00, 0xFF, 0xD8, 0xFF, 0x0E, 0x00, 8, 2, 0, 0, 0, 0, 0, 0, 0};
    std::ofstream(png, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(head), sizeof head);
  }
  REQUIRE_THROWS_WITH(read_image_file(png), Catch::Contains("2576941311x3640593920") && Catch::Contains("over the limit"));
  std::filesystem::remove(png);
  // A PPM header of 30000 x 30000 (inside the format's own 32768 bound) and no pixels: refused by the
  // pixel limit before its 2.7 GB are allocated (it used to allocate, then report truncated data).
  const std::string ppm = (std::filesystem::temp_directory_path() / "reasonseg_huge_header.ppm").string();
  std::ofstream(ppm, std::ios::binary) << "P6\n30000 30000\n255\n";
  REQUIRE_THROWS_WITH(read_image_file(ppm), Catch::Contains("30000x30000") && Catch::Contains("over the limit"));
  std::filesystem::remove(ppm);
}

TEST_CASE("image formats without a checked size never reach a decoder", "[preprocess][hostile]") {
  if (!image_codecs_available()) {
    WARN("skipped: this build reads PPM/PGM only (REASONSEG_WITH_IMGCODECS=OFF)");
    return;
  }
  // A JPEG 2000 signature box (OpenCV would hand it to OpenJPEG) and a BMP header.
  const std::string jp2 = (std::filesystem::temp_directory_path() / "reasonseg_not_png.png").string();
  {
    const unsigned char box[] = {0, 0, 0, 12, 'j', 'P', ' ', ' ', 0x0D, 0x0A, 0x87, 0x0A, 0, 0, 0, 20, 'f', 't', 'y', 'p'};
    std::ofstream(jp2, std::ios::binary).write(reinterpret_cast<const char*>(box), sizeof box);
  }
  REQUIRE_THROWS_WITH(read_image_file(jp2), Catch::Contains(jp2) && Catch::Contains("not a PNG, JPEG or PPM/PGM"));
  std::filesystem::remove(jp2);
  REQUIRE_THROWS_WITH(read_image_file("/nonexistent/x.png"), Catch::Contains("/nonexistent/x.png"));
}
