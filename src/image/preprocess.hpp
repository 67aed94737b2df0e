// The two input branches of LISA: CLIPImageProcessor and SAM's ResizeLongestSide + normalise.
#pragma once
#include <torch/types.h>

#include <opencv2/core.hpp>

#include "config/config.hpp"

namespace reasonseg {

// CLIP branch: shortest edge -> size (truncating), Pillow resize, centre crop, rescale,
// normalise. Returns float32 [1, 3, crop_h, crop_w].
torch::Tensor clip_preprocess(const cv::Mat& rgb, const ClipPreprocessConfig& cfg);

struct SamInput {
  torch::Tensor pixels;  // float32 [1, 3, image_size, image_size], zero padded bottom/right
  int resized_h = 0, resized_w = 0;
};

// SAM branch: longest side -> image_size with int(x*scale+0.5), Pillow bilinear, (x-mean)/std,
// zero pad.
SamInput sam_preprocess(const cv::Mat& rgb, const SamConfig& cfg);

// ResizeLongestSide.get_preprocess_shape.
std::pair<int, int> sam_resized_shape(int h, int w, int target);

}  // namespace reasonseg
