// The one check of an image's size against its pixel limit (SegmenterOptions::max_image_pixels),
// made on every header before anything is allocated for the pixels.
#pragma once
#include <cstdint>
#include <string>

#include "util/error.hpp"

namespace reasonseg {

// Width and height come from untrusted headers (up to 2^32 each): compared by division, never multiplied.
inline void check_pixel_limit(const std::string& path, int64_t width, int64_t height, int64_t max_pixels) {
  if (width <= 0 || height <= 0) fail(path, ": the image header gives a size of ", width, "x", height);
  if (width > max_pixels / height)
    fail(path, ": the image is ", width, "x", height, " = ", double(width) * double(height),
         " pixels, over the limit of ", max_pixels, " (SegmenterOptions::max_image_pixels, CLI --max-image-pixels)");
}

}  // namespace reasonseg
