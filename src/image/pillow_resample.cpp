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

Coeffs precompute(int in_size, int out_size, PillowFilter f) {
  const double support_base = f == PillowFilter::Bicubic ? 2.0 : 1.0;
  double scale = double(in_size) / out_size;
  double filterscale = scale < 1.0 ? 1.0 : scale;
  double support = support_base * filterscale;
  Coeffs c;
  c.ksize = int(std::ceil(support)) * 2 + 1;
  c.bounds.resize(size_t(out_size) * 2);
  c.k.assign(size_t(out_size) * c.ksize, 0);
  std::vector<double> w(c.ksize);
  for (int xx = 0; xx < out_size; ++xx) {
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
      c.k[size_t(xx) * c.ksize + x] =
          v < 0 ? int(-0.5 + v * (1 << kPrecisionBits)) : int(0.5 + v * (1 << kPrecisionBits));
    }
    c.bounds[xx * 2] = xmin;
    c.bounds[xx * 2 + 1] = xmax;
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
  if (src.empty()) fail("pillow_resize: empty image");
  if (src.depth() != CV_8U || src.channels() < 1 || src.channels() > 4)
    fail("pillow_resize: expected an 8-bit image with 1-4 channels");
  if (out_w <= 0 || out_h <= 0) fail("pillow_resize: output size ", out_w, "x", out_h, " is empty");
  const int ch = src.channels();
  if (src.cols == out_w && src.rows == out_h) return src.clone();

  cv::Mat cur = src.isContinuous() ? src : src.clone();
  if (out_w != cur.cols) {
    Coeffs c = precompute(cur.cols, out_w, filter);
    cv::Mat tmp(cur.rows, out_w, cur.type());
    for (int y = 0; y < cur.rows; ++y) {
      const uint8_t* in = cur.ptr<uint8_t>(y);
      uint8_t* out = tmp.ptr<uint8_t>(y);
      for (int xx = 0; xx < out_w; ++xx) {
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
  }
  if (out_h != cur.rows) {
    Coeffs c = precompute(cur.rows, out_h, filter);
    cv::Mat tmp(out_h, cur.cols, cur.type());
    const int row = cur.cols * ch;
    for (int yy = 0; yy < out_h; ++yy) {
      const int ymin = c.bounds[yy * 2], ymax = c.bounds[yy * 2 + 1];
      const int* k = &c.k[size_t(yy) * c.ksize];
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
