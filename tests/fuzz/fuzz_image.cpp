// Image files from untrusted bytes: the header size check, decoding (PNG, JPEG, PPM/PGM) under a
// 4-megapixel limit, and the colour conversion every channel order takes.
#include "fuzz_common.hpp"
#include "reasonseg/error.hpp"
#include "reasonseg/image.hpp"
#include "reasonseg/image_io.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The extension only names the file; the decoder goes by the bytes.
  for (const char* name : {"x.png", "x.ppm"}) {
    const std::string path = rsfuzz::write(name, data, size);
    (void)reasonseg::image_file_size(path);
    try {
      cv::Mat m = reasonseg::read_image_file(path, true, 4'000'000);
      (void)reasonseg::to_rgb(m, reasonseg::ColorOrder::BGR);
      cv::Mat g = reasonseg::read_image_file(path, false, 4'000'000);
      (void)reasonseg::to_rgb(g, reasonseg::ColorOrder::RGB);
    } catch (const reasonseg::Error&) {
    }
  }
  return 0;
}
