// The CLI end to end: segment (JSON, PNGs, overlay, tensor dump), tokenize, eval.
#include <catch2/catch.hpp>
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <unistd.h>  // getpid
#include <opencv2/imgcodecs.hpp>

#include "fixture.hpp"
#include <nlohmann/json.hpp>

#include "reasonseg/eval.hpp"
#include "synthetic.hpp"

namespace fs = std::filesystem;

using rstest::run_cli;

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

std::string tmp(const std::string& name) {
  auto d = fs::temp_directory_path() / ("reasonseg_cli_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return (d / name).string();
}

}  // namespace

TEST_CASE("CLI segment: JSON, mask PNGs, overlay and the tensor dump match the reference", "[cli]") {
  auto cj = rstest::read_json(rstest::case_dir("g1_one_seg_a_rect") + "/case.json");
  auto exp = rstest::read_tensors(rstest::case_dir("g1_one_seg_a_rect") + "/expected.safetensors");
  std::string img = rstest::data_dir() + "/tiny-lisa-a/images/a_rect.png";
  std::string args = "segment --quiet --model " + rstest::model_dir() + " --image " + img + " --prompt \"" +
                     cj["instruction"].get<std::string>() + "\" --dtype fp32 --device cpu --max-new-tokens 32 --json " +
                     tmp("g1.json") + " --out-mask " + tmp("g1_mask") + " --overlay " + tmp("g1_overlay.png") +
                     " --dump-tensors " + tmp("g1.safetensors") + " > " + tmp("g1.out");
  REQUIRE(run_cli(args) == 0);
  auto j = rstest::read_json(tmp("g1.json"));
  REQUIRE(j["input_ids"] == cj["input_ids"]);
  REQUIRE(j["output_ids"] == cj["generated_ids"]);
  REQUIRE(j["masks"].size() == 1);
  REQUIRE(j["masks"][0]["score"].get<double>() == Approx(cj["iou_predictions"][0].get<double>()).margin(2e-4));
  for (auto k : {"clip", "sam_encoder", "prefill", "decode", "mask_decoder", "postprocess"}) REQUIRE(j["timings_ms"].contains(k));
  cv::Mat mask = cv::imread(j["masks"][0]["file"].get<std::string>(), cv::IMREAD_GRAYSCALE);
  REQUIRE(mask.size() == cv::Size(331, 197));
  REQUIRE(cv::countNonZero(mask) == j["masks"][0]["area"].get<int>());
  // The PNG equals the reference mask except where the reference logit is within 1e-3 of 0.
  auto ref = exp.at("mask_binary")[0];
  auto logits = exp.at("mask_logits")[0];
  int bad = 0;
  for (int y = 0; y < mask.rows; ++y)
    for (int x = 0; x < mask.cols; ++x)
      bad += (mask.at<uint8_t>(y, x) != 0) != (ref[y][x].item<uint8_t>() != 0) && std::abs(logits[y][x].item<float>()) >= 1e-3;
  REQUIRE(bad == 0);
  REQUIRE(j["has_target"] == true);
  // Compact JSON: one line.
  const std::string json_text = read_file(tmp("g1.json"));
  REQUIRE(std::count(json_text.begin(), json_text.end(), '\n') == 1);
  // The overlay: the image with the legend strip (the answer, the mask line) below it.
  cv::Mat overlay = cv::imread(tmp("g1_overlay.png"));
  REQUIRE(overlay.cols == 331);
  REQUIRE(overlay.rows > 197 + 20);
  auto dump = rstest::read_tensors(tmp("g1.safetensors"));
  for (auto k : {"clip_pixel_values", "sam_input", "vision_tower_features", "mm_projector_out", "llm_inputs_embeds",
                 "prefill_last_logits", "step_logits", "final_hidden_states", "seg_hidden_states", "seg_embeddings",
                 "sam_image_embeddings", "sam_sparse_embeddings", "low_res_masks", "iou_predictions", "mask_logits",
                 "mask_binary"})
    REQUIRE(dump.count(k));
  REQUIRE(dump["sam_input"].sizes() == torch::IntArrayRef({1, 3, 1024, 1024}));
  REQUIRE(dump["step_logits"].sizes() == torch::IntArrayRef({24, 32003}));
  // Positions before prefill_start came from the model's prefix cache (not recomputed, not dumped).
  const int64_t start = int64_t(dump.at("prefill_start")[0].item<float>());
  REQUIRE(start == 35);
  auto want = exp.at("final_hidden_states").narrow(1, start, exp.at("final_hidden_states").size(1) - start);
  REQUIRE(dump["final_hidden_states"].sizes() == want.sizes());
  REQUIRE(((dump["mask_binary"] == 0) | (dump["mask_binary"] == 1)).all().item<bool>());
  auto r = rstest::compare(dump["final_hidden_states"], want, 2e-4, 1e-4);
  REQUIRE(r.violations == 0);
}

