#include "reasonseg/overlay.hpp"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cstdio>

#include "util/error.hpp"

namespace reasonseg {

namespace {

const cv::Scalar kPalette[] = {{0, 0, 255}, {0, 200, 0}, {255, 80, 0}, {0, 200, 255}, {255, 0, 255}, {255, 255, 0}};

constexpr int kFont = cv::FONT_HERSHEY_SIMPLEX;
constexpr size_t kMaxCaptionLines = 3;

// The caption as at most kMaxCaptionLines lines that fit `width` pixels, broken at spaces where
// possible, "..." when cut; non-ASCII characters become '?' (Hershey fonts are ASCII only).
std::vector<std::string> wrap(const std::string& text, int width, double font_scale) {
  std::string ascii;
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {
      if ((c & 0xC0) != 0x80) ascii.push_back('?');  // one '?' per character, not per byte
    } else {
      ascii.push_back(c == '\n' || c == '\t' ? ' ' : char(c));
    }
  }
  auto fits = [&](const std::string& s) {
    int base = 0;
    return cv::getTextSize(s, kFont, font_scale, 1, &base).width <= width;
  };
  std::vector<std::string> lines;
  size_t pos = 0;
  while (pos < ascii.size() && lines.size() < kMaxCaptionLines) {
    size_t n = 1;
    while (pos + n < ascii.size() && fits(ascii.substr(pos, n + 1))) ++n;
    if (pos + n < ascii.size()) {
      const size_t space = ascii.rfind(' ', pos + n);
      if (space != std::string::npos && space > pos) n = space - pos;
    }
    lines.push_back(ascii.substr(pos, n));
    pos += n;
    while (pos < ascii.size() && ascii[pos] == ' ') ++pos;
  }
  if (pos < ascii.size() && !lines.empty()) {
    std::string& last = lines.back();
    while (!last.empty() && !fits(last + "...")) last.pop_back();
    last += "...";
  }
  return lines;
}

// The legend strip under the image.
cv::Mat legend(int width, const std::vector<SegMask>& masks, const std::string& caption, int64_t pixels) {
  const double scale = std::max(0.35, std::min(0.8, width / 900.0));
  const int line_h = int(30 * scale + 0.5) + 4, margin = int(8 * scale + 0.5) + 2;
  std::vector<std::pair<std::string, cv::Scalar>> lines;
  for (auto& l : wrap(caption, width - 2 * margin, scale)) lines.push_back({l, {255, 255, 255}});
  if (masks.empty()) lines.push_back({"no target", {160, 160, 160}});
  for (size_t i = 0; i < masks.size(); ++i) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "mask %zu: score %.3f, %lld px (%.1f%%)", i, double(masks[i].score),
                  static_cast<long long>(masks[i].area), pixels ? 100.0 * double(masks[i].area) / double(pixels) : 0.0);
    lines.push_back({buf, kPalette[i % 6]});
  }
  cv::Mat strip(int(lines.size()) * line_h + 2 * margin, width, CV_8UC3, cv::Scalar(30, 30, 30));
  for (size_t i = 0; i < lines.size(); ++i)
    cv::putText(strip, lines[i].first, {margin, margin + int(i + 1) * line_h - line_h / 4}, kFont, scale,
                lines[i].second, 1, cv::LINE_AA);
  return strip;
}

}  // namespace

cv::Mat draw_overlay(const cv::Mat& image, ColorOrder order, const std::vector<SegMask>& masks,
                     const std::string& caption) {
  cv::Mat rgb = to_rgb(image, order, "overlay image");
  cv::Mat out;
  cv::cvtColor(rgb, out, cv::COLOR_RGB2BGR);
  for (size_t i = 0; i < masks.size(); ++i) {
    const cv::Mat& m = masks[i].mask;
    if (m.size() != out.size()) fail("overlay: mask ", i, " is ", m.cols, "x", m.rows, ", image is ", out.cols, "x", out.rows);
    cv::Scalar color = kPalette[i % 6];
    cv::Mat tint(out.size(), out.type(), color), blended;
    cv::addWeighted(out, 0.5, tint, 0.5, 0, blended);
    blended.copyTo(out, m);
    std::vector<std::vector<cv::Point>> contours;
    cv::findContours(m.clone(), contours, cv::RETR_EXTERNAL, cv::CHAIN_APPROX_SIMPLE);
    cv::drawContours(out, contours, -1, color, 2);
  }
  if (caption.empty()) return out;
  cv::Mat with_legend;
  cv::vconcat(out, legend(out.cols, masks, caption, int64_t(out.total())), with_legend);
  return with_legend;
}

cv::Mat draw_overlay(const cv::Mat& image, ColorOrder order, const SegmentResult& result, const std::string& caption) {
  static const std::vector<SegMask> none;
  return draw_overlay(image, order, result.has_target() ? result.masks : none, caption);
}

}  // namespace reasonseg
