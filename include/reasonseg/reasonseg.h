/* reasonseg C API (C99): the foreign-function surface for C, Python (ctypes), Rust, Go and ROS nodes.
 *
 * Conventions
 * - Every function that can fail returns a reasonseg_status; REASONSEG_OK is 0. On failure,
 *   reasonseg_last_error() returns a message naming the argument, file or key at fault; it is
 *   per thread and stays valid until the next reasonseg call on the same thread.
 * - Handles are opaque. Whatever a function returns through an `out` pointer is owned by the caller
 *   and released with the matching *_free function (NULL is accepted and ignored). Pointers a
 *   handle hands out (texts, mask pixels) belong to that handle and live until it is freed.
 * - NULL handles, NULL out-pointers, bad sizes and out-of-range values are REASONSEG_ERROR_ARGUMENT,
 *   never a crash. No function throws a C++ exception or changes process-wide state.
 * - Threads: a model may be used from several threads at once; an image (its conversation and
 *   caches) by one thread at a time; results are read-only and may be read from any thread.
 * - Text is UTF-8, NUL-terminated.
 */
#ifndef REASONSEG_H
#define REASONSEG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum reasonseg_status {
  REASONSEG_OK = 0,
  REASONSEG_ERROR_ARGUMENT = 1, /* NULL handle or pointer, wrong size, value out of range */
  REASONSEG_ERROR_INPUT = 2,    /* bad model, image, prompt or option (a reasonseg::Error) */
  REASONSEG_ERROR_INTERNAL = 3  /* anything else: out of memory, LibTorch failure */
} reasonseg_status;

typedef struct reasonseg_model reasonseg_model;   /* loaded weights: immutable, shareable */
typedef struct reasonseg_image reasonseg_image;   /* one encoded image + its conversation */
typedef struct reasonseg_result reasonseg_result; /* one answer and its masks */

/* The library's version, "MAJOR.MINOR.PATCH". Static storage. */
const char* reasonseg_version(void);
/* Message of the last failed call on this thread ("" after a success). Valid until the next call. */
const char* reasonseg_last_error(void);

/* ---- model ------------------------------------------------------------------------------------ */

typedef struct reasonseg_model_params {
  const char* model_dir;        /* checkpoint directory (HF layout); required unless random_weights */
  const char* vision_tower_dir; /* NULL: from the checkpoint's config */
  const char* random_weights;   /* NULL, or a preset ("mid", "lisa-7b") for benchmarks */
  const char* device;           /* NULL or "auto", "cpu", "cuda" */
  const char* dtype;            /* NULL or "auto", "fp32", "bf16", "fp16" */
  int32_t max_new_tokens;       /* default 512 */
  int64_t max_image_pixels;     /* default 100000000: larger images are refused */
  int32_t check_finite_weights; /* default 1: refuse NaN/Inf weights at load */
  int32_t progress;             /* default 0: no progress output on stderr */
  const char* quantize;         /* NULL or "none", "int8": the LLM's linear layers as int8 (since 0.3) */
  int32_t quantize_group_size;  /* default 64: input values per int8 scale (32, 64, 128, 256) */
} reasonseg_model_params;

/* The documented defaults (the values above). */
reasonseg_model_params reasonseg_model_params_default(void);

/* Loads a model. `params` is copied; its strings need only live for the call. */
reasonseg_status reasonseg_model_load(const reasonseg_model_params* params, reasonseg_model** out_model);
void reasonseg_model_free(reasonseg_model* model);
/* The model family as detected or forced: "lisa", "sesame" or "lisa++"; "" for NULL. Static storage. */
const char* reasonseg_model_family(const reasonseg_model* model);

/* ---- images ----------------------------------------------------------------------------------- */

typedef enum reasonseg_pixel_format {
  REASONSEG_PIXELS_GRAY = 1, /* 1 byte per pixel */
  REASONSEG_PIXELS_RGB = 2,  /* 3 bytes per pixel */
  REASONSEG_PIXELS_BGR = 3,
  REASONSEG_PIXELS_RGBA = 4, /* 4 bytes per pixel; alpha ignored */
  REASONSEG_PIXELS_BGRA = 5,
  /* Not a format: makes every int32 value >= 0 a valid value of the type in C++, so that the library
     can read any value a caller passes and refuse it (REASONSEG_ERROR_ARGUMENT) without undefined
     behaviour. */
  REASONSEG_PIXELS_MAX_ENUM = 0x7FFFFFFF
} reasonseg_pixel_format;

/* Encodes 8-bit pixels (rows `stride` bytes apart, stride >= width * bytes per pixel) with CLIP and
 * SAM: the expensive per-image part. The pixels are copied. */
