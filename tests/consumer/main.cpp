// Links the installed reasonseg: no LibTorch headers, the data directory found from the moved
// library, a query on the installed tiny model, a conversation turn and a clear error.
#include <cstdio>
#include <cstring>
#include <filesystem>

#include <reasonseg/reasonseg.hpp>

#ifdef TORCH_API
#error "reasonseg's public headers pulled in LibTorch"
#endif

int main() {
  namespace fs = std::filesystem;
  int failures = 0;
  auto check = [&](bool ok, const char* what) {
    if (!ok) std::fprintf(stderr, "consumer: FAILED: %s\n", what);
    failures += !ok;
  };
  check(std::strncmp(reasonseg::version(), "0.", 2) == 0, "version");
  // The library finds its data next to itself, wherever the tree was moved.
  check(fs::equivalent(reasonseg::data_dir(), CONSUMER_DATA_DIR), "data_dir is the installed share/reasonseg");

  reasonseg::SegmenterOptions opt;
  opt.model_dir = reasonseg::data_path("models/tiny-lisa-a");
  opt.max_new_tokens = 16;
  reasonseg::ReasoningSegmenter seg(opt);
  auto ctx = seg.encode_image(reasonseg::read_image_file(reasonseg::data_path("examples/dog.png")));
  reasonseg::QueryOptions q;
  q.continue_conversation = true;
  auto r1 = seg.segment(ctx, "What is the dog in this image? Please output segmentation mask.", q);
  auto r2 = seg.segment(ctx, "And its tail?", q);
  check(!r1.output_ids.empty() && !r2.output_ids.empty(), "answers");
  check(ctx.history().size() == 2, "two turns");
  check(r2.prefill_tokens < r1.prefill_tokens, "the second turn continues the cache");
  try {
    reasonseg::SegmenterOptions bad;
    bad.model_dir = "/nonexistent/model";
    reasonseg::ReasoningSegmenter s(bad);
    check(false, "an error for a missing model");
  } catch (const reasonseg::Error& e) {
    check(std::strstr(e.what(), "/nonexistent/model") != nullptr, "the error names the directory");
  }
  std::printf("consumer: reasonseg %s from %s: %zu turns, %d failures\n", reasonseg::version(),
              reasonseg::data_dir().c_str(), ctx.history().size(), failures);
  return failures ? 1 : 0;
}
