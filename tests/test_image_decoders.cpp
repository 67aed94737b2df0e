// PNG and JPEG decoding (src/image/decode_*.cpp): the pixels cv::imread gives for every colour type,
// bit depth, interlacing, CMYK and EXIF orientation; the libraries' warnings returned, never printed;
// damaged files as errors naming the file; the pixel and scan limits.
#include <catch2/catch.hpp>
#include <cstdio>  // before jpeglib.h, which needs FILE
#include <jpeglib.h>
#include <png.h>
#include <unistd.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "fixture.hpp"
#include "image/decoders.hpp"
#include "reasonseg/image_io.hpp"

using namespace reasonseg;
namespace fs = std::filesystem;

namespace {

std::string tmp(const std::string& name) { return (fs::temp_directory_path() / ("reasonseg_dec_" + name)).string(); }

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
void spit(const std::string& path, const std::string& bytes) { std::ofstream(path, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size())); }

// A test image with every value of every channel somewhere: gradients plus noise.
cv::Mat pattern(int w, int h, int type) {
  cv::Mat m(h, w, type);
  cv::randu(m, 0, CV_MAT_DEPTH(type) == CV_16U ? 65536 : 256);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w / 2; ++x)
      for (int c = 0; c < m.channels(); ++c) {
        const int v = (x * 7 + y * 3 + c * 50) % 256;
        if (CV_MAT_DEPTH(type) == CV_16U) m.ptr<uint16_t>(y)[x * m.channels() + c] = uint16_t(v * 257 + y);
        else m.ptr<uint8_t>(y)[x * m.channels() + c] = uint8_t(v);
      }
  return m;
}

