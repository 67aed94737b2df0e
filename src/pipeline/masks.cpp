#include "pipeline/masks.hpp"

#include <ATen/ATen.h>

#include <opencv2/imgproc.hpp>

#include "pipeline/finite.hpp"
#include "pipeline/image_encoding.hpp"
#include "pipeline/stage_clock.hpp"
#include "pipeline/trace.hpp"
#include "util/error.hpp"

namespace reasonseg {

std::vector<SegMask> decode_masks(const LoadedModel& m, ImageState& st, const torch::Tensor& seg_hidden,
                                  const QueryOptions& q, TraceSink* trace, std::map<std::string, double>& ms) {
  torch::Tensor text_embeds;
  if (seg_hidden.defined()) {
    StageClock fcs_clock(m.device);
    text_embeds = m.model->text_hidden_fcs.forward(seg_hidden);
    require_finite(text_embeds, "the [SEG] embeddings (text_hidden_fcs output)");
    ms["text_hidden_fcs"] = fcs_clock.ms();
    report(trace, "seg_hidden_states", seg_hidden);
    report(trace, "seg_embeddings", text_embeds);
  }
  join_sam_encoder(st);
  StageClock decoder_clock(m.device);
  const int H = st.rgb.rows, W = st.rgb.cols;
  // Prompts given in original pixels move to the resized SAM frame (ResizeLongestSide.apply_coords).
  const float sx = float(st.sam_input.resized_w) / W, sy = float(st.sam_input.resized_h) / H;
  std::vector<SamPoint> pts;
  for (auto& p : q.points) {
    if (p.label != 0 && p.label != 1) fail("point prompt label must be 0 or 1 (got ", p.label, ")");
    pts.push_back({p.x * sx, p.y * sy, p.label});
  }
  SamBox box{};
  if (q.box) box = {q.box->x0 * sx, q.box->y0 * sy, q.box->x1 * sx, q.box->y1 * sy};
  auto& sam = m.model->sam;
  auto sparse = sam.prompt_encoder.sparse(pts, q.box ? &box : nullptr,
                                          text_embeds.defined() ? text_embeds.unsqueeze(1) : text_embeds);
  sparse = sparse.to(st.sam_embedding.scalar_type());
  const int64_t n = sparse.size(0);
  auto out = sam.mask_decoder.forward(st.sam_embedding, sam.prompt_encoder.dense_pe(), sparse,
                                      sam.prompt_encoder.dense_no_mask(n));
  require_finite(out.masks, "the mask logits");
  require_finite(out.iou, "the mask scores (IoU predictions)");
  ms["mask_decoder"] = decoder_clock.ms();
  StageClock post_clock(m.device);
  // LISA's postprocess_masks: fp32, bilinear to the input square, crop the padding, bilinear
  // to the original size, threshold at 0.
  auto low = out.masks.to(torch::kFloat32);
  const int64_t S = m.cfg.sam.image_size;
  auto logits = at::upsample_bilinear2d(low, {S, S}, false);
  logits = logits.narrow(2, 0, st.sam_input.resized_h).narrow(3, 0, st.sam_input.resized_w);
  logits = at::upsample_bilinear2d(logits, {H, W}, false).select(1, 0).to(torch::kCPU).contiguous();
  auto bin = logits.gt(0).to(torch::kUInt8).contiguous();
  auto iou = out.iou.to(torch::kCPU, torch::kFloat32);
  std::vector<SegMask> masks;
  for (int64_t i = 0; i < n; ++i) {
    SegMask sm;
    cv::Mat b(H, W, CV_8U, bin[i].data_ptr<uint8_t>());
    sm.mask = b * 255;
    sm.area = cv::countNonZero(b);
    if (sm.area) sm.bbox = cv::boundingRect(b);
    sm.score = iou[i][0].item<float>();
    if (q.keep_logits) sm.logits = cv::Mat(H, W, CV_32F, logits[i].data_ptr<float>()).clone();
    masks.push_back(std::move(sm));
  }
  report(trace, "sam_sparse_embeddings", sparse);
  report(trace, "low_res_masks", low);
  report(trace, "iou_predictions", iou);
  report(trace, "mask_logits", logits);
  report(trace, "mask_binary", bin);
  ms["postprocess"] = post_clock.ms();
  return masks;
}

}  // namespace reasonseg
