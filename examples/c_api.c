/* The C API end to end: load a model, encode an image, ask with streaming output, read the masks,
 * write an overlay.
 *
 *   c_api MODEL_DIR IMAGE "INSTRUCTION" [OVERLAY.png]
 */
#include <stdio.h>

#include <reasonseg/reasonseg.h>

/* Streaming: called with each new piece of the answer (UTF-8, not NUL-terminated). */
static int print_piece(const char* piece, size_t length, void* user_data) {
  (void)user_data;
  fwrite(piece, 1, length, stdout);
  fflush(stdout);
  return 0; /* 0: go on; anything else stops generation */
}

int main(int argc, char** argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s MODEL_DIR IMAGE \"INSTRUCTION\" [OVERLAY.png]\n", argv[0]);
    return 2;
  }
  int rc = 1;
  reasonseg_model* model = NULL;
  reasonseg_image* image = NULL;
  reasonseg_result* result = NULL;
  reasonseg_query_params qp = reasonseg_query_params_default();
  double total_ms = 0;

  reasonseg_model_params mp = reasonseg_model_params_default();
  mp.model_dir = argv[1];
  if (reasonseg_model_load(&mp, &model) != REASONSEG_OK) goto fail;
  if (reasonseg_image_load(model, argv[2], &image) != REASONSEG_OK) goto fail;

  qp.on_text = print_piece;
  printf("answer: ");
  if (reasonseg_segment(model, image, argv[3], &qp, &result) != REASONSEG_OK) goto fail;
  printf("\nstopped by: %s\n", reasonseg_result_stop_reason(result));

  if (!reasonseg_result_has_target(result)) printf("no target\n");
  for (size_t i = 0; i < reasonseg_result_mask_count(result); ++i) {
    reasonseg_mask m;
    if (reasonseg_result_mask(result, i, &m) != REASONSEG_OK) goto fail;
    printf("mask %zu: %dx%d, %lld pixels inside, box (%d, %d, %d, %d), score %.3f\n", i, m.width, m.height,
           (long long)m.area, m.bbox[0], m.bbox[1], m.bbox[2], m.bbox[3], m.score);
  }
  if (reasonseg_result_timing(result, "total", &total_ms) == REASONSEG_OK) printf("total: %.0f ms\n", total_ms);
  if (argc > 4) {
    if (reasonseg_write_overlay(image, result, argv[4]) != REASONSEG_OK) goto fail;
    printf("overlay: %s\n", argv[4]);
  }
  rc = 0;
  goto done;
fail:
  fprintf(stderr, "error: %s\n", reasonseg_last_error());
done:
  reasonseg_result_free(result); /* each *_free accepts NULL */
  reasonseg_image_free(image);
  reasonseg_model_free(model);
  return rc;
}
