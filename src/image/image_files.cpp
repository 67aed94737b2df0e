#include "reasonseg/image_io.hpp"

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <opencv2/imgproc.hpp>

#include "image/pixel_limit.hpp"
#include "util/error.hpp"
#include "util/strings.hpp"

#ifdef REASONSEG_HAVE_IMGCODECS
#include <opencv2/imgcodecs.hpp>

#include "image/decoders.hpp"
#endif

namespace reasonseg {

namespace {

// Binary netpbm (P5 gray, P6 RGB), maxval <= 255; the header is range-checked before allocating.
cv::Mat read_netpbm(const std::string& path, bool color, int64_t max_pixels) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open image");
  auto token = [&]() {
    std::string t;
    int c;
    while ((c = in.get()) != EOF) {
      if (c == '#') {
        while ((c = in.get()) != EOF && c != '\n') {
        }
        continue;
      }
      if (std::isspace(c)) {
        if (!t.empty()) break;
        continue;
      }
      t.push_back(char(c));
      if (t.size() > 16) fail(path, ": malformed PPM/PGM header");
    }
    return t;
  };
  const std::string magic = token();
  if (magic != "P5" && magic != "P6") fail(path, ": not a binary PPM/PGM image (this build reads no other format)");
  auto number = [&](const char* what, long lo, long hi) {
    const std::string t = token();
    char* end = nullptr;
    long v = std::strtol(t.c_str(), &end, 10);
    if (t.empty() || *end || v < lo || v > hi) fail(path, ": PPM/PGM ", what, " '", t, "' is out of range");
    return int(v);
  };
  const int w = number("width", 1, 1 << 15), h = number("height", 1, 1 << 15), maxval = number("maxval", 1, 255);
  (void)maxval;
  check_pixel_limit(path, w, h, max_pixels);
  const int ch = magic == "P6" ? 3 : 1;
  cv::Mat m(h, w, ch == 3 ? CV_8UC3 : CV_8UC1);
  in.read(reinterpret_cast<char*>(m.data), std::streamsize(m.total() * m.elemSize()));
  if (!in) fail(path, ": PPM/PGM pixel data is truncated");
  if (ch == 3) cv::cvtColor(m, m, cv::COLOR_RGB2BGR);
  if (color && ch == 1) cv::cvtColor(m, m, cv::COLOR_GRAY2BGR);
  if (!color && ch == 3) cv::cvtColor(m, m, cv::COLOR_BGR2GRAY);
  return m;
}

void write_netpbm(const std::string& path, const cv::Mat& image) {
  if (image.depth() != CV_8U || (image.channels() != 1 && image.channels() != 3))
    fail(path, ": only 8-bit gray or BGR images can be written as PPM/PGM");
  cv::Mat rgb;
  if (image.channels() == 3) cv::cvtColor(image, rgb, cv::COLOR_BGR2RGB);
  else rgb = image.isContinuous() ? image : image.clone();
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "wb"), &std::fclose);
  if (!f) fail(path, ": cannot write image");
  std::fprintf(f.get(), "P%d\n%d %d\n255\n", image.channels() == 3 ? 6 : 5, rgb.cols, rgb.rows);
  if (std::fwrite(rgb.data, 1, rgb.total() * rgb.elemSize(), f.get()) != rgb.total() * rgb.elemSize())
    fail(path, ": cannot write image");
}

uint32_t be32(const unsigned char* p) { return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3]; }

bool is_netpbm(const std::string& path) {
  return ends_with(path, ".ppm") || ends_with(path, ".pgm") || ends_with(path, ".pnm");
}

// What the first bytes of a file say: its format, and for PNG and JPEG the size in the header
// (0 x 0 when the header is cut short).
enum class ImageKind { Unopenable, Empty, Png, Jpeg, Other };
struct ImageHeader {
  ImageKind kind = ImageKind::Unopenable;
  int64_t width = 0, height = 0;
};

