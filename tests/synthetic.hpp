// A small ReasonSeg-format dataset written by the tests, with known metrics.
#pragma once
#include <string>

#include "fixture.hpp"

namespace rstest {

// Creates DIR with 20x20 images and JSON files:
//   a_half     target 10x10 square; prediction a_half.png covers its left half (IoU 50/100)
//   b_ignore   target 10x10 whose right half is an ignore polygon; prediction covers all 10x10 (IoU 1)
//   c_empty    no target, no prediction file (IoU 1, listed as a missing prediction)
//   d_cp1252   cp1252-encoded text, a "Flag" shape, is_sentence; prediction equals the target (IoU 1)
//   e_two_points, f_no_image, g_bad_json: malformed samples
// Predictions go to DIR/preds. Returns DIR.
std::string make_synthetic_reasonseg(const std::string& tag);

}  // namespace rstest
