// Reading and writing image files, with the size checked from the header before decoding.
//
// Built with image codecs (the default), PNG and JPEG are read through libpng and libjpeg (the
// pixels cv::imread gives, without the libraries' messages on stderr) and written through OpenCV's
// imgcodecs; other formats are refused.
// Built without it (REASONSEG_WITH_IMGCODECS=OFF, as the GPU check does: imgcodecs pulls ~200 MB
// of libraries onto a machine that must receive everything in 64 MiB), only binary PPM/PGM is
// read and written, and reading "x.png" falls back to a pre-decoded "x.png.ppm" beside it
// (scripts/gpu-payload.sh writes those on a machine that has imgcodecs).
#pragma once
#include <opencv2/core.hpp>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace reasonseg {

// Pixel limit of read_image_file unless told otherwise (the same as SegmenterOptions::max_image_pixels).
constexpr int64_t kDefaultMaxImagePixels = 100'000'000;

// 8-bit BGR (color = true) or grayscale; throws reasonseg::Error naming the file on failure.
// PNG, JPEG and PPM/PGM headers are read first: an image over `max_pixels` is refused before
// anything is decoded or allocated.
cv::Mat read_image_file(const std::string& path, bool color = true, int64_t max_pixels = kDefaultMaxImagePixels);
// The same, returning the decoder's warnings about a damaged but readable file in `warnings` (e.g.
// "PNG: iCCP: known incorrect sRGB profile", "JPEG: Premature end of JPEG file": the rest of such an
// image is gray). Nothing is ever printed; the overload above drops them.
cv::Mat read_image_file(const std::string& path, bool color, int64_t max_pixels, std::vector<std::string>* warnings);
// Width and height from a PNG or JPEG header; {0, 0} for other formats or short files.
std::pair<int64_t, int64_t> image_file_size(const std::string& path);
// Writes an 8-bit 1- or 3-channel (BGR) image; throws reasonseg::Error naming the file.
void write_image_file(const std::string& path, const cv::Mat& image);
// True when this build reads PNG/JPEG itself (OpenCV imgcodecs linked).
bool image_codecs_available();

}  // namespace reasonseg
