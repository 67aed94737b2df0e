// Pictures of results: masks tinted over the image, each in its own colour, with outlines.
#pragma once
#include <opencv2/core.hpp>
#include <vector>

#include "reasonseg/image.hpp"
#include "reasonseg/segmenter.hpp"

namespace reasonseg {

// Returns a BGR image: `image` with each mask blended (alpha 0.5) in a distinct colour and
// outlined, plus its bounding box. Masks must have the image's size.
cv::Mat draw_overlay(const cv::Mat& image, ColorOrder order, const std::vector<SegMask>& masks);

}  // namespace reasonseg
