// reasonseg segment: one image, one instruction -> answer, masks, overlay, JSON, tensor dump.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/args.hpp"
#include "cli/commands.hpp"
#include "cli/input_image.hpp"
#include "reasonseg/image_io.hpp"
#include "reasonseg/overlay.hpp"
#include "reasonseg/prompts.hpp"
#include "reasonseg/segmenter.hpp"
#include "reasonseg/version.hpp"
#include "util/error.hpp"

namespace fs = std::filesystem;

namespace reasonseg::cli {

const CommandSpec& segment_spec() {
  static const CommandSpec spec = model_command(
      "segment", "--model DIR --image FILE --prompt TEXT",
      "Answers an instruction about an image and segments every [SEG] of the answer.",
      {
        {"image", "FILE", "the image (PNG, JPEG, PPM/PGM)"},
        {"prompt", "TEXT", "the instruction"},
        {"task", "T", "LISA++: append its task sentence (sem-seg, inst-seg, sem-conv-seg, inst-conv-seg, conv, cot)"},
        {"answer", "TEXT", "teacher forcing (LISA's validation path) instead of generation"},
        {"stream", "", "print the answer while it is generated"},
        {"timeout-ms", "MS", "stop generating after MS milliseconds (no limit)"},
        {"out-mask", "PREFIX", "write PREFIX_0.png, PREFIX_1.png ... (255 inside the mask)"},
        {"overlay", "FILE", "write the image with every mask tinted and outlined, and a legend"},
        {"json", "FILE|-", "write text, ids, masks (score, area, bbox, file), timings as JSON (- : stdout)"},
        {"pretty", "", "indent the JSON"},
        {"dump-tensors", "FILE", "write every intermediate tensor of the run as safetensors"},
      },
        "Output files go where the paths say (relative to the current directory). Without --json -, the answer\n"
        "and one line per mask go to stdout and the per-stage timings to stderr.\n"
        "models/tiny-lisa-a, the bundled model, has random weights: its answers are gibberish and its masks\n"
        "meaningless textures. Point --model at a released LISA checkpoint for real results.");
  return spec;
}

namespace {
// The bundled tiny model has random weights: said on screen and in the overlay, so that nobody
// mistakes its output for what reasonseg does with a real checkpoint.
bool is_bundled_demo_model(const std::string& model_dir) {
  std::error_code ec;
  try {
    return !model_dir.empty() && fs::equivalent(model_dir, data_path("models/tiny-lisa-a"), ec);
  } catch (const Error&) {
    return false;
  }
}
}  // namespace

int cmd_segment(const Args& a) {
  SegmenterOptions opt = segmenter_options(a);
  const std::string image_path = a.require("image");
  std::string prompt = a.require("prompt");
  if (a.has("task")) prompt = lisa_plus_prompt(prompt, parse_lisa_plus_task(a.get("task")));
  const std::string json_path = a.get("json");
  const bool json_stdout = json_path == "-", stream = a.has("stream") && !json_stdout;
  std::vector<std::string> image_warnings;
  cv::Mat image = read_input_image("segment", image_path, opt.max_image_pixels, &image_warnings);
  const bool demo = opt.random_weights.empty() && is_bundled_demo_model(opt.model_dir);
  if (demo && !a.has("quiet"))
    std::fprintf(stderr, "note: %s is the bundled tiny model with random weights: expect a gibberish answer and a "
                         "meaningless mask (the pipeline runs end to end; use a released LISA checkpoint for real results)\n",
                 opt.model_dir.c_str());
  ReasoningSegmenter seg(opt);
  TraceRecorder trace;
  TraceRecorder* tp = a.has("dump-tensors") ? &trace : nullptr;
  auto ctx = seg.encode_image(image, ColorOrder::BGR, tp);
  QueryOptions q;
  q.timeout_ms = a.get_double("timeout-ms", 0);
  if (stream)
    q.on_text = [](const std::string& piece) {
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
      return true;
    };
  SegmentResult r = a.has("answer") ? seg.segment_teacher_forced(ctx, prompt, a.get("answer"), q, tp)
                                    : seg.segment(ctx, prompt, q, tp);

  nlohmann::json j;
  j["text"] = r.text;
  j["has_target"] = r.has_target();
  j["chat_text"] = r.chat_text;
  j["input_ids"] = r.input_ids;
  j["output_ids"] = r.output_ids;
  j["stopped_by"] = to_string(r.stopped_by);
  j["family"] = to_string(seg.family());
  j["masks"] = nlohmann::json::array();
  for (size_t i = 0; i < r.masks.size(); ++i) {
    const auto& m = r.masks[i];
    nlohmann::json mj = {{"score", m.score}, {"area", m.area}, {"bbox", {m.bbox.x, m.bbox.y, m.bbox.width, m.bbox.height}},
                         {"file", nullptr}};
    if (a.has("out-mask")) {
      std::string f = a.get("out-mask") + "_" + std::to_string(i) + ".png";
      write_image_file(f, m.mask);
      mj["file"] = f;
    }
    j["masks"].push_back(mj);
  }
  j["timings_ms"] = r.timings_ms;
  j["prefill_tokens"] = r.prefill_tokens;
  j["decode_tokens"] = r.decode_tokens;
  j["load_s"] = seg.load_seconds();
  j["image_warnings"] = image_warnings;
  if (demo) j["note"] = "bundled tiny model with random weights: the answer and masks are meaningless";
  if (a.has("overlay")) {
    const std::string caption = (demo ? "[random-weight demo model] answer: " : "answer: ") + r.text;
    write_image_file(a.get("overlay"), draw_overlay(image, ColorOrder::BGR, r, caption));
  }
  if (tp) trace.save_safetensors(a.get("dump-tensors"));
  const std::string dumped = j.dump(a.has("pretty") ? 2 : -1);
  if (json_stdout) {
    // Only the JSON on stdout (the timings are inside it), written and flushed in one piece.
    std::fwrite(dumped.data(), 1, dumped.size(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
    return 0;
  }
  if (!json_path.empty()) {
    std::ofstream f(json_path);
    if (!f) fail(json_path, ": cannot write");
    f << dumped << "\n";
  }
  if (stream) std::cout << "\n";
  else std::cout << r.text << "\n";
  if (!r.has_target())
    std::cout << (r.masks.empty() ? "no target: the answer has no [SEG]\n" : "no target: the mask is empty\n");
  for (size_t i = 0; i < r.masks.size(); ++i)
    std::cout << "mask " << i << ": score " << r.masks[i].score << ", area " << r.masks[i].area << " px\n";
  if (a.has("overlay")) std::cout << "overlay: " << a.get("overlay") << "\n";
  std::cout.flush();
  std::fprintf(stderr, "timings (ms):");
  for (auto& [k, v] : r.timings_ms) std::fprintf(stderr, " %s=%.1f", k.c_str(), v);
  std::fprintf(stderr, "\n");
  return 0;
}

}  // namespace reasonseg::cli