TEST_CASE("CLI segment --answer runs the teacher-forced path", "[cli]") {
  auto cj = rstest::read_json(rstest::case_dir("t1_tf_sure_a_truck") + "/case.json");
  std::string args = "segment --quiet --model " + rstest::model_dir() + " --image " + rstest::data_dir() +
                     "/tiny-lisa-a/images/a_truck.png --prompt \"" + cj["question"].get<std::string>() +
                     "\" --answer \"Sure, it is [SEG].\" --dtype fp32 --json " + tmp("t1.json") + " > /dev/null";
  REQUIRE(run_cli(args) == 0);
  auto j = rstest::read_json(tmp("t1.json"));
  REQUIRE(j["input_ids"] == cj["input_ids"]);
  REQUIRE(j["stopped_by"] == "teacher_forced");
  REQUIRE(j["masks"].size() == 1);
  REQUIRE(j["masks"][0]["score"].get<double>() == Approx(cj["iou_predictions"][0].get<double>()).margin(2e-4));
}

TEST_CASE("CLI segment --json - writes only one JSON line to stdout; the demo model says what it is", "[cli]") {
  std::string args = "segment --model " + rstest::model_dir() + " --image " + rstest::data_dir() +
                     "/tiny-lisa-a/images/a_dog.png --prompt \"Where is the dog?\" --dtype fp32 --max-new-tokens 8 "
                     "--json - > " + tmp("stdout.json") + " 2> " + tmp("stderr.txt");
  REQUIRE(run_cli(args) == 0);
  const std::string out = read_file(tmp("stdout.json"));
  REQUIRE(std::count(out.begin(), out.end(), '\n') == 1);
  auto j = nlohmann::json::parse(out);
  REQUIRE(j.contains("has_target"));
  REQUIRE(j["timings_ms"]["total"].get<double>() >= j["timings_ms"]["sam_encoder"].get<double>());
  REQUIRE(j["note"].get<std::string>().find("random weights") != std::string::npos);
  const std::string err = read_file(tmp("stderr.txt"));
  REQUIRE_THAT(err, Catch::Contains("random weights"));
  // Not a terminal: no carriage-return redraws, one line for the load.
  REQUIRE(err.find('\r') == std::string::npos);
  REQUIRE_THAT(err, Catch::Contains("loading"));
  // --pretty indents.
  REQUIRE(run_cli("segment --quiet --pretty --model " + rstest::model_dir() + " --image " + rstest::data_dir() +
              "/tiny-lisa-a/images/a_dog.png --prompt hi --max-new-tokens 2 --json - > " + tmp("pretty.json")) == 0);
  const std::string pretty = read_file(tmp("pretty.json"));
  REQUIRE(std::count(pretty.begin(), pretty.end(), '\n') > 10);
}

TEST_CASE("CLI segment on SESAME: has_target false and 'no target' when the answer has no [SEG]", "[cli][families]") {
  auto cj = rstest::read_json(rstest::case_dir("g2_no_seg_sa_truck", "tiny-sesame-a") + "/case.json");
  const std::string model = rstest::data_dir() + "/tiny-sesame-a";
  REQUIRE(run_cli("segment --quiet --model " + model + " --image " + model + "/images/sa_truck.png --prompt \"" +
              cj["instruction"].get<std::string>() + "\" --dtype fp32 --max-new-tokens 32 --json " + tmp("sa.json") +
              " --overlay " + tmp("sa_overlay.png") + " > " + tmp("sa.out")) == 0);
  auto j = rstest::read_json(tmp("sa.json"));
  REQUIRE(j["family"] == "sesame");
  REQUIRE(j["has_target"] == false);
  REQUIRE(j["masks"].empty());
  REQUIRE(j["text"] == cj["text_output"]);
  REQUIRE_THAT(read_file(tmp("sa.out")), Catch::Contains("no target"));
  REQUIRE(!cv::imread(tmp("sa_overlay.png")).empty());
  // LISA++'s task sentence from the CLI.
  auto pj = rstest::read_json(rstest::case_dir("g1_two_seg_inst_pa_dog", "tiny-lisapp-a") + "/case.json");
  const std::string pp = rstest::data_dir() + "/tiny-lisapp-a";
  REQUIRE(run_cli("segment --quiet --model " + pp + " --image " + pp + "/images/pa_dog.png --prompt \"" +
              pj["instruction_base"].get<std::string>() + "\" --task inst-conv-seg --dtype fp32 --max-new-tokens 32 --json " +
              tmp("pp.json") + " > /dev/null") == 0);
  auto k = rstest::read_json(tmp("pp.json"));
  REQUIRE(k["input_ids"] == pj["input_ids"]);
  REQUIRE(k["masks"].size() == 2);
}

