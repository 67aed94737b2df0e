// Pillow's (libImaging Resample.c) separable 8-bit resampling, reproduced bit for bit.
#pragma once
#include <opencv2/core.hpp>

namespace reasonseg {

enum class PillowFilter { Bilinear, Bicubic };

// Resizes an 8-bit image with 1-4 interleaved channels to (out_w, out_h) exactly as
// PIL.Image.resize does: antialiased when shrinking, 22-bit fixed-point weights, horizontal
// pass first into a clipped uint8 intermediate, then the vertical pass.
cv::Mat pillow_resize(const cv::Mat& src, int out_w, int out_h, PillowFilter filter);

}  // namespace reasonseg
