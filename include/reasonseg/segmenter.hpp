// reasonseg::ReasoningSegmenter: image + instruction -> answer text + one mask per [SEG].
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "reasonseg/error.hpp"
#include "reasonseg/image.hpp"
#include "reasonseg/options.hpp"
#include "reasonseg/tokenizer.hpp"
#include "reasonseg/trace.hpp"

namespace reasonseg {

// One mask per [SEG] token, at the original image size.
struct SegMask {
  cv::Mat mask;     // CV_8U, 255 where the mask logit > 0, else 0
  cv::Mat logits;   // CV_32F logits (only with QueryOptions::keep_logits)
  float score = 0;  // SAM's IoU prediction for this mask
  int64_t area = 0; // foreground pixels
  cv::Rect bbox;    // tight box around the foreground (empty when area is 0)
};

// Why a query stopped producing tokens.
enum class StopReason {
  Eos,            // the model ended its answer
  MaxNewTokens,   // QueryOptions / SegmenterOptions::max_new_tokens reached
  Context,        // the model's context (max_position_embeddings) is full
  TeacherForced,  // segment_teacher_forced: no generation
  Prompts,        // segment_prompts: no language model
  Cancelled,      // QueryOptions::on_text returned false
  Deadline,       // QueryOptions::timeout_ms elapsed
};
// "eos", "max_new_tokens", "context", "teacher_forced", "prompts", "cancelled", "deadline"
std::string to_string(StopReason r);

struct SegmentResult {
  // The answer as the family's own program prints it: LISA and LISA++ decode the new tokens with
  // chat.py's cleanup (EOS shown as "</s>"); SESAME decodes them without special tokens.
  std::string text;
  std::string answer;               // the answer decoded without cleanup or EOS (what on_text streamed)
  std::string chat_text;            // the family's printed text: chat.py's prompt + answer (LISA, LISA++), `text` (SESAME)
  std::vector<int64_t> input_ids;   // prompt ids (with a conversation's earlier turns), the image as -200
  std::vector<int64_t> output_ids;  // generated ids (teacher forcing: the answer's ids)
  StopReason stopped_by = StopReason::MaxNewTokens;
  std::vector<SegMask> masks;       // one per [SEG] (SESAME: the first [SEG]'s only)
  // Whether the answer points at something: LISA, LISA++: at least one [SEG]; SESAME (its
  // object_presence): a [SEG] whose mask has a positive pixel. False is "no target" (a false premise).
  bool target_present = false;
  // Milliseconds per stage: tokenize, prefill, decode, text_hidden_fcs, mask_decoder, postprocess,
  // total; the first query on an ImageContext also has its encoding: clip, sam_encoder (on CUDA
  // SAM's device time on its own stream, overlapping the prefill), and a total that includes it.
  std::map<std::string, double> timings_ms;
  int64_t prefill_tokens = 0;  // prompt positions computed (the rest reused from caches)
  int64_t decode_tokens = 0;   // tokens generated
  bool has_target() const { return target_present; }
};

class ReasoningSegmenter;

// Per-image state: CLIP features, SAM image embedding, the LLM key/value cache of the last
// prompt and the conversation history about this image, computed once and reused by every
// instruction about the same image (QueryOptions::continue_conversation for multi-turn chats).
// Not safe to use from two threads at once (use one context per thread). Moving is cheap; a failed,
// cancelled or timed-out query leaves it usable.
class ImageContext {
 public:
  ImageContext();
  ~ImageContext();
  ImageContext(ImageContext&&) noexcept;
  ImageContext& operator=(ImageContext&&) noexcept;
  int width() const;
  int height() const;
  bool empty() const { return !state_; }

  // The conversation so far: every turn asked with QueryOptions::continue_conversation (a
  // cancelled turn keeps its partial answer). Earlier turns' keys/values stay cached; changing the
  // history only costs recomputing from the first position that differs.
  const std::vector<ConversationTurn>& history() const;
  // Replaces the history (e.g. to restore a saved chat or edit an answer).
  void set_history(std::vector<ConversationTurn> turns);
  // Keeps the first `turns` turns (no-op when there are fewer).
  void truncate_history(size_t turns);
  void reset_history() { truncate_history(0); }

 private:
  friend class ReasoningSegmenter;
  struct State;
  std::unique_ptr<State> state_;
};

// The loaded model. Immutable after construction (one internal cache aside: the keys/values of
// the prompt text before the image, the same for every query, computed by the first query under
// a lock and then only read): every const method may be called from several threads at once,
// each with its own ImageContext. Construction changes no process-wide setting (see
// reasonseg/process.hpp for the ones an application may opt in to).
class ReasoningSegmenter {
 public:
  explicit ReasoningSegmenter(const SegmenterOptions& options);
  ~ReasoningSegmenter();
  ReasoningSegmenter(ReasoningSegmenter&&) noexcept;

  // Encodes an image (8-bit gray/BGR/RGB/BGRA/RGBA, see ColorOrder) with CLIP and SAM's image
  // encoder: the expensive, per-image part of a query. On CUDA, SAM's encoder is queued on a
  // second stream and overlaps the first query's prefill.
  ImageContext encode_image(const cv::Mat& image, ColorOrder order = ColorOrder::BGR, TraceSink* trace = nullptr) const;

  // Answers `instruction` about the image and segments every [SEG] the answer contains. A
  // conversation too long for the model's context (max_position_embeddings) is a reasonseg::Error
  // before anything runs (the context is unchanged: truncate_history() and ask again); an answer
  // that fills the context stops with StopReason::Context.
  SegmentResult segment(ImageContext& ctx, const std::string& instruction, const QueryOptions& q = {},
                        TraceSink* trace = nullptr) const;
  SegmentResult segment(const cv::Mat& image, const std::string& instruction, ColorOrder order = ColorOrder::BGR,
                        const QueryOptions& q = {}) const;

  // LISA's validation path: one forward over prompt + `answer` (e.g. "Sure, it is [SEG]."),
  // masks from the answer's [SEG] tokens. No generation.
  SegmentResult segment_teacher_forced(ImageContext& ctx, const std::string& question, const std::string& answer,
                                       const QueryOptions& q = {}, TraceSink* trace = nullptr) const;

  // Plain SAM: masks from point/box prompts only (no language model), one mask.
  SegmentResult segment_prompts(ImageContext& ctx, const std::vector<PointPrompt>& points,
                                const BoxPrompt* box = nullptr) const;

  // Chat prompt ids for an instruction (with -200 for the image), as the model would see them.
  std::vector<int64_t> prompt_ids(const std::string& instruction) const;
  std::string prompt_text(const std::string& instruction) const;

  Device device() const;
  DType dtype() const;
  ModelFamily family() const;  // as detected from the checkpoint, or as forced by SegmenterOptions::family
  int seg_token_id() const;
  // Bytes of weights held by the model in its run dtype.
  int64_t weight_bytes() const;
  // Bytes of LLM weights read per decoded token (decoder layers + final norm + lm_head row read).
  int64_t decode_weight_bytes() const;
  // Int8 when the LLM's linear layers are held as int8 (SegmenterOptions::quantize or a converted
  // checkpoint).
  Quantization quantization() const;
  double load_seconds() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace reasonseg
