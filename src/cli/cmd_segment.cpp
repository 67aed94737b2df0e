// reasonseg segment: one image, one instruction -> answer, masks, overlay, JSON, tensor dump.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/args.hpp"
#include "cli/commands.hpp"
#include "image/image_files.hpp"
#include "io/safetensors.hpp"
#include "pipeline/trace.hpp"
#include "reasonseg/overlay.hpp"
#include "reasonseg/segmenter.hpp"
#include "util/error.hpp"

namespace reasonseg::cli {

int cmd_segment(int argc, char** argv) {
  auto value_opts = kModelOptions;
  for (auto o : {"image", "prompt", "answer", "out-mask", "overlay", "json", "dump-tensors"}) value_opts.insert(o);
  Args a(argc, argv, 2, value_opts, {"help", "quiet", "copy-weights", "allow-special-tokens"});
  if (a.has("help")) {
    std::puts(
        "reasonseg segment --model DIR --image FILE --prompt TEXT [options]\n"
        "  --vision-tower DIR     CLIP tower (default: from config.json, relative to --model)\n"
        "  --device auto|cpu|cuda --dtype auto|fp32|bf16|fp16 --threads N --max-new-tokens N (512)\n"
        "  --max-image-pixels N   refuse larger images before decoding them (1e8)\n"
        "  --answer TEXT          teacher forcing (LISA's validation path) instead of generation\n"
        "  --out-mask PREFIX      writes PREFIX_0.png, PREFIX_1.png ... (255 = mask)\n"
        "  --overlay FILE         the image with every mask tinted and outlined\n"
        "  --json FILE|-          text, ids, masks (score, area, bbox, file), timings\n"
        "  --dump-tensors FILE    every intermediate tensor of the run, as safetensors\n"
        "  --quiet                no progress bar\n"
        "Random weights give meaningless masks: point --model at a real LISA checkpoint.");
    return 0;
  }
  SegmenterOptions opt = segmenter_options(a);
  const std::string image_path = a.require("image"), prompt = a.require("prompt");
  cv::Mat image = read_image_file(image_path, true, opt.max_image_pixels);
  ReasoningSegmenter seg(opt);
  TensorCollector trace;
  TensorCollector* tp = a.has("dump-tensors") ? &trace : nullptr;
  auto ctx = seg.encode_image(image, ColorOrder::BGR, tp);
  SegmentResult r = a.has("answer") ? seg.segment_teacher_forced(ctx, prompt, a.get("answer"), {}, tp)
                                    : seg.segment(ctx, prompt, {}, tp);

  nlohmann::json j;
  j["text"] = r.text;
  j["chat_text"] = r.chat_text;
  j["input_ids"] = r.input_ids;
  j["output_ids"] = r.output_ids;
  j["stopped_by"] = to_string(r.stopped_by);
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
  if (a.has("overlay")) {
    std::string f = a.get("overlay");
    write_image_file(f, draw_overlay(image, ColorOrder::BGR, r.masks));
  }
  if (tp) {
    write_safetensors(a.get("dump-tensors"), trace.tensors);
  }
  std::string json_path = a.get("json");
  if (json_path == "-") {
    std::cout << j.dump(2) << "\n";
  } else {
    if (!json_path.empty()) {
      std::ofstream f(json_path);
      if (!f) fail(json_path, ": cannot write");
      f << j.dump(2) << "\n";
    }
    std::cout << r.text << "\n";
    if (r.masks.empty()) std::cout << "no target: the answer has no [SEG]\n";
    for (size_t i = 0; i < r.masks.size(); ++i)
      std::cout << "mask " << i << ": score " << r.masks[i].score << ", area " << r.masks[i].area << " px\n";
  }
  std::fprintf(stderr, "timings (ms):");
  for (auto& [k, v] : r.timings_ms) std::fprintf(stderr, " %s=%.1f", k.c_str(), v);
  std::fprintf(stderr, "\n");
  return 0;
}

}  // namespace reasonseg::cli
