#include "pipeline/image_encoding.hpp"

#include <ATen/ATen.h>

#include "pipeline/stage_clock.hpp"
#include "pipeline/trace.hpp"

namespace reasonseg {

void encode_image_state(const LoadedModel& m, ImageState& st, TraceSink* trace) {
  torch::NoGradGuard no_grad;
  StageClock clip_clock(m.device);
  auto pixels = clip_preprocess(st.rgb, m.cfg.clip_preprocess);
  std::vector<torch::Tensor> all;
  auto hs = m.clip->forward(pixels.to(m.device, m.dtype), trace ? &all : nullptr);
  auto feats = m.cfg.mm_vision_select_feature == "patch" ? hs.narrow(1, 1, hs.size(1) - 1) : hs;
  auto proj = m.model->projector.forward(feats);
  st.clip_features = proj[0];
  report(trace, "clip_pixel_values", pixels);
  if (trace) report(trace, "clip_hidden_states", at::cat(all, 0));
  report(trace, "vision_tower_features", feats);
  report(trace, "mm_projector_out", proj);
  st.encode_ms["clip"] = clip_clock.ms();

  st.sam_input = sam_preprocess(st.rgb, m.cfg.sam);
  report(trace, "sam_input", st.sam_input.pixels);
  auto sam_pixels = st.sam_input.pixels.to(m.device, m.dtype);
  st.sam_input.pixels = torch::Tensor();
  auto encode = [&m, &st, sam_pixels, trace] {
    torch::NoGradGuard ng;
    st.sam_embedding = m.model->sam.image_encoder.forward(sam_pixels);
    report(trace, "sam_image_embeddings", st.sam_embedding);
  };
  if (m.device.is_cuda() && m.opt.overlap_sam_encoder) {
    st.sam_work = run_on_side_stream(m.device, {sam_pixels}, encode);
  } else {
    StageClock sam_clock(m.device);
    encode();
    st.encode_ms["sam_encoder"] = sam_clock.ms();
  }
}

void join_sam_encoder(ImageState& st) {
  if (!st.sam_work) return;
  st.sam_work->join({st.sam_embedding});
  st.encode_ms["sam_encoder"] = st.sam_work->elapsed_ms();
  st.sam_work.reset();
}

}  // namespace reasonseg
