// Plain option structs of reasonseg, with their documented defaults.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace reasonseg {

enum class Device { Auto, CPU, CUDA };
// Auto: bf16 on CUDA; on CPU bf16 where the CPU has native bf16 (AMX / AVX512-BF16), else fp32.
enum class DType { Auto, Float32, BFloat16, Float16 };

// The model family: how prompts are rendered, answers printed and masks returned (docs/models.md).
//   Lisa     LISA v1 (LLaVA v1): llava_v1 template, chat.py's text, one mask per [SEG].
//   Sesame   SESAME (LLaVA-1.5): vicuna_v1 template, the new tokens without special tokens, only the
//            first [SEG]'s mask; no [SEG] or an empty first mask means "no target".
//   LisaPlus LISA++ (LLaVA-1.5): llava_v1 template, chat.py's text, one mask per [SEG] (instances).
// Auto detects it from config.json: "architectures" naming SESAME -> Sesame; else an
// "mm_projector_type" key (LLaVA-1.5's) -> LisaPlus; else Lisa.
enum class ModelFamily { Auto, Lisa, Sesame, LisaPlus };

// Weight-only quantization of the LLM's linear layers and lm_head (docs/models.md).
enum class Quantization { None, Int8 };

Device parse_device(const std::string& s);  // "auto", "cpu", "cuda"
Quantization parse_quantization(const std::string& s);  // "none", "int8"
std::string to_string(Quantization q);
ModelFamily parse_model_family(const std::string& s);  // "auto", "lisa", "sesame", "lisa++"
std::string to_string(ModelFamily f);
DType parse_dtype(const std::string& s);    // "auto", "fp32", "bf16", "fp16"
std::string to_string(Device d);
std::string to_string(DType d);

struct SegmenterOptions {
  // LISA checkpoint directory (config.json, tokenizer.model, added_tokens.json, weights as
  // model.safetensors[.index.json] or pytorch_model*.bin + index). Required unless
  // `random_weights` is set.
  std::string model_dir;
  // CLIP vision tower directory. Empty: the config's "mm_vision_tower" as a path relative to
  // model_dir, else the tower embedded in the checkpoint, else an error saying what to pass.
  std::string vision_tower_dir;
  // Build a built-in full-size configuration ("lisa-7b", "lisa-13b", "mid") with random weights
  // instead of reading a checkpoint: for benchmarks and memory measurements only.
  std::string random_weights;
  Device device = Device::Auto;
  DType dtype = DType::Auto;
  // Greedy decoding stops at EOS or after this many new tokens (LISA's chat.py uses 512).
  int max_new_tokens = 512;
  // The model family (see ModelFamily); Auto reads it from the checkpoint's config.
  ModelFamily family = ModelFamily::Auto;
  // Conversation template: "" (default) is the family's (llava_v1 for LISA and LISA++, vicuna_v1 for
  // SESAME); or "llava_v1", "vicuna_v1", "llava_llama_2" (LISA's llama2-based v0 checkpoints).
  std::string conv_template;
  // When false (default), "[SEG]", "<image>", "</s>", ... typed by the user stay plain text.
  bool allow_special_tokens_in_prompt = false;
  // CPU tensors whose dtype already matches are used straight from the memory-mapped file
  // (fastest load, least memory; the page cache holds the weights). false copies them into
  // anonymous huge-page memory instead (slower load, steadier decoding, immune to page-cache
  // eviction); both keep peak memory near 1x the model.
  bool zero_copy_weights = true;
  // Images with more pixels are refused by encode_image (a reasonseg::Error) before any copy:
  // memory stays bounded whatever an untrusted image claims. The model sees at most 1024 x 1024
  // (SAM) and 336 x 336 (CLIP) of it anyway.
  int64_t max_image_pixels = 100'000'000;
  // After loading a checkpoint, read every weight once and refuse NaN/Inf, naming the tensor
  // (cost: docs/performance.md). Non-finite values computed at run time are errors either way.
  bool check_finite_weights = true;
  // Int8: the LLM's linear layers and lm_head are quantized at load, tensor by tensor, to int8
  // with one fp32 scale per row and quantize_group_size inputs (about half the memory and decode
  // time of bf16; the embeddings, norms, projector, text_hidden_fcs, CLIP and SAM keep the run
  // dtype). A checkpoint written by `reasonseg convert --quantize int8` is int8 whatever this says.
  Quantization quantize = Quantization::None;
  // Input values that share one scale: 32, 64, 128 or 256 (docs/models.md says why 64).
  int quantize_group_size = 64;
  // Print a loading progress bar on stderr.
  bool progress = false;
  // CUDA only: every decoded token replays a CUDA graph of the whole step (one graph per 256
  // positions of context, captured on first use in each ImageContext) instead of launching
  // ~20 kernels per layer. false: plain launches.
  bool cuda_graphs = true;
  // CUDA only: SAM's image encoder runs on a second stream, overlapped with the LLM prefill
  // (the two are independent until the mask decoder). Its "sam_encoder" time is then its own
  // device time, not a share of the wall clock.
  bool overlap_sam_encoder = true;
};

// A point prompt in original-image pixel coordinates; label 1 = foreground, 0 = background.
struct PointPrompt {
  float x = 0, y = 0;
  int label = 1;
};
// A box prompt (x0, y0, x1, y1) in original-image pixel coordinates.
struct BoxPrompt {
  float x0 = 0, y0 = 0, x1 = 0, y1 = 0;
};

struct QueryOptions {
  // Overrides SegmenterOptions::max_new_tokens when >= 0.
  int max_new_tokens = -1;
  // Decode exactly max_new_tokens tokens, ignoring EOS (benchmarks compare equal work).
  bool ignore_eos = false;
  // Extra SAM prompts appended before each [SEG] embedding (LISA's prompt encoder accepts them).
  std::vector<PointPrompt> points;
  std::optional<BoxPrompt> box;
  // Keep the per-pixel mask logits (CV_32F) in the result.
  bool keep_logits = false;

  // Multi-turn: false (default, LISA chat.py's behaviour) asks the instruction alone and leaves the
  // ImageContext's history untouched; true renders the context's history() of earlier turns before
  // it, as the conversation template renders multi-turn chats, continues the key/value cache of
  // those turns (only the new positions are computed) and appends this turn to the history.
  bool continue_conversation = false;

  // Streaming: called on the querying thread with each new piece of answer text as it is decoded.
  // Pieces are valid UTF-8 (byte-fallback tokens are held back until they form a character) and
  // concatenate to the answer as decoded before chat.py's cleanup (SegmentResult::answer).
  // Return false to stop generating (StopReason::Cancelled); masks of the [SEG] tokens generated
  // so far are still computed. Exceptions it throws propagate out of segment().
  std::function<bool(const std::string& piece)> on_text;

  // Deadline for the query, in milliseconds from the call (0: none). Checked before every decoded
  // token: generation stops with StopReason::Deadline and the masks of the [SEG] tokens generated
  // so far are computed (a few ms). The image encoding (encode_image) is not included.
  double timeout_ms = 0;
};

}  // namespace reasonseg
