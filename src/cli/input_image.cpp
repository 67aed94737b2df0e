#include "cli/input_image.hpp"

#include <cstdio>

#include "reasonseg/image_io.hpp"
#include "util/error.hpp"

namespace reasonseg::cli {

cv::Mat read_input_image(const std::string& command, const std::string& path, int64_t max_pixels,
                         std::vector<std::string>* warnings) {
  std::vector<std::string> found;
  cv::Mat image = read_image_file(path, true, max_pixels, &found);
  for (auto& w : found)
    std::fprintf(stderr, "reasonseg %s: warning: %s: %s\n", command.c_str(), printable(path).c_str(), w.c_str());
  if (warnings) warnings->insert(warnings->end(), found.begin(), found.end());
  return image;
}

}  // namespace reasonseg::cli
