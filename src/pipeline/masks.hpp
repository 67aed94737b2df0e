// Stage 5, masks: SAM's prompt encoder (points, box, [SEG] embeddings), mask decoder and LISA's
// post-processing to the original image size.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "pipeline/image_state.hpp"
#include "pipeline/loaded_model.hpp"
#include "reasonseg/options.hpp"
#include "reasonseg/segmenter.hpp"
#include "reasonseg/trace.hpp"

namespace reasonseg {

// [SEG] hidden states [n, H] -> text_hidden_fcs -> n masks; with an undefined `seg_hidden`, one mask
// from q's points and box alone (plain SAM). Times: text_hidden_fcs, mask_decoder, postprocess.
std::vector<SegMask> decode_masks(const LoadedModel& m, ImageState& st, const torch::Tensor& seg_hidden,
                                  const QueryOptions& q, TraceSink* trace, std::map<std::string, double>& ms);

}  // namespace reasonseg
