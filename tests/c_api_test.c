/* The C API, compiled as C99: a real query on the bundled tiny model, streaming, conversations,
 * and every kind of bad argument (an error code and a message, never a crash).
 * usage: reasonseg_c_api_test MODEL_DIR IMAGE */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reasonseg/reasonseg.h"

static int failures = 0;
#define CHECK(cond)                                                     \
  do {                                                                  \
    if (!(cond)) {                                                      \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      ++failures;                                                       \
    }                                                                   \
  } while (0)

/* A failed call: the status, and a message that mentions `needle`. */
static void expect_error(reasonseg_status got, reasonseg_status want, const char* needle, int line) {
  if (got != want) {
    fprintf(stderr, "line %d: status %d, expected %d (%s)\n", line, (int)got, (int)want, reasonseg_last_error());
    ++failures;
  } else if (strstr(reasonseg_last_error(), needle) == NULL) {
    fprintf(stderr, "line %d: message '%s' lacks '%s'\n", line, reasonseg_last_error(), needle);
    ++failures;
  }
}
#define EXPECT_ERROR(call, want, needle) expect_error((call), (want), (needle), __LINE__)

typedef struct {
  char text[4096];
  size_t used;
  int calls, stop_after;
} Collected;

static int collect(const char* piece, size_t length, void* user) {
  Collected* c = (Collected*)user;
  if (c->used + length < sizeof c->text) {
    memcpy(c->text + c->used, piece, length);
    c->used += length;
    c->text[c->used] = '\0';
  }
  ++c->calls;
  return c->stop_after > 0 && c->calls >= c->stop_after;
}

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s MODEL_DIR IMAGE\n", argv[0]);
    return 2;
  }
  CHECK(strlen(reasonseg_version()) >= 5);

  /* Bad arguments before any model exists. */
  reasonseg_model* model = NULL;
  reasonseg_model_params mp = reasonseg_model_params_default();
  CHECK(mp.max_new_tokens == 512 && mp.check_finite_weights == 1 && mp.max_image_pixels == 100000000);
  CHECK(mp.quantize == NULL && mp.quantize_group_size == 64);
  EXPECT_ERROR(reasonseg_model_load(NULL, &model), REASONSEG_ERROR_ARGUMENT, "params");
  EXPECT_ERROR(reasonseg_model_load(&mp, NULL), REASONSEG_ERROR_ARGUMENT, "out_model");
  EXPECT_ERROR(reasonseg_model_load(&mp, &model), REASONSEG_ERROR_ARGUMENT, "model_dir");
  CHECK(model == NULL);
  mp.model_dir = "/nonexistent/model";
  EXPECT_ERROR(reasonseg_model_load(&mp, &model), REASONSEG_ERROR_INPUT, "/nonexistent/model");
  mp.model_dir = argv[1];
  mp.device = "tpu";
  EXPECT_ERROR(reasonseg_model_load(&mp, &model), REASONSEG_ERROR_INPUT, "tpu");
  mp.device = "cpu";
  mp.dtype = "fp32";
  mp.max_new_tokens = -5;
  EXPECT_ERROR(reasonseg_model_load(&mp, &model), REASONSEG_ERROR_ARGUMENT, "max_new_tokens");
  mp.max_new_tokens = 24;
  mp.quantize = "q4";
  EXPECT_ERROR(reasonseg_model_load(&mp, &model), REASONSEG_ERROR_INPUT, "q4");
  mp.quantize = "int8";
  mp.quantize_group_size = 48;
  EXPECT_ERROR(reasonseg_model_load(&mp, &model), REASONSEG_ERROR_INPUT, "48");
  mp.quantize = NULL;
  mp.quantize_group_size = 64;
  CHECK(reasonseg_model_load(&mp, &model) == REASONSEG_OK);
  CHECK(model != NULL);
  CHECK(strcmp(reasonseg_last_error(), "") == 0);
  if (!model) return 1;
  CHECK(strcmp(reasonseg_model_family(model), "lisa") == 0);
  CHECK(strcmp(reasonseg_model_family(NULL), "") == 0);

  /* Images: from raw pixels and from a file; bad sizes and NULLs. */
  enum { W = 64, H = 48 };
  static uint8_t pixels[H * (W * 3 + 5)];
  for (size_t i = 0; i < sizeof pixels; ++i) pixels[i] = (uint8_t)(i * 7);
  reasonseg_image* raw = NULL;
  EXPECT_ERROR(reasonseg_image_encode(NULL, pixels, W, H, W * 3, REASONSEG_PIXELS_RGB, &raw), REASONSEG_ERROR_ARGUMENT, "model");
  EXPECT_ERROR(reasonseg_image_encode(model, NULL, W, H, W * 3, REASONSEG_PIXELS_RGB, &raw), REASONSEG_ERROR_ARGUMENT, "pixels");
  EXPECT_ERROR(reasonseg_image_encode(model, pixels, 0, H, W * 3, REASONSEG_PIXELS_RGB, &raw), REASONSEG_ERROR_ARGUMENT, "width");
  EXPECT_ERROR(reasonseg_image_encode(model, pixels, W, H, W * 3 - 1, REASONSEG_PIXELS_RGB, &raw), REASONSEG_ERROR_ARGUMENT, "stride");
  EXPECT_ERROR(reasonseg_image_encode(model, pixels, W, H, W * 3, (reasonseg_pixel_format)42, &raw), REASONSEG_ERROR_ARGUMENT, "format");
  CHECK(raw == NULL);
  CHECK(reasonseg_image_encode(model, pixels, W, H, W * 3 + 5, REASONSEG_PIXELS_RGB, &raw) == REASONSEG_OK);
  CHECK(reasonseg_image_width(raw) == W && reasonseg_image_height(raw) == H);
  reasonseg_image_free(raw);

  reasonseg_image* image = NULL;
  EXPECT_ERROR(reasonseg_image_load(model, "/nonexistent.png", &image), REASONSEG_ERROR_INPUT, "/nonexistent.png");
  CHECK(reasonseg_image_load(model, argv[2], &image) == REASONSEG_OK);
  if (!image) return 1;

  /* A query, streamed. */
  const char* q1 = "What is the dog in this image? Please output segmentation mask.";
  Collected got;
  memset(&got, 0, sizeof got);
  reasonseg_query_params qp = reasonseg_query_params_default();
  CHECK(qp.max_new_tokens == -1 && qp.continue_conversation == 0 && qp.on_text == NULL);
  qp.on_text = collect;
  qp.user_data = &got;
  qp.continue_conversation = 1;
  reasonseg_result* r1 = NULL;
  CHECK(reasonseg_segment(model, image, q1, &qp, &r1) == REASONSEG_OK);
  CHECK(r1 != NULL);
  CHECK(got.calls >= 2);
  CHECK(strlen(reasonseg_result_text(r1)) > 0);
  CHECK(strcmp(reasonseg_result_stop_reason(r1), "max_new_tokens") == 0 || strcmp(reasonseg_result_stop_reason(r1), "eos") == 0);
  CHECK(reasonseg_image_history_length(image) == 1);
  size_t n_ids = reasonseg_result_output_ids(r1, NULL, 0);
  CHECK(n_ids >= 1 && n_ids <= 24);
  int64_t ids[32];
  CHECK(reasonseg_result_output_ids(r1, ids, 32) == n_ids);
  double ms = -1;
  CHECK(reasonseg_result_timing(r1, "total", &ms) == REASONSEG_OK && ms > 0);
  EXPECT_ERROR(reasonseg_result_timing(r1, "no-such-stage", &ms), REASONSEG_ERROR_ARGUMENT, "no-such-stage");
  const size_t n_masks = reasonseg_result_mask_count(r1);
  CHECK(reasonseg_result_has_target(r1) == (n_masks > 0));
  for (size_t i = 0; i < n_masks; ++i) {
    reasonseg_mask m;
    CHECK(reasonseg_result_mask(r1, i, &m) == REASONSEG_OK);
    CHECK(m.width == reasonseg_image_width(image) && m.height == reasonseg_image_height(image));
    CHECK(m.stride >= (size_t)m.width && m.data != NULL && isfinite(m.score));
    int64_t inside = 0;
    for (int y = 0; y < m.height; ++y)
      for (int x = 0; x < m.width; ++x) inside += m.data[(size_t)y * m.stride + (size_t)x] != 0;
    CHECK(inside == m.area);
  }
  reasonseg_mask none;
  EXPECT_ERROR(reasonseg_result_mask(r1, n_masks, &none), REASONSEG_ERROR_ARGUMENT, "out of range");
  EXPECT_ERROR(reasonseg_result_mask(NULL, 0, &none), REASONSEG_ERROR_ARGUMENT, "result");

  /* A second turn continues the conversation; then stop it from the callback. */
  reasonseg_result* r2 = NULL;
  memset(&got, 0, sizeof got);
  got.stop_after = 1;
  CHECK(reasonseg_segment(model, image, "And where is its tail?", &qp, &r2) == REASONSEG_OK);
  CHECK(strcmp(reasonseg_result_stop_reason(r2), "cancelled") == 0);
  CHECK(got.calls == 1);
  CHECK(reasonseg_image_history_length(image) == 2);
  CHECK(reasonseg_image_truncate_history(image, 0) == REASONSEG_OK);
  CHECK(reasonseg_image_history_length(image) == 0);
  EXPECT_ERROR(reasonseg_image_truncate_history(NULL, 0), REASONSEG_ERROR_ARGUMENT, "image");

  /* Query arguments. */
  reasonseg_result* bad = NULL;
  EXPECT_ERROR(reasonseg_segment(model, NULL, q1, NULL, &bad), REASONSEG_ERROR_ARGUMENT, "image");
  EXPECT_ERROR(reasonseg_segment(model, image, NULL, NULL, &bad), REASONSEG_ERROR_ARGUMENT, "instruction");
  EXPECT_ERROR(reasonseg_segment(model, image, q1, NULL, NULL), REASONSEG_ERROR_ARGUMENT, "out_result");
  qp.on_text = NULL;
  qp.timeout_ms = -1;
  EXPECT_ERROR(reasonseg_segment(model, image, q1, &qp, &bad), REASONSEG_ERROR_ARGUMENT, "timeout_ms");
  qp.timeout_ms = NAN;
  EXPECT_ERROR(reasonseg_segment(model, image, q1, &qp, &bad), REASONSEG_ERROR_ARGUMENT, "timeout_ms");
  qp.timeout_ms = 0;
  qp.max_new_tokens = -7;
  EXPECT_ERROR(reasonseg_segment(model, image, q1, &qp, &bad), REASONSEG_ERROR_ARGUMENT, "max_new_tokens");
  CHECK(bad == NULL);

  /* The same question without a conversation answers as the first turn did. */
  reasonseg_result* again = NULL;
  CHECK(reasonseg_segment(model, image, q1, NULL, &again) == REASONSEG_OK);
  CHECK(reasonseg_result_output_ids(again, NULL, 0) == n_ids);
  CHECK(strcmp(reasonseg_result_text(again), reasonseg_result_text(r1)) == 0);

  /* Pictures. */
  EXPECT_ERROR(reasonseg_write_overlay(image, r1, NULL), REASONSEG_ERROR_ARGUMENT, "path");
  EXPECT_ERROR(reasonseg_write_mask(r1, 99, "x.png"), REASONSEG_ERROR_ARGUMENT, "out of range");
  EXPECT_ERROR(reasonseg_write_overlay(image, r1, "/nonexistent-dir/overlay.ppm"), REASONSEG_ERROR_INPUT, "/nonexistent-dir");

  /* NULL is accepted by every free function and every accessor. */
  reasonseg_result_free(NULL);
  reasonseg_image_free(NULL);
  reasonseg_model_free(NULL);
  CHECK(strcmp(reasonseg_result_text(NULL), "") == 0 && reasonseg_result_mask_count(NULL) == 0);
  CHECK(reasonseg_image_width(NULL) == 0 && reasonseg_image_history_length(NULL) == 0);

  reasonseg_result_free(again);
  reasonseg_result_free(r2);
  reasonseg_result_free(r1);
  reasonseg_image_free(image);
  reasonseg_model_free(model);
  if (failures) fprintf(stderr, "%d checks failed\n", failures);
  else printf("C API: all checks passed\n");
  return failures ? 1 : 0;
}
