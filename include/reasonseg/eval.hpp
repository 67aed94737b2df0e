// ReasonSeg-format data and the metrics of LISA's validation (gIoU, cIoU) plus Acc@0.5.
#pragma once
#include <opencv2/core.hpp>
#include <string>
#include <vector>

namespace reasonseg {

// One labelled polygon of a ReasonSeg JSON ("target", "ignore"; "flag" entries are skipped).
struct Polygon {
  std::string label;
  std::vector<cv::Point2d> points;
};

struct ReasonSegSample {
  std::string name;                // file stem: NAME.json + NAME.jpg
  std::string image_path;
  std::vector<std::string> texts;  // instructions; LISA's validation uses the first
  bool is_sentence = false;
  std::vector<Polygon> polygons;
};

// NAME stems of every NAME.json in `dir`, sorted.
std::vector<std::string> list_reasonseg_samples(const std::string& dir);
// Reads NAME.json (UTF-8, falling back to cp1252 like LISA) and locates the image; a malformed
// file (bad JSON, wrong types, no image, polygons with < 3 points) throws Error naming the file.
ReasonSegSample load_reasonseg_sample(const std::string& dir, const std::string& name);
// Checks polygons against the image size: coordinates more than one image size outside are errors.
void validate_polygons(const ReasonSegSample& s, int height, int width);

// LISA's ground truth raster: polygons sorted by drawn pixel count (largest first, ties as
// numpy's argsort()[::-1]), each drawn as closed outline + fill with OpenCV: 1 target, 255 ignore.
cv::Mat rasterize_ground_truth(const std::vector<Polygon>& polygons, int height, int width);

// The prompt of LISA's validation: "{text} Please output segmentation mask." for sentences,
// "What is {text} in this image? Please output segmentation mask." otherwise.
std::string reasonseg_question(const std::string& text, bool is_sentence);

// Foreground intersection and union over pixels whose ground truth is not 255 (ignore).
struct IoUCounts {
  double intersection = 0, union_ = 0;
  // LISA's per-sample IoU: inter / (union + 1e-5), and 1 when the union is empty.
  double iou() const { return union_ == 0 ? 1.0 : intersection / (union_ + 1e-5); }
};
// `pred`: CV_8U, non-zero = foreground; `gt`: CV_8U with 0, 1 and 255 (ignore).
IoUCounts intersection_union(const cv::Mat& pred, const cv::Mat& gt);

// Accumulates samples. gIoU = Σ IoU / (n + 1e-5) (LISA's AverageMeter); cIoU = Σ inter /
// (Σ union + 1e-10); Acc@0.5 = fraction of samples with IoU > 0.5 (not in LISA; defined here).
class MetricAccumulator {
 public:
  void add(const IoUCounts& c);
  double giou() const { return sum_iou_ / (n_ + 1e-5); }
  double ciou() const { return inter_ / (union_ + 1e-10); }
  double acc_at_05() const { return n_ ? double(above_) / n_ : 0.0; }
  int64_t count() const { return n_; }

 private:
  double sum_iou_ = 0, inter_ = 0, union_ = 0;
  int64_t n_ = 0, above_ = 0;
};

}  // namespace reasonseg
