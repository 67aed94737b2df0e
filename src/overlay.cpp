#include "reasonseg/overlay.hpp"

#include <opencv2/imgproc.hpp>

#include "util/error.hpp"

namespace reasonseg {

cv::Mat draw_overlay(const cv::Mat& image, ColorOrder order, const std::vector<SegMask>& masks) {
  cv::Mat rgb = to_rgb(image, order, "overlay image");
  cv::Mat out;
  cv::cvtColor(rgb, out, cv::COLOR_RGB2BGR);
  static const cv::Scalar palette[] = {{0, 0, 255}, {0, 200, 0}, {255, 80, 0}, {0, 200, 255}, {255, 0, 255}, {255, 255, 0}};
  for (size_t i = 0; i < masks.size(); ++i) {
    const cv::Mat& m = masks[i].mask;
    if (m.size() != out.size()) fail("overlay: mask ", i, " is ", m.cols, "x", m.rows, ", image is ", out.cols, "x", out.rows);
    cv::Scalar color = palette[i % 6];
    cv::Mat tint(out.size(), out.type(), color), blended;
    cv::addWeighted(out, 0.5, tint, 0.5, 0, blended);
    blended.copyTo(out, m);
    std::vector<std::vector<cv::Point>> contours;
    cv::findContours(m.clone(), contours, cv::RETR_EXTERNAL, cv::CHAIN_APPROX_SIMPLE);
    cv::drawContours(out, contours, -1, color, 2);
  }
  return out;
}

}  // namespace reasonseg
