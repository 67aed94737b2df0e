// Pictures of results: masks tinted over the image, each in its own colour, with outlines.
#pragma once
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "reasonseg/image.hpp"
#include "reasonseg/segmenter.hpp"

namespace reasonseg {

// Returns a BGR image: `image` with each mask blended (alpha 0.5) in a distinct colour and
// outlined. Masks must have the image's size. With a `caption` (the answer, say), a legend strip is
// added below the image: the caption (wrapped, at most 3 lines; characters outside ASCII drawn as '?'), then one line
// per mask in its colour (score, area) or "no target" when there is no mask.
cv::Mat draw_overlay(const cv::Mat& image, ColorOrder order, const std::vector<SegMask>& masks,
                     const std::string& caption = "");
// A result's picture: its masks and the legend, or, when the result has no target (no [SEG], or
// SESAME's empty first mask), the image untinted with "no target" in the legend.
cv::Mat draw_overlay(const cv::Mat& image, ColorOrder order, const SegmentResult& result, const std::string& caption);

}  // namespace reasonseg
