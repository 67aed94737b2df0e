// Stage 2, image state: CLIP (with the projector) and SAM's image encoder, once per image.
#pragma once
#include <map>
#include <string>

#include "pipeline/image_state.hpp"
#include "pipeline/loaded_model.hpp"
#include "reasonseg/trace.hpp"

namespace reasonseg {

// Encodes st.rgb for both branches. On CUDA (SegmenterOptions::overlap_sam_encoder) SAM's encoder
// is only queued on a second stream, so that it overlaps whatever the caller queues next (the
// prefill); join_sam_encoder waits for it.
void encode_image_state(const LoadedModel& m, ImageState& st, TraceSink* trace);

// Makes the device's current stream wait for SAM's encoder if it ran on a second stream, and
// records its device time in st.encode_ms. Call before reading st.sam_embedding.
void join_sam_encoder(ImageState& st);

}  // namespace reasonseg
