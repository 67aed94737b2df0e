// reasonseg eval: gIoU / cIoU / Acc@0.5 of the engine or of saved predictions on ReasonSeg data.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/args.hpp"
#include "cli/commands.hpp"
#include "reasonseg/image_io.hpp"
#include "reasonseg/eval.hpp"
#include "reasonseg/segmenter.hpp"
#include "util/error.hpp"
#include "util/progress.hpp"

namespace fs = std::filesystem;

namespace reasonseg::cli {

namespace {
std::string csv_field(const std::string& s) {
  std::string o = "\"";
  for (char c : s) o += c == '"' ? std::string("\"\"") : std::string(1, c);
  return o + "\"";
}
}  // namespace

const CommandSpec& eval_spec() {
  static const CommandSpec spec = model_command(
      "eval", "--dataset DIR (--model DIR | --pred-dir DIR)",
      "Scores a ReasonSeg split (gIoU, cIoU, Acc@0.5) from the engine or from saved masks.",
      {
        {"dataset", "DIR", "ReasonSeg-format split: NAME.jpg + NAME.json"},
        {"mode", "M", "generate (chat.py's path; all masks of an answer united) or teacher-forced (\"[SEG].\") (generate)"},
        {"pred-dir", "DIR", "score NAME.png files instead of running a model (non-zero = foreground)"},
        {"json", "FILE", "write the scores and per-sample IoUs as JSON"},
        {"pretty", "", "indent the JSON"},
        {"csv", "FILE", "write per-sample rows as CSV"},
        {"save-masks", "DIR", "write each predicted mask as DIR/NAME.png"},
        {"limit", "N", "score only the first N samples (all)"},
        {"all-texts", "", "ask every text of a sample, not only the first"},
      },
        "Metrics as LISA's validate(): per sample IoU = inter / (union + 1e-5), 1 when the union is empty (ignore\n"
        "pixels excluded); gIoU = sum IoU / (n + 1e-5); cIoU = sum inter / (sum union + 1e-10); Acc@0.5 = fraction\n"
        "of samples with IoU > 0.5 (not computed by LISA). A missing prediction file counts as empty.\n"
        "Exit status 4 when some samples could not be scored (listed under \"failed\"; \"complete\": false): the\n"
        "scores then cover only the others and are no full-set result.");
  return spec;
}

int cmd_eval(const Args& a) {
  const std::string dataset = a.require("dataset");
  const bool from_preds = a.has("pred-dir");
  if (from_preds == a.has("model")) fail("eval: give exactly one of --model DIR or --pred-dir DIR");
  const std::string mode = a.get("mode", "generate");
  if (mode != "generate" && mode != "teacher-forced") fail("--mode: '", mode, "' is not generate or teacher-forced");
  const int limit = a.get_int("limit", -1);
  std::unique_ptr<ReasoningSegmenter> seg;
  if (!from_preds) seg = std::make_unique<ReasoningSegmenter>(segmenter_options(a));
  const std::string save = a.get("save-masks");
  if (!save.empty()) fs::create_directories(save);

  auto names = list_reasonseg_samples(dataset);
  if (limit >= 0 && size_t(limit) < names.size()) names.resize(size_t(limit));
  std::ofstream csv;
  if (a.has("csv")) {
    csv.open(a.get("csv"));
    if (!csv) fail(a.get("csv"), ": cannot write");
    csv << "name,iou,intersection,union,n_masks,text\n";
  }
  MetricAccumulator acc;
  nlohmann::json failed = nlohmann::json::array(), missing = nlohmann::json::array();
  // Images that decoded with warnings (damaged but readable): scored, and listed.
  nlohmann::json image_warnings = nlohmann::json::object();
  ProgressBar bar("eval", int64_t(names.size()), false, !a.has("quiet"));
  for (auto& name : names) {
    try {
      ReasonSegSample s = load_reasonseg_sample(dataset, name);
      std::vector<std::string> warnings;
      cv::Mat image = read_image_file(s.image_path, true, kDefaultMaxImagePixels, &warnings);
      if (!warnings.empty()) image_warnings[name] = warnings;
      validate_polygons(s, image.rows, image.cols);
      cv::Mat gt = rasterize_ground_truth(s.polygons, image.rows, image.cols);
      std::vector<std::string> texts = a.has("all-texts") && !from_preds ? s.texts : std::vector<std::string>{s.texts[0]};
      std::unique_ptr<ImageContext> ctx;
      if (seg) ctx = std::make_unique<ImageContext>(seg->encode_image(image, ColorOrder::BGR));
      for (size_t t = 0; t < texts.size(); ++t) {
        cv::Mat pred = cv::Mat::zeros(image.size(), CV_8U);
        int n_masks = 0;
        if (from_preds) {
          auto p = (fs::path(a.get("pred-dir")) / (name + ".png")).string();
          if (fs::exists(p)) {
            cv::Mat m = read_image_file(p, false);
            if (m.size() != image.size())
              fail(p, ": prediction is ", m.cols, "x", m.rows, " but the image is ", image.cols, "x", image.rows);
            pred = m != 0;
            n_masks = 1;
          } else {
            missing.push_back(name);
          }
        } else {
          std::string q = reasonseg_question(texts[t], s.is_sentence);
          SegmentResult r = mode == "teacher-forced" ? seg->segment_teacher_forced(*ctx, q, "[SEG].") : seg->segment(*ctx, q);
          n_masks = int(r.masks.size());
          for (auto& m : r.masks) pred |= m.mask;
        }
        IoUCounts c = intersection_union(pred, gt);
        acc.add(c);
        if (!save.empty() && !from_preds) {
          auto f = (fs::path(save) / (texts.size() > 1 ? name + "_" + std::to_string(t) + ".png" : name + ".png")).string();
          write_image_file(f, pred);
        }
        if (csv.is_open())
          csv << csv_field(name) << "," << c.iou() << "," << c.intersection << "," << c.union_ << "," << n_masks << ","
              << csv_field(texts[t]) << "\n";
      }
    } catch (const Error& e) {
      failed.push_back({{"name", name}, {"error", e.what()}});
    }
    bar.advance(1);
  }
  bar.finish();
  nlohmann::json j = {{"giou", acc.giou()},
                      {"ciou", acc.ciou()},
                      {"acc_at_0.5", acc.acc_at_05()},
                      {"n", acc.count()},
                      {"n_files", names.size()},
                      {"complete", failed.empty()},
                      {"failed", failed},
                      {"missing_predictions", missing},
                      {"image_warnings", image_warnings},
                      {"mode", from_preds ? "pred-dir" : mode},
                      {"definitions",
                       "IoU=inter/(union+1e-5) (1 if union=0, ignore pixels excluded); gIoU=sum IoU/(n+1e-5); "
                       "cIoU=sum inter/(sum union+1e-10); Acc@0.5=fraction with IoU>0.5"}};
  if (a.has("json")) {
    std::ofstream f(a.get("json"));
    if (!f) fail(a.get("json"), ": cannot write");
    f << j.dump(a.has("pretty") ? 2 : -1) << "\n";
  }
  std::printf("gIoU %.4f  cIoU %.4f  Acc@0.5 %.4f  (n=%lld scored, %zu failed, %zu missing predictions)\n", acc.giou(),
              acc.ciou(), acc.acc_at_05(), (long long)acc.count(), failed.size(), missing.size());
  for (auto& f : failed) std::fprintf(stderr, "failed: %s\n", f["error"].get<std::string>().c_str());
  for (const auto& item : image_warnings.items())
    std::fprintf(stderr, "warning: %s: %s\n", printable(item.key()).c_str(), item.value()[0].get<std::string>().c_str());
  if (!failed.empty()) {
    std::fprintf(stderr, "PARTIAL RESULT: %zu of %zu samples could not be scored; the scores above cover the rest\n",
                 failed.size(), names.size());
    return 4;
  }
  return 0;
}

}  // namespace reasonseg::cli
