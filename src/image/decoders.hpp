// PNG and JPEG decoding through libpng and libjpeg(-turbo) directly, giving the pixels OpenCV's
// cv::imread gives (the same libraries with the same settings; tests/test_image_decoders.cpp compares
// them), but with the libraries' messages in our hands: OpenCV leaves libpng's and libjpeg's default
// handlers in place, which print "libpng warning: ..." and "Corrupt JPEG data: ..." to the process's
// stderr. Here an error becomes a reasonseg::Error naming the file and a warning is returned to the
// caller (read_image_file), prefixed by the format.
#pragma once
#include <opencv2/core.hpp>
#include <cstdint>
#include <string>
#include <vector>

namespace reasonseg::image_decoders {

// At most this many decoder warnings are kept per image (a damaged file can warn once per row).
constexpr size_t kMaxWarnings = 8;

// 8-bit BGR (color) or gray, EXIF orientation applied as cv::imread does. Refuses an image over
// `max_pixels` from its header, before allocating; every libpng/libjpeg error throws Error naming `path`.
cv::Mat decode_png(const std::string& path, bool color, int64_t max_pixels, std::vector<std::string>& warnings);
cv::Mat decode_jpeg(const std::string& path, bool color, int64_t max_pixels, std::vector<std::string>& warnings);

// The orientation tag (1..8) of an EXIF block that starts at its TIFF header ("II*\0" / "MM\0*"); 1 when
// the block has none or is malformed (every offset is bounds-checked).
int exif_orientation(const uint8_t* tiff, size_t size);
// Flips / transposes as cv::imread does for EXIF orientations 2..8; other values leave the image as is.
cv::Mat apply_exif_orientation(const cv::Mat& image, int orientation);

}  // namespace reasonseg::image_decoders