reasonseg_status reasonseg_image_encode(const reasonseg_model* model, const uint8_t* pixels, int32_t width,
                                        int32_t height, size_t stride, reasonseg_pixel_format format,
                                        reasonseg_image** out_image);
/* Reads an image file (PNG, JPEG, PPM/PGM; size checked from its header first) and encodes it. */
reasonseg_status reasonseg_image_load(const reasonseg_model* model, const char* path, reasonseg_image** out_image);
void reasonseg_image_free(reasonseg_image* image);
int32_t reasonseg_image_width(const reasonseg_image* image);  /* 0 for NULL */
int32_t reasonseg_image_height(const reasonseg_image* image); /* 0 for NULL */
/* Number of turns in the image's conversation (queries with continue_conversation). 0 for NULL. */
size_t reasonseg_image_history_length(const reasonseg_image* image);
/* Keeps the first `turns` turns of the conversation (0: forget it all). */
reasonseg_status reasonseg_image_truncate_history(reasonseg_image* image, size_t turns);

/* ---- queries ---------------------------------------------------------------------------------- */

/* Receives each new piece of answer text (valid UTF-8, `length` bytes, not NUL-terminated) while
 * it is decoded. Return 0 to go on, anything else to stop (stop reason "cancelled"). */
typedef int (*reasonseg_text_callback)(const char* piece, size_t length, void* user_data);

typedef struct reasonseg_query_params {
  int32_t max_new_tokens;        /* default -1: the model's max_new_tokens */
  int32_t continue_conversation; /* default 0: ask alone; 1: continue the image's conversation */
  double timeout_ms;             /* default 0: no deadline; else stop decoding after this long */
  reasonseg_text_callback on_text; /* default NULL */
  void* user_data;               /* passed to on_text */
} reasonseg_query_params;

reasonseg_query_params reasonseg_query_params_default(void);

/* Answers `instruction` about `image` and segments every [SEG] of the answer. `params` may be NULL
 * (defaults). A failed query leaves `image` usable. */
reasonseg_status reasonseg_segment(const reasonseg_model* model, reasonseg_image* image, const char* instruction,
                                   const reasonseg_query_params* params, reasonseg_result** out_result);
void reasonseg_result_free(reasonseg_result* result);

/* The answer after LISA chat.py's cleanup; "" for NULL. Owned by the result. */
const char* reasonseg_result_text(const reasonseg_result* result);
/* Why generation stopped: "eos", "max_new_tokens", "context", "cancelled", "deadline", ...; "" for NULL. */
const char* reasonseg_result_stop_reason(const reasonseg_result* result);
/* 1 when the answer points at something (the family's rule: a [SEG]; SESAME: a [SEG] whose mask is
 * not empty), else 0 ("no target"). */
int32_t reasonseg_result_has_target(const reasonseg_result* result);
size_t reasonseg_result_mask_count(const reasonseg_result* result);

typedef struct reasonseg_mask {
  const uint8_t* data; /* height rows of width bytes, rows `stride` bytes apart; 255 inside, 0 outside */
  int32_t width, height;
  size_t stride;
  float score;          /* SAM's predicted IoU */
  int64_t area;         /* pixels inside */
  int32_t bbox[4];      /* x, y, width, height of the pixels inside (zeros when area is 0) */
} reasonseg_mask;

/* Fills `out_mask` with mask `index` (< reasonseg_result_mask_count); data is owned by the result. */
reasonseg_status reasonseg_result_mask(const reasonseg_result* result, size_t index, reasonseg_mask* out_mask);
/* Milliseconds spent in `stage` ("total", "prefill", "decode", "mask_decoder", "clip", ...). */
reasonseg_status reasonseg_result_timing(const reasonseg_result* result, const char* stage, double* out_ms);
/* Copies up to `capacity` generated token ids into `ids` (may be NULL with capacity 0) and returns
 * how many there are in all. */
size_t reasonseg_result_output_ids(const reasonseg_result* result, int64_t* ids, size_t capacity);

/* ---- pictures --------------------------------------------------------------------------------- */

/* Writes the image with every mask of `result` tinted and outlined and a legend (the answer, each
 * mask's score, or "no target"); PNG/JPEG by extension, PPM when built without image codecs. */
reasonseg_status reasonseg_write_overlay(const reasonseg_image* image, const reasonseg_result* result, const char* path);
/* Writes mask `index` of `result` as an 8-bit grayscale image. */
reasonseg_status reasonseg_write_mask(const reasonseg_result* result, size_t index, const char* path);

#ifdef __cplusplus
}
#endif

#endif /* REASONSEG_H */
