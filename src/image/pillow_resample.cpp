#include "image/pillow_resample.hpp"

#include <cmath>
#include <vector>

#include "util/error.hpp"

namespace reasonseg {

namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;

double bilinear(double x) {
  if (x < 0.0) x = -x;
  return x < 1.0 ? 1.0 - x : 0.0;
}

double bicubic(double x) {
  const double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

struct Coeffs {
  int ksize = 0;
  std::vector<int> bounds;  // xmin, count per output pixel
  std::vector<int> k;       // fixed-point weights, ksize per output pixel
};

// Weights of output pixels [first, first + count) of an in_size -> out_size resampling (each
// output pixel's weights depend on its own position only, so a window is exact).
Coeffs precompute(int in_size, int out_size, PillowFilter f, int first, int count) {
  const double support_base = f == PillowFilter::Bicubic ? 2.0 : 1.0;
  double scale = double(in_size) / out_size;
  double filterscale = scale < 1.0 ? 1.0 : scale;
  double support = support_base * filterscale;
  Coeffs c;
  c.ksize = int(std::ceil(support)) * 2 + 1;
  c.bounds.resize(size_t(count) * 2);
  c.k.assign(size_t(count) * c.ksize, 0);
  std::vector<double> w(c.ksize);
  for (int i = 0; i < count; ++i) {
    const int xx = first + i;
    double center = (xx + 0.5) * scale;
    double ww = 0.0, ss = 1.0 / filterscale;
    int xmin = int(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = int(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    for (int x = 0; x < xmax; ++x) {
      double v = f == PillowFilter::Bicubic ? bicubic((x + xmin - center + 0.5) * ss)
                                            : bilinear((x + xmin - center + 0.5) * ss);
      w[x] = v;
      ww += v;
    }
    for (int x = 0; x < xmax; ++x) {
      double v = ww != 0.0 ? w[x] / ww : w[x];
      c.k[size_t(i) * c.ksize + x] =
          v < 0 ? int(-0.5 + v * (1 << kPrecisionBits)) : int(0.5 + v * (1 << kPrecisionBits));
    }
    c.bounds[i * 2] = xmin;
    c.bounds[i * 2 + 1] = xmax;
  }
  return c;
}

inline uint8_t clip8(int v) {
  if (v >= (1 << kPrecisionBits << 8)) return 255;
  if (v <= 0) return 0;
  return uint8_t(v >> kPrecisionBits);
}

}  // namespace

cv::Mat pillow_resize(const cv::Mat& src, int out_w, int out_h, PillowFilter filter) {
  return pillow_resize_window(src, out_w, out_h, filter, cv::Rect(0, 0, out_w, out_h));
}

cv::Mat pillow_resize_window(const cv::Mat& src, int out_w, int out_h, PillowFilter filter, const cv::Rect& window) {
  if (src.empty()) fail("pillow_resize: empty image");
  if (src.depth() != CV_8U || src.channels() < 1 || src.channels() > 4)
    fail("pillow_resize: expected an 8-bit image with 1-4 channels");
  if (out_w <= 0 || out_h <= 0) fail("pillow_resize: output size ", out_w, "x", out_h, " is empty");
  if (window.x < 0 || window.y < 0 || window.width <= 0 || window.height <= 0 || window.x + window.width > out_w ||
      window.y + window.height > out_h)
    fail("pillow_resize: window outside the ", out_w, "x", out_h, " output");
  const int ch = src.channels();
  cv::Mat cur = src.isContinuous() ? src : src.clone();
  // Rows of the source the vertical pass reads (all of them when there is no vertical pass).
  Coeffs vc;
  int row0 = window.y, rows = window.height;
  if (out_h != cur.rows) {
    vc = precompute(cur.rows, out_h, filter, window.y, window.height);
    row0 = vc.bounds[0];
    const int last = vc.bounds[(window.height - 1) * 2] + vc.bounds[(window.height - 1) * 2 + 1];
    rows = last - row0;
  }
  // Horizontal pass over those rows, for the window's columns only.
  if (out_w != cur.cols) {
    Coeffs c = precompute(cur.cols, out_w, filter, window.x, window.width);
    cv::Mat tmp(rows, window.width, cur.type());
    for (int y = 0; y < rows; ++y) {
      const uint8_t* in = cur.ptr<uint8_t>(row0 + y);
      uint8_t* out = tmp.ptr<uint8_t>(y);
      for (int xx = 0; xx < window.width; ++xx) {
        const int xmin = c.bounds[xx * 2], xmax = c.bounds[xx * 2 + 1];
        const int* k = &c.k[size_t(xx) * c.ksize];
        for (int b = 0; b < ch; ++b) {
          int ss = 1 << (kPrecisionBits - 1);
          for (int x = 0; x < xmax; ++x) ss += in[(x + xmin) * ch + b] * k[x];
          out[xx * ch + b] = clip8(ss);
        }
      }
    }
    cur = tmp;
  } else {
    cur = cur(cv::Rect(window.x, row0, window.width, rows)).clone();
  }
  if (out_h != src.rows) {
    cv::Mat tmp(window.height, cur.cols, cur.type());
    const int row = cur.cols * ch;
    for (int yy = 0; yy < window.height; ++yy) {
      const int ymin = vc.bounds[yy * 2] - row0, ymax = vc.bounds[yy * 2 + 1];
      const int* k = &vc.k[size_t(yy) * vc.ksize];
      uint8_t* out = tmp.ptr<uint8_t>(yy);
      for (int i = 0; i < row; ++i) {
        int ss = 1 << (kPrecisionBits - 1);
        for (int y = 0; y < ymax; ++y) ss += cur.ptr<uint8_t>(y + ymin)[i] * k[y];
        out[i] = clip8(ss);
      }
    }
    cur = tmp;
  }
  return cur;
}

}  // namespace reasonseg
