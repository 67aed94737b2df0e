// ReasoningSegmenter: a thin facade that runs the pipeline's stages in order (src/pipeline/):
// loading, image encoding, prompt and key/value cache, generation, masks.
#include "reasonseg/segmenter.hpp"

#include <torch/types.h>

#include <chrono>
#include <cmath>

#include "pipeline/generation.hpp"
#include "pipeline/image_encoding.hpp"
#include "pipeline/image_state.hpp"
#include "pipeline/loaded_model.hpp"
#include "pipeline/masks.hpp"
#include "pipeline/prompt_cache.hpp"
#include "pipeline/stage_clock.hpp"
#include "util/error.hpp"

namespace reasonseg {

std::string to_string(StopReason r) {
  switch (r) {
    case StopReason::Eos: return "eos";
    case StopReason::MaxNewTokens: return "max_new_tokens";
    case StopReason::Context: return "context";
    case StopReason::TeacherForced: return "teacher_forced";
    case StopReason::Prompts: return "prompts";
    case StopReason::Cancelled: return "cancelled";
    case StopReason::Deadline: return "deadline";
  }
  return "?";
}

// ---- per-image state ------------------------------------------------------------------------

struct ImageContext::State : ImageState {
  double encode_wall_ms = 0;  // host time of encode_image, counted into the first query's total
  std::vector<ConversationTurn> history;
};

ImageContext::ImageContext() = default;
ImageContext::~ImageContext() = default;
ImageContext::ImageContext(ImageContext&&) noexcept = default;
ImageContext& ImageContext::operator=(ImageContext&&) noexcept = default;
int ImageContext::width() const { return state_ ? state_->rgb.cols : 0; }
int ImageContext::height() const { return state_ ? state_->rgb.rows : 0; }

const std::vector<ConversationTurn>& ImageContext::history() const {
  static const std::vector<ConversationTurn> none;
  return state_ ? state_->history : none;
}

void ImageContext::set_history(std::vector<ConversationTurn> turns) {
  if (!state_) fail("set_history: the ImageContext is empty (create it with encode_image)");
  state_->history = std::move(turns);
}

void ImageContext::truncate_history(size_t turns) {
  if (state_ && turns < state_->history.size()) state_->history.resize(turns);
}

// ---- the model --------------------------------------------------------------------------------

struct ReasoningSegmenter::Impl {
  std::unique_ptr<LoadedModel> m;
  TextPrefixCache prefix;

