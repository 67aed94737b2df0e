// A ReasonSeg annotation (NAME.json beside NAME.jpg): parsing, the cp1252 fallback, polygon checks
// and the ground-truth raster at a fixed image size.
#include "fuzz_common.hpp"
#include "reasonseg/error.hpp"
#include "reasonseg/eval.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool image = [] {
    const uint8_t jpg[] = {0xFF, 0xD8, 0xFF, 0xD9};  // only its existence is checked before use
    rsfuzz::write("s.jpg", jpg, sizeof jpg);
    return true;
  }();
  (void)image;
  rsfuzz::write("s.json", data, size);
  try {
    auto s = reasonseg::load_reasonseg_sample(rsfuzz::scratch().string(), "s");
    reasonseg::validate_polygons(s, 48, 64);
    cv::Mat gt = reasonseg::rasterize_ground_truth(s.polygons, 48, 64);
    for (const auto& t : s.texts) (void)reasonseg::reasonseg_question(t, s.is_sentence);
    (void)cv::countNonZero(gt);
  } catch (const reasonseg::Error&) {
  }
  return 0;
}