ImageHeader read_image_header(const std::string& path) {
  ImageHeader r;
  std::ifstream in(path, std::ios::binary);
  if (!in) return r;
  unsigned char h[24] = {};
  if (!in.read(reinterpret_cast<char*>(h), 2)) {
    r.kind = ImageKind::Empty;
    return r;
  }
  if (h[0] == 0x89 && h[1] == 'P') {  // PNG: signature, then IHDR's width and height
    r.kind = ImageKind::Png;
    if (in.read(reinterpret_cast<char*>(h + 2), 22) && std::memcmp(h + 12, "IHDR", 4) == 0)
      r.width = be32(h + 16), r.height = be32(h + 20);
    return r;
  }
  if (h[0] == 0xFF && h[1] == 0xD8) {  // JPEG: walk the segments to the first start-of-frame
    r.kind = ImageKind::Jpeg;
    for (int segments = 0; segments < 1000; ++segments) {
      unsigned char m[4];
      if (!in.read(reinterpret_cast<char*>(m), 4) || m[0] != 0xFF) return r;
      const int marker = m[1], len = m[2] << 8 | m[3];
      const bool sof = marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
      if (sof) {
        unsigned char f[5];
        if (in.read(reinterpret_cast<char*>(f), 5)) r.width = f[3] << 8 | f[4], r.height = f[1] << 8 | f[2];
        return r;
      }
      if (len < 2) return r;
      in.seekg(len - 2, std::ios::cur);
    }
    return r;
  }
  r.kind = ImageKind::Other;
  return r;
}

}  // namespace

std::pair<int64_t, int64_t> image_file_size(const std::string& path) {
  const ImageHeader h = read_image_header(path);
  return {h.width, h.height};
}

bool image_codecs_available() {
#ifdef REASONSEG_HAVE_IMGCODECS
  return true;
#else
  return false;
#endif
}

cv::Mat read_image_file(const std::string& path, bool color, int64_t max_pixels) {
  return read_image_file(path, color, max_pixels, nullptr);
}

cv::Mat read_image_file(const std::string& path, bool color, int64_t max_pixels, std::vector<std::string>* warnings) {
  if (is_netpbm(path)) return read_netpbm(path, color, max_pixels);
#ifdef REASONSEG_HAVE_IMGCODECS
  // Only PNG and JPEG reach a decoder, ours (image/decoders.hpp), never OpenCV's choice by the bytes
  // (JPEG 2000, TIFF, OpenEXR, ...: formats whose size nothing here checks). A size in the header is
  // checked here, before the decoder starts; the decoders check the header they parse themselves.
  const ImageHeader header = read_image_header(path);
  if (header.width > 0 && header.height > 0) check_pixel_limit(path, header.width, header.height, max_pixels);
  std::vector<std::string> dropped;
  std::vector<std::string>& sink = warnings ? *warnings : dropped;
  switch (header.kind) {
    case ImageKind::Png: return image_decoders::decode_png(path, color, max_pixels, sink);
    case ImageKind::Jpeg: return image_decoders::decode_jpeg(path, color, max_pixels, sink);
    case ImageKind::Unopenable: fail(path, ": cannot open image");
    case ImageKind::Empty: fail(path, ": the image file is empty");
    case ImageKind::Other: break;
  }
  fail(path, ": not a PNG, JPEG or PPM/PGM image (other formats are not read)");
#else
  std::ifstream probe(path + ".ppm");
  if (!probe)
    fail(path, ": this build has no image codecs (REASONSEG_WITH_IMGCODECS=OFF) and no pre-decoded '", path,
         ".ppm' is beside it");
  return read_netpbm(path + ".ppm", color, max_pixels);
#endif
}

void write_image_file(const std::string& path, const cv::Mat& image) {
  if (is_netpbm(path)) return write_netpbm(path, image);
#ifdef REASONSEG_HAVE_IMGCODECS
  if (!cv::imwrite(path, image)) fail(path, ": cannot write image");
#else
  fail(path, ": this build has no image codecs (REASONSEG_WITH_IMGCODECS=OFF): write .ppm/.pgm instead");
#endif
}

}  // namespace reasonseg
