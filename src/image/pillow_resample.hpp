// Pillow's (libImaging Resample.c) separable 8-bit resampling, reproduced bit for bit.
#pragma once
#include <opencv2/core.hpp>

namespace reasonseg {

enum class PillowFilter { Bilinear, Bicubic };

// Resizes an 8-bit image with 1-4 interleaved channels to (out_w, out_h) exactly as
// PIL.Image.resize does: antialiased when shrinking, 22-bit fixed-point weights, horizontal
// pass first into a clipped uint8 intermediate, then the vertical pass.
cv::Mat pillow_resize(const cv::Mat& src, int out_w, int out_h, PillowFilter filter);
// The same resize, computing only `window` of the (out_w, out_h) output, bit for bit what cropping
// the full result would give: memory and time scale with the window and the source rows it reads,
// so an extreme aspect ratio (1 x 20000 -> 224 x 4480000 before a 224 x 224 crop) stays small.
cv::Mat pillow_resize_window(const cv::Mat& src, int out_w, int out_h, PillowFilter filter, const cv::Rect& window);

}  // namespace reasonseg