  SegmentResult run(ImageContext& ctx, const std::string& text, const std::string* answer, const QueryOptions& q,
                    TraceSink* trace) const;
};

SegmentResult ReasoningSegmenter::Impl::run(ImageContext& ctx, const std::string& text, const std::string* answer,
                                            const QueryOptions& q, TraceSink* trace) const {
  if (!ctx.state_) fail("segment: the ImageContext is empty (create it with encode_image)");
  auto& st = *ctx.state_;
  torch::NoGradGuard no_grad;
  SegmentResult r;
  StageClock total(m->device), tokenize(m->device);
  if (q.timeout_ms < 0 || !std::isfinite(q.timeout_ms)) fail("QueryOptions::timeout_ms: ", q.timeout_ms, " is not >= 0");
  DecodeControl control;
  if (q.timeout_ms > 0) {
    control.has_deadline = true;
    control.deadline = std::chrono::steady_clock::now() +
                       std::chrono::microseconds(int64_t(std::min(q.timeout_ms, 1e12) * 1000.0));
  }
  static const std::vector<ConversationTurn> no_history;
  const auto& history = q.continue_conversation ? st.history : no_history;
  PromptPlan plan = plan_prompt(*m, text, answer, history);
  r.input_ids = plan.input_ids;
  const int max_new = answer ? 0 : (q.max_new_tokens >= 0 ? q.max_new_tokens : m->opt.max_new_tokens);
  r.timings_ms["tokenize"] = tokenize.ms();

  // Reuse keys/values up to the position before the last (its logits start decoding) and before
  // the first teacher-forced [SEG] row (its hidden state is needed).
  int64_t limit = int64_t(plan.seq.size()) - 1;
  if (!plan.seg_rows.empty()) limit = std::min(limit, plan.seg_rows.front());
  const int64_t keep = reuse_cache(*m, prefix, st, plan, limit, max_new);
  TextStream stream(*m->tok, q.on_text);
  if (stream.active()) control.stream = &stream;
  Generation g = generate(*m, st, plan, keep, answer != nullptr, max_new, q, control, trace, r.timings_ms);
  if (stream.active() && g.stopped_by != StopReason::Cancelled) stream.finish();
  r.stopped_by = g.stopped_by;
  r.prefill_tokens = g.prefill_tokens;
  r.decode_tokens = g.decode_tokens;
  if (answer) {
    auto prompt_only = tokenize_prompt(*m->tok, build_prompt(m->tpl, text, m->cfg.mm_use_im_start_end, nullptr, history),
                                       m->opt.allow_special_tokens_in_prompt);
    r.output_ids.assign(r.input_ids.begin() + std::min(prompt_only.size(), r.input_ids.size()), r.input_ids.end());
  } else {
    r.output_ids = g.output_ids;
  }
  std::vector<int64_t> answer_ids;  // generated ids without EOS: a conversation's history keeps them
  if (answer) {
    r.answer = *answer;
  } else {
    answer_ids = r.output_ids;
    if (g.stopped_by == StopReason::Eos && !answer_ids.empty()) answer_ids.pop_back();
    r.answer = m->tok->decode(answer_ids);
  }
  const bool sesame = m->family == ModelFamily::Sesame;
  if (sesame) {
    // SESAME's demo prints the new tokens decoded without special tokens.
    r.text = r.chat_text = m->tok->decode(r.output_ids, true);
  } else {
    std::vector<int64_t> all(r.input_ids);
    if (!answer) all.insert(all.end(), r.output_ids.begin(), r.output_ids.end());
    r.text = chat_cleanup(m->tok->decode(r.output_ids));
    r.chat_text = chat_cleanup(m->tok->decode(all));
  }
  // SESAME's evaluate() returns the first [SEG]'s mask only.
  if (g.seg_hidden.defined() && sesame) g.seg_hidden = g.seg_hidden.narrow(0, 0, 1);
  if (g.seg_hidden.defined()) r.masks = decode_masks(*m, st, g.seg_hidden, q, trace, r.timings_ms);
  r.target_present = !r.masks.empty() && (!sesame || r.masks[0].area > 0);
  join_sam_encoder(st);  // the first query reports the whole encoding, SAM's included
  double total_ms = total.ms();
  if (!st.encode_ms.empty()) {
    for (auto& [k, v] : st.encode_ms) r.timings_ms[k] = v;
    total_ms += st.encode_wall_ms;
    st.encode_ms.clear();
  }
  r.timings_ms["total"] = total_ms;
  if (q.continue_conversation) st.history.push_back({text, r.answer, std::move(answer_ids)});
  return r;
}

// ---- public API ---------------------------------------------------------------------------------

ReasoningSegmenter::ReasoningSegmenter(const SegmenterOptions& options) : impl_(std::make_unique<Impl>()) {
  impl_->m = load_model(options);
}
ReasoningSegmenter::~ReasoningSegmenter() = default;
ReasoningSegmenter::ReasoningSegmenter(ReasoningSegmenter&&) noexcept = default;

ImageContext ReasoningSegmenter::encode_image(const cv::Mat& image, ColorOrder order, TraceSink* trace) const {
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t pixels = int64_t(image.rows) * image.cols;
  if (pixels > impl_->m->opt.max_image_pixels)
    fail("image: ", image.cols, "x", image.rows, " = ", pixels, " pixels is over the limit of ",
         impl_->m->opt.max_image_pixels, " (SegmenterOptions::max_image_pixels)");
  ImageContext ctx;
  ctx.state_ = std::make_unique<ImageContext::State>();
  ctx.state_->rgb = to_rgb(image, order, "image");
  encode_image_state(*impl_->m, *ctx.state_, trace);
  ctx.state_->encode_wall_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return ctx;
}

SegmentResult ReasoningSegmenter::segment(ImageContext& ctx, const std::string& instruction, const QueryOptions& q,
                                          TraceSink* trace) const {
  return impl_->run(ctx, instruction, nullptr, q, trace);
}

SegmentResult ReasoningSegmenter::segment(const cv::Mat& image, const std::string& instruction, ColorOrder order,
                                          const QueryOptions& q) const {
  auto ctx = encode_image(image, order);
  return segment(ctx, instruction, q);
}

SegmentResult ReasoningSegmenter::segment_teacher_forced(ImageContext& ctx, const std::string& question,
                                                         const std::string& answer, const QueryOptions& q,
                                                         TraceSink* trace) const {
  return impl_->run(ctx, question, &answer, q, trace);
}

SegmentResult ReasoningSegmenter::segment_prompts(ImageContext& ctx, const std::vector<PointPrompt>& points,
                                                  const BoxPrompt* box) const {
  if (!ctx.state_) fail("segment_prompts: the ImageContext is empty (create it with encode_image)");
  if (points.empty() && !box) fail("segment_prompts: give at least one point or a box");
  torch::NoGradGuard no_grad;
  SegmentResult r;
  r.stopped_by = StopReason::Prompts;
  QueryOptions q;
  q.points = points;
  if (box) q.box = *box;
  r.masks = decode_masks(*impl_->m, *ctx.state_, torch::Tensor(), q, nullptr, r.timings_ms);
  r.target_present = !r.masks.empty();
  return r;
}

std::string ReasoningSegmenter::prompt_text(const std::string& instruction) const {
  return build_prompt(impl_->m->tpl, instruction, impl_->m->cfg.mm_use_im_start_end).text;
}

std::vector<int64_t> ReasoningSegmenter::prompt_ids(const std::string& instruction) const {
  const auto& m = *impl_->m;
  return tokenize_prompt(*m.tok, build_prompt(m.tpl, instruction, m.cfg.mm_use_im_start_end),
                         m.opt.allow_special_tokens_in_prompt);
}

Device ReasoningSegmenter::device() const { return impl_->m->device.is_cuda() ? Device::CUDA : Device::CPU; }
DType ReasoningSegmenter::dtype() const { return impl_->m->dtype_enum; }
ModelFamily ReasoningSegmenter::family() const { return impl_->m->family; }
int ReasoningSegmenter::seg_token_id() const { return impl_->m->seg_id; }
double ReasoningSegmenter::load_seconds() const { return impl_->m->load_s; }

int64_t ReasoningSegmenter::weight_bytes() const {
  return loaded_bytes(*impl_->m->model) + loaded_bytes(*impl_->m->clip);
}

int64_t ReasoningSegmenter::decode_weight_bytes() const {
  // Every decoder layer, the final norm and lm_head as held (int8 + scales where quantized), plus
  // the one embedding row a token reads.
  const auto& c = impl_->m->cfg.llm;
  return loaded_bytes(*impl_->m->model, {"model.layers.", "model.norm.", "lm_head."}) +
         int64_t(c.hidden_size) * int64_t(c10::elementSize(impl_->m->dtype));
}

Quantization ReasoningSegmenter::quantization() const {
  return impl_->m->quant_group > 0 ? Quantization::Int8 : Quantization::None;
}

}  // namespace reasonseg
