#include "image/decoders.hpp"

namespace reasonseg::image_decoders {

int exif_orientation(const uint8_t* tiff, size_t size) {
  if (!tiff || size < 8) return 1;
  bool little;
  if (tiff[0] == 'I' && tiff[1] == 'I') little = true;
  else if (tiff[0] == 'M' && tiff[1] == 'M') little = false;
  else return 1;
  auto u16 = [&](size_t at) -> uint32_t {
    return little ? uint32_t(tiff[at]) | uint32_t(tiff[at + 1]) << 8 : uint32_t(tiff[at]) << 8 | tiff[at + 1];
  };
  auto u32 = [&](size_t at) -> uint64_t { return little ? u16(at) | uint64_t(u16(at + 2)) << 16 : uint64_t(u16(at)) << 16 | u16(at + 2); };
  if (u16(2) != 42) return 1;
  const uint64_t ifd = u32(4);
  if (ifd > size - 2) return 1;
  const uint64_t entries = u16(size_t(ifd));
  for (uint64_t i = 0; i < entries; ++i) {
    const uint64_t at = ifd + 2 + 12 * i;
    if (at + 12 > size) return 1;
    if (u16(size_t(at)) == 0x0112) {
      // Read as cv::imread reads it: the first 16 bits of the value field, whatever the entry's type.
      const int value = int(u16(size_t(at + 8)));
      return value >= 1 && value <= 8 ? value : 1;
    }
  }
  return 1;
}

cv::Mat apply_exif_orientation(const cv::Mat& image, int orientation) {
  cv::Mat out;
  switch (orientation) {
    case 2: cv::flip(image, out, 1); return out;    // mirrored left-right
    case 3: cv::flip(image, out, -1); return out;   // rotated 180
    case 4: cv::flip(image, out, 0); return out;    // mirrored top-bottom
    case 5: cv::transpose(image, out); return out;  // mirrored along the main diagonal
    case 6: cv::transpose(image, out); cv::flip(out, out, 1); return out;   // rotated 90 clockwise
    case 7: cv::transpose(image, out); cv::flip(out, out, -1); return out;  // mirrored along the other diagonal
    case 8: cv::transpose(image, out); cv::flip(out, out, 0); return out;   // rotated 90 counter-clockwise
    default: return image;
  }
}

}  // namespace reasonseg::image_decoders