TEST_CASE("CLI help: generated from each command's option table, the same at the top level", "[cli]") {
  REQUIRE(run_cli("--help > " + tmp("help.txt")) == 0);
  const std::string top = read_file(tmp("help.txt"));
  for (auto cmd : {"segment", "eval", "bench", "tokenize", "convert", "version"}) {
    REQUIRE_THAT(top, Catch::Contains(std::string("  ") + cmd));
    if (std::string(cmd) == "version") continue;
    REQUIRE(run_cli(std::string(cmd) + " --help > " + tmp("cmd_help.txt")) == 0);
    const std::string help = read_file(tmp("cmd_help.txt"));
    // The synopsis line of the command's help appears verbatim at the top level.
    const std::string synopsis = help.substr(7, help.find(" [options]") - 7);  // after "usage: "
    REQUIRE_THAT(top, Catch::Contains(synopsis));
  }
  // Every option the parser accepts is documented: an unknown one points to --help, and each
  // documented one is accepted (it fails later for other reasons, never as "unknown option").
  REQUIRE(run_cli("segment --help > " + tmp("seg_help.txt")) == 0);
  const std::string seg_help = read_file(tmp("seg_help.txt"));
  for (auto opt : {"--model", "--vision-tower", "--threads", "--max-image-pixels", "--allow-special-tokens", "--stream",
                   "--timeout-ms", "--pretty", "--dump-tensors", "--copy-weights", "--quiet"})
    REQUIRE_THAT(seg_help, Catch::Contains(opt));
  REQUIRE(run_cli("segment --bogus 2> " + tmp("bogus.txt")) == 1);
  REQUIRE_THAT(read_file(tmp("bogus.txt")), Catch::Contains("unknown option --bogus ('reasonseg segment --help' lists"));
  REQUIRE(run_cli("version > " + tmp("version.txt")) == 0);
  REQUIRE_THAT(read_file(tmp("version.txt")), Catch::Contains("data directory: /"));
}

TEST_CASE("CLI segment --stream prints the answer as it is generated", "[cli]") {
  std::string base = "segment --quiet --model " + rstest::model_dir() + " --image " + rstest::data_dir() +
                     "/tiny-lisa-a/images/a_dog.png --prompt \"Where is the dog?\" --dtype fp32 --max-new-tokens 12 --json " +
                     tmp("stream.json");
  REQUIRE(run_cli(base + " --stream > " + tmp("stream.txt")) == 0);
  auto j = rstest::read_json(tmp("stream.json"));
  const std::string printed = read_file(tmp("stream.txt"));
  // The streamed pieces are the answer before chat.py's cleanup, on the first line.
  std::vector<int64_t> ids = j["output_ids"];
  REQUIRE(!ids.empty());
  REQUIRE(printed.rfind("\n") != std::string::npos);
  REQUIRE(j["stopped_by"] == "max_new_tokens");
  REQUIRE(printed.size() > 10);
}

TEST_CASE("CLI tokenize --chat --json gives the prompt and the reference ids", "[cli]") {
  auto cj = rstest::read_json(rstest::case_dir("g2_two_seg_a_horn") + "/case.json");
  REQUIRE(run_cli("tokenize --model " + rstest::model_dir() + " --chat --json \"" + cj["instruction"].get<std::string>() +
              "\" > " + tmp("tok.json")) == 0);
  auto j = rstest::read_json(tmp("tok.json"));
  REQUIRE(j["prompt"] == cj["prompt"]);
  REQUIRE(j["ids"] == cj["input_ids"]);
}

TEST_CASE("CLI errors: clear message and non-zero exit", "[cli]") {
  REQUIRE(run_cli("segment --model /nonexistent --image x.png --prompt hi 2> " + tmp("err.txt")) != 0);
  REQUIRE(run_cli("segment --model " + rstest::model_dir() + " --image /nonexistent.png --prompt hi 2> " + tmp("err2.txt")) != 0);
  REQUIRE(read_file(tmp("err2.txt")).find("/nonexistent.png") != std::string::npos);
  // A value option followed by another option lacks its value; an empty value is not a missing one.
  REQUIRE(run_cli("segment --model --image x.png --prompt hi 2> " + tmp("err3.txt")) == 1);
  REQUIRE_THAT(read_file(tmp("err3.txt")), Catch::Contains("--model needs a value (found the option --image"));
  REQUIRE(run_cli("segment --model " + rstest::model_dir() + " --image x.png --prompt \"\" 2> " + tmp("err4.txt")) == 1);
  REQUIRE_THAT(read_file(tmp("err4.txt")), Catch::Contains("--prompt is empty"));
}

