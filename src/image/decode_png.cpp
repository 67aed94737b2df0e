// PNG through libpng with our own error and warning handlers (see decoders.hpp for why), with the
// transformations cv::imread(IMREAD_COLOR / IMREAD_GRAYSCALE) asks libpng for.
#include <png.h>

#include <algorithm>
#include <cstdio>
#include <memory>

#include "image/decoders.hpp"
#include "image/pixel_limit.hpp"
#include "util/error.hpp"

namespace reasonseg::image_decoders {

namespace {

// Everything the libpng callbacks touch and everything read after a longjmp lives here, outside the
// frame that calls setjmp (its locals are indeterminate after the jump).
struct PngState {
  png_structp png = nullptr;
  png_infop info = nullptr;
  png_infop end_info = nullptr;
  char error[256] = "";
  std::vector<std::string>* warnings = nullptr;
  std::vector<png_bytep> rows;
  ~PngState() {
    if (png) png_destroy_read_struct(&png, &info, &end_info);
  }
};

void on_png_error(png_structp png, png_const_charp message) {
  auto* s = static_cast<PngState*>(png_get_error_ptr(png));
  std::snprintf(s->error, sizeof(s->error), "%s", message ? message : "unknown error");
  png_longjmp(png, 1);
}

void on_png_warning(png_structp png, png_const_charp message) {
  auto* s = static_cast<PngState*>(png_get_error_ptr(png));
  if (s->warnings->size() >= kMaxWarnings) return;
  try {
    s->warnings->push_back(printable(std::string("PNG: ") + (message ? message : "")));
  } catch (...) {  // out of memory for a warning: drop it rather than unwind through libpng
  }
}

// Runs libpng from the header to the end chunk. Returns false when libpng reported an error (in
// s.error); throws Error for a header over the pixel limit. No object with a destructor lives in
// this frame: longjmp would skip it.
bool read_png(PngState& s, FILE* file, const std::string& path, bool color, int64_t max_pixels, cv::Mat& out) {
  if (setjmp(png_jmpbuf(s.png))) return false;
  png_init_io(s.png, file);
  // Bounds on what ancillary chunks may allocate (compressed iCCP/zTXt/iTXt included).
  png_set_chunk_malloc_max(s.png, 16u << 20);
  png_set_chunk_cache_max(s.png, 1000);
  const int64_t side = std::min<int64_t>(max_pixels, 0x7fffffff);
  png_set_user_limits(s.png, png_uint_32(side), png_uint_32(side));
  png_read_info(s.png, s.info);
  png_uint_32 width = 0, height = 0;
  int bit_depth = 0, color_type = 0;
  png_get_IHDR(s.png, s.info, &width, &height, &bit_depth, &color_type, nullptr, nullptr, nullptr);
  check_pixel_limit(path, width, height, max_pixels);
  if (bit_depth == 16) png_set_strip_16(s.png);  // the high byte, as cv::imread's 8-bit read keeps
  png_set_strip_alpha(s.png);                      // alpha (and tRNS) is dropped, not composited
  if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(s.png);
  if ((color_type & PNG_COLOR_MASK_COLOR) == 0 && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(s.png);
  if ((color_type & PNG_COLOR_MASK_COLOR) && color) png_set_bgr(s.png);
  else if (color) png_set_gray_to_rgb(s.png);
  else png_set_rgb_to_gray(s.png, 1, 0.299, 0.587);
  png_set_interlace_handling(s.png);
  png_read_update_info(s.png, s.info);
  out.create(int(height), int(width), color ? CV_8UC3 : CV_8UC1);
  s.rows.resize(height);
  for (uint32_t y = 0; y < height; ++y) s.rows[y] = out.ptr(int(y));
  png_read_image(s.png, s.rows.data());
  png_read_end(s.png, s.end_info);
  return true;
}

int png_exif_orientation(PngState& s) {
#ifdef PNG_eXIf_SUPPORTED
  png_uint_32 n = 0;
  png_bytep exif = nullptr;
  for (png_infop info : {s.info, s.end_info})
    if (png_get_valid(s.png, info, PNG_INFO_eXIf) && png_get_eXIf_1(s.png, info, &n, &exif) && exif && n > 0)
      return exif_orientation(exif, n);
#endif
  return 1;
}

}  // namespace

cv::Mat decode_png(const std::string& path, bool color, int64_t max_pixels, std::vector<std::string>& warnings) {
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!file) fail(path, ": cannot open image");
  PngState s;
  s.warnings = &warnings;
  s.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &s, on_png_error, on_png_warning);
  if (!s.png) fail(path, ": cannot start the PNG decoder (libpng ", PNG_LIBPNG_VER_STRING, ")");
  s.info = png_create_info_struct(s.png);
  s.end_info = png_create_info_struct(s.png);
  if (!s.info || !s.end_info) fail(path, ": cannot start the PNG decoder (out of memory)");
  cv::Mat image;
  if (!read_png(s, file.get(), path, color, max_pixels, image)) fail(path, ": not a readable PNG image (", s.error, ")");
  return apply_exif_orientation(image, png_exif_orientation(s));
}

}  // namespace reasonseg::image_decoders
