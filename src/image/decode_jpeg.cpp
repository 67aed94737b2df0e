// JPEG through libjpeg(-turbo) with our own error manager (see decoders.hpp for why), with the
// settings cv::imread uses: default DCT and upsampling, RGB (or the luma channel for gray, or CMYK
// converted as OpenCV converts it), EXIF orientation from the first APP1 segment.
#include <csetjmp>
#include <cstdio>  // jpeglib.h needs FILE and size_t declared first
#include <jpeglib.h>

#include <algorithm>
#include <memory>
#include <opencv2/imgproc.hpp>

#include "image/decoders.hpp"
#include "image/pixel_limit.hpp"
#include "util/error.hpp"

namespace reasonseg::image_decoders {

namespace {

// A progressive JPEG may hold any number of scans, each a pass over the whole image: a small file
// with thousands of them costs minutes (the reason libjpeg-turbo's djpeg has -maxscans).
constexpr int kMaxScans = 1000;

// Everything the callbacks touch and everything read after a longjmp (see decode_png.cpp).
struct JpegState {
  jpeg_decompress_struct cinfo{};
  jpeg_error_mgr err{};
  jpeg_progress_mgr progress{};
  std::jmp_buf jump;
  char error[JMSG_LENGTH_MAX + 64] = "";
  std::vector<std::string>* warnings = nullptr;
  bool created = false;
  int orientation = 1;
  std::vector<uint8_t> row;
  ~JpegState() {
    if (created) jpeg_destroy_decompress(&cinfo);
  }
};

JpegState* state_of(j_common_ptr c) { return static_cast<JpegState*>(c->client_data); }

void on_jpeg_error(j_common_ptr c) {
  auto* s = state_of(c);
  c->err->format_message(c, s->error);
  std::longjmp(s->jump, 1);
}

// Warnings (msg_level -1): the first of each image kept, as libjpeg's own handler prints only the
// first; trace messages (>= 0) dropped.
void on_jpeg_message(j_common_ptr c, int msg_level) {
  if (msg_level >= 0) return;
  auto* s = state_of(c);
  if (c->err->num_warnings++ > 0 || s->warnings->size() >= kMaxWarnings) return;
  char text[JMSG_LENGTH_MAX];
  c->err->format_message(c, text);
  try {
    s->warnings->push_back(printable(std::string("JPEG: ") + text));
  } catch (...) {  // see on_png_warning
  }
}

void on_jpeg_progress(j_common_ptr c) {
  auto* d = reinterpret_cast<j_decompress_ptr>(c);
  if (d->is_decompressor && d->input_scan_number > kMaxScans) {
    std::snprintf(state_of(c)->error, sizeof(JpegState::error), "more than %d progressive scans", kMaxScans);
    std::longjmp(state_of(c)->jump, 1);
  }
}

// The saved APP1 segment is "Exif\0\0" + a TIFF block; cv::imread reads the first APP1 whatever it holds.
int jpeg_exif_orientation(const jpeg_decompress_struct& cinfo) {
  for (jpeg_saved_marker_ptr m = cinfo.marker_list; m; m = m->next)
    if (m->marker == JPEG_APP0 + 1) return m->data_length > 6 ? exif_orientation(m->data + 6, m->data_length - 6) : 1;
  return 1;
}

// OpenCV's CMYK conversion (icvCvt_CMYK2BGR / CMYK2Gray in imgcodecs' utils.cpp), integer for integer.
void cmyk_row(const uint8_t* cmyk, uint8_t* out, int width, bool color) {
  constexpr int kShift = 14, kR = int(0.299 * (1 << kShift) + 0.5), kG = int(0.587 * (1 << kShift) + 0.5),
                kB = (1 << kShift) - kR - kG;
  for (int x = 0; x < width; ++x, cmyk += 4) {
    const int k = cmyk[3];
    const int c = k - ((255 - cmyk[0]) * k >> 8), m = k - ((255 - cmyk[1]) * k >> 8), y = k - ((255 - cmyk[2]) * k >> 8);
    if (color) {
      out[3 * x] = uint8_t(y);
      out[3 * x + 1] = uint8_t(m);
      out[3 * x + 2] = uint8_t(c);
    } else {
      out[x] = uint8_t((y * kB + m * kG + c * kR + (1 << (kShift - 1))) >> kShift);
    }
  }
}

// Runs libjpeg from the header to the end of the image; false when it reported an error (s.error);
// throws Error for a header over the pixel limit. No object with a destructor lives in this frame.
bool read_jpeg(JpegState& s, FILE* file, const std::string& path, bool color, int64_t max_pixels, cv::Mat& out) {
  if (setjmp(s.jump)) return false;
  jpeg_create_decompress(&s.cinfo);
  s.created = true;
  s.cinfo.progress = &s.progress;
  jpeg_stdio_src(&s.cinfo, file);
  jpeg_save_markers(&s.cinfo, JPEG_APP0 + 1, 0xFFFF);
  jpeg_read_header(&s.cinfo, TRUE);
  const int64_t w = s.cinfo.image_width, h = s.cinfo.image_height;
  check_pixel_limit(path, w, h, max_pixels);
  // The decoder's own working memory (a progressive image keeps every coefficient: 2 bytes per
  // sample): bounded by the pixel limit, not by what the file asks for.
  s.cinfo.mem->max_memory_to_use = long(std::min<int64_t>(w * h * 4 * 2 + (64 << 20), int64_t(1) << 40));
  s.orientation = jpeg_exif_orientation(s.cinfo);
  const bool cmyk = s.cinfo.num_components == 4;
  if (cmyk) s.cinfo.out_color_space = JCS_CMYK;
#ifdef JCS_EXTENSIONS
  else if (color) s.cinfo.out_color_space = JCS_EXT_BGR;
#else
  else if (color) s.cinfo.out_color_space = JCS_RGB;
#endif
  else s.cinfo.out_color_space = JCS_GRAYSCALE;
  jpeg_start_decompress(&s.cinfo);
  const int width = int(s.cinfo.output_width), height = int(s.cinfo.output_height);
  out.create(height, width, color ? CV_8UC3 : CV_8UC1);
  s.row.resize(size_t(width) * size_t(s.cinfo.output_components));
  while (s.cinfo.output_scanline < s.cinfo.output_height) {
    const int y = int(s.cinfo.output_scanline);
    JSAMPROW target = cmyk ? s.row.data() : out.ptr(y);
    if (jpeg_read_scanlines(&s.cinfo, &target, 1) != 1) break;
    if (cmyk) cmyk_row(s.row.data(), out.ptr(y), width, color);
  }
  jpeg_finish_decompress(&s.cinfo);
  return true;
}

}  // namespace

cv::Mat decode_jpeg(const std::string& path, bool color, int64_t max_pixels, std::vector<std::string>& warnings) {
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!file) fail(path, ": cannot open image");
  JpegState s;
  s.warnings = &warnings;
  s.cinfo.err = jpeg_std_error(&s.err);
  s.cinfo.client_data = &s;  // kept by jpeg_create_decompress
  s.err.error_exit = on_jpeg_error;
  s.err.emit_message = on_jpeg_message;
  s.progress.progress_monitor = on_jpeg_progress;
  cv::Mat image;
  if (!read_jpeg(s, file.get(), path, color, max_pixels, image)) fail(path, ": not a readable JPEG image (", s.error, ")");
#ifndef JCS_EXTENSIONS
  if (color && s.cinfo.num_components != 4) cv::cvtColor(image, image, cv::COLOR_RGB2BGR);
#endif
  return apply_exif_orientation(image, s.orientation);
}

}  // namespace reasonseg::image_decoders