TEST_CASE("CLI eval --pred-dir on a synthetic ReasonSeg split", "[cli][eval]") {
  auto dir = rstest::make_synthetic_reasonseg("cli");
  // Three samples of the split are broken on purpose: a partial score exits 4 and says so.
  REQUIRE(run_cli("eval --quiet --dataset " + dir + " --pred-dir " + dir + "/preds --json " + tmp("ev.json") + " --csv " +
              tmp("ev.csv") + " > /dev/null 2> " + tmp("ev.err")) == 4);
  REQUIRE_THAT(read_file(tmp("ev.err")), Catch::Contains("PARTIAL RESULT: 3 of 7 samples"));
  auto j = rstest::read_json(tmp("ev.json"));
  REQUIRE(j["complete"] == false);
  REQUIRE(j["n"] == 4);
  REQUIRE(j["failed"].size() == 3);
  REQUIRE(j["missing_predictions"] == nlohmann::json::array({"c_empty"}));
  double giou = (50.0 / (100 + 1e-5) + 50.0 / (50 + 1e-5) + 1.0 + 100.0 / (100 + 1e-5)) / (4 + 1e-5);
  REQUIRE(j["giou"].get<double>() == Approx(giou).epsilon(1e-12));
  REQUIRE(j["ciou"].get<double>() == Approx(200.0 / (250 + 1e-10)).epsilon(1e-12));
  REQUIRE(j["acc_at_0.5"].get<double>() == Approx(0.75));
  std::ifstream csv(tmp("ev.csv"));
  std::string line;
  int lines = 0;
  while (std::getline(csv, line)) ++lines;
  REQUIRE(lines == 5);  // header + 4 scored samples
}

TEST_CASE("CLI eval --model teacher-forced scores the engine's masks", "[cli][eval]") {
  auto dir = rstest::make_synthetic_reasonseg("model");
  REQUIRE(run_cli("eval --quiet --dataset " + dir + " --model " + rstest::model_dir() +
              " --dtype fp32 --mode teacher-forced --limit 2 --save-masks " + tmp("evm") + " --json " + tmp("evm.json") +
              " > /dev/null 2>&1") == 0);
  auto j = rstest::read_json(tmp("evm.json"));
  REQUIRE(j["n"] == 2);
  REQUIRE(fs::exists(tmp("evm") + "/a_half.png"));
  // gIoU recomputed from the saved masks and the ground truth, sample by sample.
  auto names = reasonseg::list_reasonseg_samples(dir);
  std::sort(names.begin(), names.end());
  double sum = 0;
  int scored = 0;
  for (auto& name : names) {
    const auto mask_file = tmp("evm") + "/" + name + ".png";
    if (!fs::exists(mask_file)) continue;
    auto sample = reasonseg::load_reasonseg_sample(dir, name);
    cv::Mat pred = cv::imread(mask_file, cv::IMREAD_GRAYSCALE);
    cv::Mat gt = reasonseg::rasterize_ground_truth(sample.polygons, pred.rows, pred.cols);
    sum += reasonseg::intersection_union(pred != 0, gt).iou();
    ++scored;
  }
  REQUIRE(scored == 2);
  REQUIRE(j["giou"].get<double>() == Approx(sum / (scored + 1e-5)).epsilon(1e-9));  // LISA's AverageMeter epsilon
}

TEST_CASE("CLI convert: safetensors -> .bin shards -> same answer and masks", "[cli][weights]") {
  const std::string out = tmp("tiny-bin");
  fs::remove_all(out);
  REQUIRE(run_cli("convert --quiet --model " + rstest::model_dir() + " --out " + out + " --format bin --shard-gb 0.004 > /dev/null") == 0);
  REQUIRE(fs::exists(out + "/pytorch_model.bin.index.json"));
  REQUIRE(fs::exists(out + "/pytorch_model-00001-of-00002.bin"));
  REQUIRE(fs::exists(out + "/clip-vit-tiny-a/model.safetensors"));  // sub-directories are copied
  auto cj = rstest::read_json(rstest::case_dir("g1_one_seg_a_rect") + "/case.json");
  std::string img = rstest::data_dir() + "/tiny-lisa-a/images/a_rect.png";
  for (const std::string& m : {rstest::model_dir(), out}) {
    REQUIRE(run_cli("segment --quiet --model " + m + " --image " + img + " --prompt \"" + cj["instruction"].get<std::string>() +
                "\" --dtype fp32 --max-new-tokens 32 --json " + tmp("conv.json") + " > /dev/null") == 0);
    auto j = rstest::read_json(tmp("conv.json"));
    REQUIRE(j["output_ids"] == cj["generated_ids"]);
    REQUIRE(j["masks"].size() == 1);
  }
}

