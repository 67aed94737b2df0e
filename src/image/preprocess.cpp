#include "image/preprocess.hpp"

#include <opencv2/imgproc.hpp>

#include "image/pillow_resample.hpp"
#include "reasonseg/image.hpp"
#include "util/error.hpp"

namespace reasonseg {

cv::Mat to_rgb(const cv::Mat& image, ColorOrder order, const char* what) {
  if (image.empty()) fail(what, ": image is empty");
  if (image.depth() != CV_8U) fail(what, ": expected an 8-bit image (got depth ", image.depth(), ")");
  if (image.dims != 2 || image.rows <= 0 || image.cols <= 0) fail(what, ": image has no pixels");
  cv::Mat out;
  switch (image.channels()) {
    case 1: cv::cvtColor(image, out, cv::COLOR_GRAY2RGB); break;
    case 3:
      if (order == ColorOrder::BGR) cv::cvtColor(image, out, cv::COLOR_BGR2RGB);
      else out = image.clone();
      break;
    case 4: cv::cvtColor(image, out, order == ColorOrder::BGR ? cv::COLOR_BGRA2RGB : cv::COLOR_RGBA2RGB); break;
    default: fail(what, ": expected 1, 3 or 4 channels (got ", image.channels(), ")");
  }
  if (!out.isContinuous()) out = out.clone();
  return out;
}

torch::Tensor clip_preprocess(const cv::Mat& rgb, const ClipPreprocessConfig& cfg) {
  cv::Mat img = rgb;
  int rw = img.cols, rh = img.rows;  // size after the resize
  if (cfg.do_resize) {
    // transformers' get_resize_output_image_size(default_to_square=False).
    const int h = img.rows, w = img.cols;
    const int short_side = std::min(h, w), long_side = std::max(h, w);
    if (short_side != cfg.shortest_edge) {
      const int new_short = cfg.shortest_edge;
      const double new_long = double(cfg.shortest_edge) * long_side / short_side;
      if (new_long > 1e9) fail("clip preprocessing: a ", w, "x", h, " image is too elongated to resize");
      rh = w <= h ? int(new_long) : new_short;
      rw = w <= h ? new_short : int(new_long);
    }
  }
  // The centre crop as a window of the resize: only the cropped pixels are computed.
  cv::Rect window(0, 0, rw, rh);
  if (cfg.do_center_crop) {
    if (rh < cfg.crop_height || rw < cfg.crop_width)
      fail("clip preprocessing: image of ", rw, "x", rh, " is smaller than the ", cfg.crop_width, "x",
           cfg.crop_height, " crop");
    window = cv::Rect((rw - cfg.crop_width) / 2, (rh - cfg.crop_height) / 2, cfg.crop_width, cfg.crop_height);
  }
  const auto filter = cfg.resample == 2 ? PillowFilter::Bilinear : PillowFilter::Bicubic;
  if (rw != img.cols || rh != img.rows) img = pillow_resize_window(img, rw, rh, filter, window);
  else if (cfg.do_center_crop) img = img(window).clone();
  const int H = img.rows, W = img.cols;
  auto out = torch::empty({1, 3, H, W}, torch::kFloat32);
  float* o = out.data_ptr<float>();
  for (int c = 0; c < 3; ++c) {
    const float mean = float(cfg.image_mean[c]), stdv = float(cfg.image_std[c]);
    for (int y = 0; y < H; ++y) {
      const uint8_t* row = img.ptr<uint8_t>(y);
      for (int x = 0; x < W; ++x) {
        // rescale in float64 then cast to float32; normalise in float32 (numpy's order).
        float v = cfg.do_rescale ? float(double(row[x * 3 + c]) * cfg.rescale_factor) : float(row[x * 3 + c]);
        if (cfg.do_normalize) v = (v - mean) / stdv;
        o[(size_t(c) * H + y) * W + x] = v;
      }
    }
  }
  return out;
}

std::pair<int, int> sam_resized_shape(int h, int w, int target) {
  double scale = target * 1.0 / std::max(h, w);
  double nh = h * scale, nw = w * scale;
  return {int(nh + 0.5), int(nw + 0.5)};
}

SamInput sam_preprocess(const cv::Mat& rgb, const SamConfig& cfg) {
  auto [nh, nw] = sam_resized_shape(rgb.rows, rgb.cols, cfg.image_size);
  if (nh <= 0 || nw <= 0)
    fail("sam preprocessing: image of ", rgb.cols, "x", rgb.rows, " is too thin to resize to ", cfg.image_size);
  cv::Mat img = pillow_resize(rgb, nw, nh, PillowFilter::Bilinear);
  const int S = cfg.image_size;
  SamInput in;
  in.resized_h = nh;
  in.resized_w = nw;
  in.pixels = torch::zeros({1, 3, S, S}, torch::kFloat32);
  float* o = in.pixels.data_ptr<float>();
  for (int c = 0; c < 3; ++c) {
    const float mean = float(cfg.pixel_mean[c]), stdv = float(cfg.pixel_std[c]);
    for (int y = 0; y < nh; ++y) {
      const uint8_t* row = img.ptr<uint8_t>(y);
      for (int x = 0; x < nw; ++x) o[(size_t(c) * S + y) * S + x] = (float(row[x * 3 + c]) - mean) / stdv;
    }
  }
  return in;
}

}  // namespace reasonseg
