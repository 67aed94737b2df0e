#include <opencv2/core.hpp>

#include "reasonseg/eval.hpp"
#include "util/error.hpp"

namespace reasonseg {

IoUCounts intersection_union(const cv::Mat& pred, const cv::Mat& gt) {
  if (pred.size() != gt.size())
    fail("metrics: prediction is ", pred.cols, "x", pred.rows, " but the ground truth is ", gt.cols, "x", gt.rows);
  if (pred.type() != CV_8U || gt.type() != CV_8U) fail("metrics: masks must be CV_8U");
  int64_t inter = 0, area_pred = 0, area_gt = 0;
  for (int y = 0; y < gt.rows; ++y) {
    const uint8_t* p = pred.ptr<uint8_t>(y);
    const uint8_t* g = gt.ptr<uint8_t>(y);
    for (int x = 0; x < gt.cols; ++x) {
      if (g[x] == 255) continue;  // ignore_index: excluded from both prediction and target
      bool fp = p[x] != 0, fg = g[x] == 1;
      inter += fp && fg;
      area_pred += fp;
      area_gt += fg;
    }
  }
  IoUCounts c;
  c.intersection = double(inter);
  c.union_ = double(area_pred + area_gt - inter);
  return c;
}

void MetricAccumulator::add(const IoUCounts& c) {
  double iou = c.iou();
  sum_iou_ += iou;
  inter_ += c.intersection;
  union_ += c.union_;
  ++n_;
  above_ += iou > 0.5;
}

}  // namespace reasonseg
