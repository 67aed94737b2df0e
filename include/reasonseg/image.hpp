// Image input conventions of reasonseg.
#pragma once
#include <opencv2/core.hpp>

namespace reasonseg {

// Channel order of a 3- or 4-channel 8-bit cv::Mat. OpenCV's imread gives BGR.
// 1-channel images are grayscale whatever the order says; a 4th channel is alpha and is
// dropped (as cv2.imread(IMREAD_COLOR) drops it), not composited.
enum class ColorOrder { BGR, RGB };

// Converts an 8-bit grayscale, BGR/RGB or BGRA/RGBA image to a continuous RGB CV_8UC3 copy.
// Anything else (empty, other depths, 2 channels) throws reasonseg::Error naming `what`.
cv::Mat to_rgb(const cv::Mat& image, ColorOrder order, const char* what = "image");

}  // namespace reasonseg
