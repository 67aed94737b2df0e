// Reading and writing image files, with the size checked from the header before decoding.
//
// Built with OpenCV's imgcodecs (the default), every format OpenCV knows is read and written.
// Built without it (REASONSEG_WITH_IMGCODECS=OFF, as the GPU check does: imgcodecs pulls ~200 MB
// of libraries onto a machine that must receive everything in 64 MiB), only binary PPM/PGM is
// read and written, and reading "x.png" falls back to a pre-decoded "x.png.ppm" beside it
// (scripts/gpu-payload.sh writes those on a machine that has imgcodecs).
#pragma once
#include <opencv2/core.hpp>
#include <cstdint>
#include <string>
#include <utility>

namespace reasonseg {

// Pixel limit of read_image_file unless told otherwise (the same as SegmenterOptions::max_image_pixels).
constexpr int64_t kDefaultMaxImagePixels = 100'000'000;

// 8-bit BGR (color = true) or grayscale; throws reasonseg::Error naming the file on failure.
// PNG, JPEG and PPM/PGM headers are read first: an image over `max_pixels` is refused before
// anything is decoded or allocated.
cv::Mat read_image_file(const std::string& path, bool color = true, int64_t max_pixels = kDefaultMaxImagePixels);
// Width and height from a PNG, JPEG or PPM/PGM header; {0, 0} for other formats or short files.
std::pair<int64_t, int64_t> image_file_size(const std::string& path);
// Writes an 8-bit 1- or 3-channel (BGR) image; throws reasonseg::Error naming the file.
void write_image_file(const std::string& path, const cv::Mat& image);
// True when this build reads PNG/JPEG itself (OpenCV imgcodecs linked).
bool image_codecs_available();

}  // namespace reasonseg
