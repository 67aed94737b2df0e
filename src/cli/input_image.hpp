// Reading an input image for a CLI command: the decoder's warnings about a damaged but readable file
// (image_io.hpp) are printed as "reasonseg COMMAND: warning: FILE: ..." and returned, for the JSON.
#pragma once
#include <opencv2/core.hpp>
#include <string>
#include <vector>

namespace reasonseg::cli {

cv::Mat read_input_image(const std::string& command, const std::string& path, int64_t max_pixels,
                         std::vector<std::string>* warnings = nullptr);

}  // namespace reasonseg::cli