// A PNG written with libpng itself: the colour types and options cv::imwrite cannot write.
void write_png(const std::string& path, int w, int h, int bit_depth, int color_type, bool interlace) {
  FILE* f = std::fopen(path.c_str(), "wb");
  REQUIRE(f);
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  png_init_io(png, f);
  png_set_IHDR(png, info, w, h, bit_depth, color_type, interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (color_type == PNG_COLOR_TYPE_PALETTE) {
    png_color palette[256];
    png_byte alpha[256];
    for (int i = 0; i < 256; ++i) palette[i] = {png_byte(i * 37), png_byte(255 - i), png_byte(i * 11)}, alpha[i] = png_byte(i);
    png_set_PLTE(png, info, palette, 1 << std::min(bit_depth, 8));
    png_set_tRNS(png, info, alpha, 1 << std::min(bit_depth, 8), nullptr);
  }
  png_write_info(png, info);
  const int channels = png_get_channels(png, info);
  const size_t row_bytes = (size_t(w) * channels * bit_depth + 7) / 8;
  std::vector<png_byte> row(row_bytes);
  for (int pass = 0, passes = interlace ? png_set_interlace_handling(png) : 1; pass < passes; ++pass)
    for (int y = 0; y < h; ++y) {
      for (size_t i = 0; i < row_bytes; ++i) row[i] = png_byte((i * 31 + size_t(y) * 17 + i * i) % 256);
      png_write_row(png, row.data());
    }
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  std::fclose(f);
}

// A 4-component (CMYK) JPEG written with libjpeg.
void write_cmyk_jpeg(const std::string& path, int w, int h) {
  jpeg_compress_struct c{};
  jpeg_error_mgr err{};
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  FILE* f = std::fopen(path.c_str(), "wb");
  REQUIRE(f);
  jpeg_stdio_dest(&c, f);
  c.image_width = JDIMENSION(w), c.image_height = JDIMENSION(h), c.input_components = 4, c.in_color_space = JCS_CMYK;
  jpeg_set_defaults(&c);
  jpeg_start_compress(&c, TRUE);
  std::vector<JSAMPLE> row(size_t(w) * 4);
  while (c.next_scanline < c.image_height) {
    for (size_t i = 0; i < row.size(); ++i) row[i] = JSAMPLE((i * 13 + c.next_scanline * 7) % 256);
    JSAMPROW r = row.data();
    jpeg_write_scanlines(&c, &r, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  std::fclose(f);
}

// Both decodes of `path` (BGR and gray) are pixel-for-pixel those of cv::imread.
void require_same_as_opencv(const std::string& path) {
  for (bool color : {true, false}) {
    INFO(path << (color ? " colour" : " gray"));
    cv::Mat ours = read_image_file(path, color);
    cv::Mat theirs = cv::imread(path, color ? cv::IMREAD_COLOR : cv::IMREAD_GRAYSCALE);
    REQUIRE(!theirs.empty());
    REQUIRE(ours.type() == theirs.type());
    REQUIRE(ours.size() == theirs.size());
    REQUIRE(cv::norm(ours, theirs, cv::NORM_INF) == 0);
  }
}

// Everything written to the process's stderr while `fn` runs (fd 2 restored however `fn` ends).
std::string stderr_of(const std::function<void()>& fn) {
  const std::string path = tmp("stderr.txt");
  struct Redirect {
    int saved = -1;
    FILE* file = nullptr;
    explicit Redirect(const std::string& to) {
      std::fflush(stderr);
      saved = dup(2);
      file = std::fopen(to.c_str(), "wb");
      dup2(fileno(file), 2);
    }
    ~Redirect() {
      std::fflush(stderr);
      dup2(saved, 2);
      close(saved);
      std::fclose(file);
    }
  };
  {
    Redirect redirect(path);
    fn();
  }
  return slurp(path);
}

// "Exif\0\0" + a TIFF block whose IFD0 holds one orientation entry, in either byte order.
std::string exif_block(int orientation, bool little) {
  auto u16 = [&](int v) { return little ? std::string{char(v & 255), char(v >> 8)} : std::string{char(v >> 8), char(v & 255)}; };
  auto u32 = [&](int v) { return little ? u16(v & 0xFFFF) + u16(v >> 16) : u16(v >> 16) + u16(v & 0xFFFF); };
  std::string tiff = std::string(little ? "II" : "MM") + u16(42) + u32(8) + u16(2);
  tiff += u16(0x010F) + u16(2) + u32(4) + std::string("abc\0", 4);  // Make, an ASCII entry before it
  tiff += u16(0x0112) + u16(3) + u32(1) + u16(orientation) + u16(0);
  tiff += u32(0);
  return std::string("Exif\0\0", 6) + tiff;
}

}  // namespace

TEST_CASE("PNG decoding equals cv::imread for every colour type, depth and interlacing", "[image]") {
  int n = 0;
  for (int type : {CV_8UC1, CV_8UC3, CV_8UC4, CV_16UC1, CV_16UC3, CV_16UC4}) {
    const std::string p = tmp("cv" + std::to_string(n++) + ".png");
    REQUIRE(cv::imwrite(p, pattern(37, 23, type)));
    require_same_as_opencv(p);
    fs::remove(p);
  }
  struct Kind {
    int depth, type;
  };
  for (Kind k : {Kind{1, PNG_COLOR_TYPE_GRAY}, Kind{2, PNG_COLOR_TYPE_GRAY}, Kind{4, PNG_COLOR_TYPE_GRAY},
                 Kind{8, PNG_COLOR_TYPE_GRAY_ALPHA}, Kind{16, PNG_COLOR_TYPE_GRAY_ALPHA}, Kind{1, PNG_COLOR_TYPE_PALETTE},
                 Kind{4, PNG_COLOR_TYPE_PALETTE}, Kind{8, PNG_COLOR_TYPE_PALETTE}, Kind{8, PNG_COLOR_TYPE_RGB},
                 Kind{16, PNG_COLOR_TYPE_RGB_ALPHA}})
    for (bool interlace : {false, true}) {
      const std::string p = tmp("lib" + std::to_string(n++) + ".png");
      write_png(p, 29, 19, k.depth, k.type, interlace);
      require_same_as_opencv(p);
      fs::remove(p);
    }
}

TEST_CASE("PNG eXIf orientation is applied as cv::imread applies it", "[image]") {
  const std::string p = tmp("exif.png");
  REQUIRE(cv::imwrite(p, pattern(45, 31, CV_8UC3)));
  const std::string plain = slurp(p);
  for (int o : {1, 3, 6, 8}) {
    const std::string body = "eXIf" + exif_block(o, o % 2 == 0).substr(6);
    const uint32_t crc = uint32_t(crc32(0, reinterpret_cast<const Bytef*>(body.data()), uInt(body.size())));
    auto be = [](uint32_t v) { return std::string{char(v >> 24), char(v >> 16), char(v >> 8), char(v)}; };
    spit(p, plain.substr(0, 33) + be(uint32_t(body.size() - 4)) + body + be(crc) + plain.substr(33));
    INFO("orientation " << o);
    require_same_as_opencv(p);
    REQUIRE(read_image_file(p).cols == (o >= 5 ? 31 : 45));
  }
  fs::remove(p);
}

TEST_CASE("JPEG decoding equals cv::imread: 4:2:0, gray, progressive, CMYK, every EXIF orientation", "[image]") {
  const std::string p = tmp("a.jpg");
  REQUIRE(cv::imwrite(p, pattern(45, 31, CV_8UC3)));
  require_same_as_opencv(p);
  REQUIRE(cv::imwrite(p, pattern(45, 31, CV_8UC1)));
  require_same_as_opencv(p);
  REQUIRE(cv::imwrite(p, pattern(45, 31, CV_8UC3), {cv::IMWRITE_JPEG_PROGRESSIVE, 1}));
  require_same_as_opencv(p);
  write_cmyk_jpeg(p, 33, 17);
  require_same_as_opencv(p);
  // EXIF orientation: an APP1 segment right after SOI, both byte orders, all eight values (and a
  // nonsense one); the decoded image is flipped/rotated exactly as cv::imread does.
  REQUIRE(cv::imwrite(p, pattern(45, 31, CV_8UC3)));
  const std::string plain = slurp(p);
  for (bool little : {true, false})
    for (int o = 1; o <= 9; ++o) {
      const std::string exif = exif_block(o, little);
      const std::string app1 = std::string("\xFF\xE1", 2) + char((exif.size() + 2) >> 8) + char((exif.size() + 2) & 255) + exif;
      spit(p, plain.substr(0, 2) + app1 + plain.substr(2));
      INFO("orientation " << o << (little ? " II" : " MM"));
      require_same_as_opencv(p);
      const cv::Mat m = read_image_file(p);
      REQUIRE(m.cols == (o >= 5 && o <= 8 ? 31 : 45));
    }
  fs::remove(p);
}

TEST_CASE("EXIF parsing is bounds-checked", "[image][hostile]") {
  using image_decoders::exif_orientation;
  const std::string good = exif_block(6, true).substr(6);
  REQUIRE(exif_orientation(reinterpret_cast<const uint8_t*>(good.data()), good.size()) == 6);
  // Every truncation of a valid block, and an IFD offset / entry count pointing past the end.
  for (size_t n = 0; n < good.size(); ++n) {
    const int o = exif_orientation(reinterpret_cast<const uint8_t*>(good.data()), n);
    REQUIRE(o == (n >= 8 + 2 + 2 * 12 ? 6 : 1));  // header, entry count, two entries
  }
  std::string bad = good;
  bad[4] = char(0xF0), bad[5] = char(0xFF), bad[6] = char(0xFF), bad[7] = char(0x7F);
  REQUIRE(exif_orientation(reinterpret_cast<const uint8_t*>(bad.data()), bad.size()) == 1);
  bad = good;
  bad[8] = 1;  // one entry: the orientation entry after it is not part of the IFD
  REQUIRE(exif_orientation(reinterpret_cast<const uint8_t*>(bad.data()), bad.size()) == 1);
  REQUIRE(exif_orientation(nullptr, 0) == 1);
}

TEST_CASE("decoder warnings are returned, never printed; damaged files are errors naming the file", "[image][hostile]") {
  const std::string p = tmp("w.png");
  REQUIRE(cv::imwrite(p, pattern(16, 12, CV_8UC3)));
  const std::string png = slurp(p);
  const cv::Mat clean = read_image_file(p);
  // A tEXt chunk with a wrong CRC before IDAT: libpng warns ("CRC error") and drops the chunk.
  {
    const std::string chunk = std::string("\0\0\0\x0A", 4) + std::string("tEXtComment\0hi", 14) + std::string("\x01\x02\x03\x04", 4);
    spit(p, png.substr(0, 33) + chunk + png.substr(33));
    std::vector<std::string> warnings;
    cv::Mat m;
    const std::string printed = stderr_of([&] { m = read_image_file(p, true, kDefaultMaxImagePixels, &warnings); });
    REQUIRE(printed.empty());
    REQUIRE(warnings.size() == 1);
    REQUIRE_THAT(warnings[0], Catch::StartsWith("PNG: ") && Catch::Contains("CRC"));
    REQUIRE(cv::norm(m, clean, cv::NORM_INF) == 0);
  }
  // Pixel data cut short: an error naming the file and libpng's reason, nothing on stderr.
  {
    spit(p, png.substr(0, png.size() / 2));
    std::string message;
    const std::string printed = stderr_of([&] { message = rstest::error_of([&] { read_image_file(p); }); });
    REQUIRE(printed.empty());
    REQUIRE_THAT(message, Catch::Contains(p) && Catch::Contains("not a readable PNG image ("));
  }
  fs::remove(p);
  // A JPEG cut short: libjpeg fills the rest with gray and warns; the warning is returned and the
  // pixels are cv::imread's.
  const std::string j = tmp("w.jpg");
  REQUIRE(cv::imwrite(j, pattern(64, 48, CV_8UC3)));
  const std::string jpg = slurp(j);
  spit(j, jpg.substr(0, jpg.size() * 2 / 3));
  {
    std::vector<std::string> warnings;
    cv::Mat m;
    const std::string printed = stderr_of([&] { m = read_image_file(j, true, kDefaultMaxImagePixels, &warnings); });
    REQUIRE(printed.empty());
    REQUIRE(warnings.size() == 1);
    REQUIRE_THAT(warnings[0], Catch::StartsWith("JPEG: ") && Catch::Contains("Premature end"));
    cv::Mat theirs;
    stderr_of([&] { theirs = cv::imread(j); });
    REQUIRE(cv::norm(m, theirs, cv::NORM_INF) == 0);
  }
  // A JPEG whose header is good and whose frame is garbage: an error naming the file.
  spit(j, jpg.substr(0, 2) + std::string("\xFF\xC0\x00\x04\x08\x00", 6) + std::string(100, '\x55'));
  REQUIRE_THAT(rstest::error_of([&] { read_image_file(j); }), Catch::Contains(j) && Catch::Contains("JPEG"));
  fs::remove(j);
}

TEST_CASE("decoders enforce the pixel limit and bound a progressive JPEG's scans", "[image][hostile]") {
  std::vector<std::string> warnings;
  const std::string p = tmp("limit.png"), j = tmp("limit.jpg");
  REQUIRE(cv::imwrite(p, pattern(40, 30, CV_8UC3)));
  REQUIRE(cv::imwrite(j, pattern(40, 30, CV_8UC3), {cv::IMWRITE_JPEG_PROGRESSIVE, 1}));
  // The decoders check the header they parse themselves (read_image_file checks it earlier too).
  REQUIRE_THAT(rstest::error_of([&] { image_decoders::decode_png(p, true, 1199, warnings); }),
               Catch::Contains("40x30") && Catch::Contains("over the limit of 1199"));
  REQUIRE_THAT(rstest::error_of([&] { image_decoders::decode_jpeg(j, true, 1199, warnings); }),
               Catch::Contains("40x30") && Catch::Contains("over the limit of 1199"));
  REQUIRE(image_decoders::decode_png(p, true, 1200, warnings).cols == 40);
  // 1200 copies of the last scan (a repeated scan only warns in libjpeg): refused at scan 1001.
  std::string jpg = slurp(j);
  const size_t sos = jpg.rfind("\xFF\xDA");
  const size_t eoi = jpg.rfind("\xFF\xD9");
  REQUIRE((sos != std::string::npos && eoi > sos));
  std::string scans;
  for (int i = 0; i < 1200; ++i) scans += jpg.substr(sos, eoi - sos);
  spit(j, jpg.substr(0, eoi) + scans + jpg.substr(eoi));
  REQUIRE_THAT(rstest::error_of([&] { read_image_file(j); }), Catch::Contains(j) && Catch::Contains("more than 1000 progressive scans"));
  fs::remove(p);
  fs::remove(j);
}