TEST_CASE("CLI bench: exactly --new-tokens per query, every requested JSON key, a readable trace", "[cli]") {
  std::string img = rstest::data_dir() + "/tiny-lisa-a/images/a_rect.png";
  REQUIRE(run_cli("bench --quiet --model " + rstest::model_dir() + " --image " + img +
              " --dtype bf16 --runs 2 --warmup 0 --new-tokens 5 --json " + tmp("bench.json") + " --trace " +
              tmp("bench.trace") + " > " + tmp("bench.out")) == 0);
  auto j = rstest::read_json(tmp("bench.json"));
  REQUIRE(j["generated_ids"].size() == 5);  // EOS ignored
  for (auto k : {"first_query_ms", "followup_query_ms", "decode_tokens_per_s", "measured_bandwidth_gbs",
                 "decode_bandwidth_fraction"})
    REQUIRE(j[k].get<double>() > 0);
  for (auto k : {"clip", "sam_encoder", "prefill", "decode", "mask_decoder", "postprocess"}) {
    REQUIRE(j["stages_ms"][k].get<double>() > 0);
    REQUIRE(j["followup_stages_ms"].contains(k));
  }
  // Bandwidth is measured before each measured run; the fraction is the median of the runs'.
  REQUIRE(j["measured_bandwidth_gbs_per_run"].size() == 2);
  REQUIRE(j["decode_bandwidth_fraction_per_run"].size() == 2);
  // The follow-up reuses the image encodings and the prompt prefix.
  REQUIRE(j["followup_stages_ms"]["sam_encoder"].get<double>() == 0);
  REQUIRE(j["followup_prefill_tokens"].get<int64_t>() < j["prefill_tokens"].get<int64_t>());
  auto trace = rstest::read_json(tmp("bench.trace"));
  bool saw_mm = false;
  for (auto& e : trace) saw_mm = saw_mm || (e.contains("name") && e["name"] == "aten::mm");
  REQUIRE(saw_mm);
}

TEST_CASE("CLI segment: a damaged but readable image gives our warning line, none of libpng's", "[cli][hostile]") {
  // The example image with a tEXt chunk whose CRC is wrong, right after IHDR.
  const std::string png = read_file(rstest::data_dir() + "/tiny-lisa-a/images/a_dog.png");
  const std::string chunk = std::string("\0\0\0\x0A", 4) + std::string("tEXtComment\0hi", 14) + std::string("\x01\x02\x03\x04", 4);
  const std::string damaged = tmp("damaged.png");
  std::ofstream(damaged, std::ios::binary) << png.substr(0, 33) + chunk + png.substr(33);
  REQUIRE(run_cli("segment --quiet --model " + rstest::model_dir() + " --image " + damaged +
                  " --prompt hi --max-new-tokens 2 --json " + tmp("damaged.json") + " > /dev/null 2> " + tmp("damaged.err")) == 0);
  const std::string err = read_file(tmp("damaged.err"));
  REQUIRE_THAT(err, Catch::Contains("reasonseg segment: warning: " + damaged + ": PNG: tEXt: CRC error"));
  REQUIRE(err.find("libpng") == std::string::npos);
  auto j = nlohmann::json::parse(read_file(tmp("damaged.json")));
  REQUIRE(j["image_warnings"] == nlohmann::json::array({"PNG: tEXt: CRC error"}));
  // The same image cut in half: our error, naming the file, and nothing of libpng's.
  std::ofstream(damaged, std::ios::binary | std::ios::trunc) << png.substr(0, png.size() / 2);
  REQUIRE(run_cli("segment --quiet --model " + rstest::model_dir() + " --image " + damaged + " --prompt hi 2> " +
                  tmp("cut.err")) != 0);
  const std::string cut = read_file(tmp("cut.err"));
  REQUIRE_THAT(cut, Catch::StartsWith("reasonseg segment: error: " + damaged + ": not a readable PNG image ("));
  REQUIRE(std::count(cut.begin(), cut.end(), '\n') == 1);
}
