// reasonseg bench: per-stage timings of a first query on a new image and a follow-up question.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/cuda.h>
#if __has_include(<torch/csrc/autograd/profiler_legacy.h>)
#include <torch/csrc/autograd/profiler_legacy.h>
#define REASONSEG_HAVE_RECORD_PROFILE 1
#endif

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/args.hpp"
#include "cli/commands.hpp"
#include "cli/input_image.hpp"
#include "reasonseg/image_io.hpp"
#include "reasonseg/segmenter.hpp"
#include "reasonseg/version.hpp"
#include "util/error.hpp"

namespace reasonseg::cli {

namespace {

using Clock = std::chrono::steady_clock;

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Memory bandwidth the decoding is compared with. CUDA: a 1 GiB device-to-device copy, counting
// bytes read and written (best of 5). CPU: read bandwidth as LibTorch sees it, best of several
// full passes that sum a buffer much larger than the caches.
double measure_bandwidth_gbs(Device device) {
  if (device == Device::CUDA) {
    auto opts = at::TensorOptions().dtype(at::kFloat).device(at::kCUDA);
    auto src = at::ones({int64_t(1) << 28}, opts), dst = at::empty_like(src);
    dst.copy_(src);  // warm-up
    double best = 0;
    for (int i = 0; i < 5; ++i) {
      torch::cuda::synchronize();
      auto t0 = Clock::now();
      dst.copy_(src);
      torch::cuda::synchronize();
      double sec = std::chrono::duration<double>(Clock::now() - t0).count();
      best = std::max(best, 2.0 * double(src.numel() * 4) / sec / 1e9);
    }
    return best;
  }
  auto buf = at::ones({int64_t(1) << 28}, at::kFloat);  // 1 GiB
  double best = 0;
  for (int i = 0; i < 5; ++i) {
    auto t0 = Clock::now();
    volatile float s = buf.sum().item<float>();
    (void)s;
    double sec = std::chrono::duration<double>(Clock::now() - t0).count();
    best = std::max(best, double(buf.numel() * 4) / sec / 1e9);
  }
  return best;
}

struct Query {
  double total_ms = 0;
  int64_t decode_tokens = 0, prefill_tokens = 0;
  std::map<std::string, double> stages;
  std::vector<int64_t> ids;
  bool masks_via_point = false;
};

// One query; when the answer has no [SEG] (random weights rarely emit one), the mask stages are
// timed with a point prompt on the same image so every stage is measured.
Query run_query(const ReasoningSegmenter& seg, ImageContext& ctx, const std::string& prompt, int new_tokens) {
  QueryOptions q;
  q.max_new_tokens = new_tokens;
  q.ignore_eos = true;
  auto t0 = Clock::now();
  SegmentResult r = seg.segment(ctx, prompt, q);
  Query out;
  out.stages = r.timings_ms;
  out.decode_tokens = r.decode_tokens;
  out.prefill_tokens = r.prefill_tokens;
  out.ids = r.output_ids;
  if (r.masks.empty()) {
    SegmentResult p = seg.segment_prompts(ctx, {PointPrompt{ctx.width() / 2.0f, ctx.height() / 2.0f, 1}});
    for (auto& [k, v] : p.timings_ms) out.stages[k] += v;
    out.masks_via_point = true;
  }
  out.total_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  return out;
}

}  // namespace

const CommandSpec& bench_spec() {
  static const CommandSpec spec = model_command(
      "bench", "(--model DIR | --random-weights PRESET)",
      "Measures a first query and a follow-up per stage, tokens/s and decode bandwidth.",
      {
        {"image", "FILE", "the image (the bundled examples/dog.png)"},
        {"prompt", "TEXT", "the first question"},
        {"followup", "TEXT", "the follow-up question on the same image"},
        {"runs", "N", "measured runs (3)"},
        {"warmup", "N", "unmeasured runs first (1)"},
        {"new-tokens", "N", "tokens decoded per query, EOS ignored (16)"},
        {"json", "FILE", "write every number as JSON"},
        {"pretty", "", "indent the JSON"},
        {"trace", "FILE", "write a Chrome trace of every LibTorch operator of the last run"},
      },
        "Each run: a first query on a freshly encoded image, then a follow-up question on the same image (CLIP\n"
        "and SAM encodings and the prompt-prefix KV cache reused). Reports medians and min/max per stage, tokens/s\n"
        "and decode bandwidth (weight bytes per token / time per token) against the memory bandwidth measured\n"
        "between the two queries of each run: CPU read bandwidth, or on CUDA a device-to-device copy.\n"
        "--trace output opens in chrome://tracing or Perfetto.");
  return spec;
}

int cmd_bench(const Args& a) {
  SegmenterOptions opt = segmenter_options(a);
  opt.max_new_tokens = a.get_int("new-tokens", 16);
  const int runs = a.get_int("runs", 3), warmup = a.get_int("warmup", 1), new_tokens = opt.max_new_tokens;
  if (runs < 1) fail("--runs must be >= 1");
  cv::Mat image = read_input_image("bench", a.has("image") ? a.get("image") : data_path("examples/dog.png"), opt.max_image_pixels);
  const std::string prompt = a.get("prompt", "What is the dog in this image? Please output segmentation mask.");
  const std::string followup = a.get("followup", "Where would the dog sleep? Please output segmentation mask.");

  auto t_load = Clock::now();
  ReasoningSegmenter seg(opt);
  double load_s = std::chrono::duration<double>(Clock::now() - t_load).count();
  // The VM's bandwidth drifts by 2x within minutes, so it is measured in every measured run
  // between the first query and the follow-up: right after the first query's decode and right
  // before the follow-up's, and each run's decodes are compared with their own measurement.
  std::vector<double> run_bw;

  std::vector<Query> firsts, follows;
  for (int i = 0; i < warmup + runs; ++i) {
    // The profiler only records the last run: it costs time and the trace stays readable.
#ifdef REASONSEG_HAVE_RECORD_PROFILE
    std::unique_ptr<torch::autograd::profiler::RecordProfile> trace;
    if (a.has("trace") && i + 1 == warmup + runs)
      trace = std::make_unique<torch::autograd::profiler::RecordProfile>(a.get("trace"));
#else
    if (a.has("trace")) fail("--trace: this LibTorch build has no legacy profiler (RecordProfile)");
#endif
    // The first query includes encoding the image (CLIP and SAM), as a user's first question does.
    const auto t_encode = Clock::now();
    auto ctx = seg.encode_image(image, ColorOrder::BGR);
    const double encode_ms = std::chrono::duration<double, std::milli>(Clock::now() - t_encode).count();
    Query f = run_query(seg, ctx, prompt, new_tokens);
    f.total_ms += encode_ms;
    if (i >= warmup) run_bw.push_back(measure_bandwidth_gbs(seg.device()));
    Query u = run_query(seg, ctx, followup, new_tokens);
    if (i >= warmup) firsts.push_back(f), follows.push_back(u);
    if (!a.has("quiet"))
      std::fprintf(stderr, "run %d%s: first %.0f ms, follow-up %.0f ms\n", i + 1, i < warmup ? " (warm-up)" : "",
                   f.total_ms, u.total_ms);
  }
  auto stage_medians = [](const std::vector<Query>& qs) {
    std::map<std::string, std::vector<double>> all;
    for (auto& q : qs)
      for (auto& [k, v] : q.stages) all[k].push_back(v);
    nlohmann::json med, spread;
    for (auto& [k, v] : all) {
      med[k] = median(v);
      spread[k] = {*std::min_element(v.begin(), v.end()), *std::max_element(v.begin(), v.end())};
    }
    for (auto k : {"clip", "sam_encoder", "prefill", "decode", "mask_decoder", "postprocess"})
      if (!med.contains(k)) med[k] = 0.0;
    return std::make_pair(med, spread);
  };
  auto [fmed, fspread] = stage_medians(firsts);
  auto [umed, uspread] = stage_medians(follows);
  const double bytes_per_token = double(seg.decode_weight_bytes());
  std::vector<double> ft, ut, per_token, fractions;
  for (size_t r = 0; r < firsts.size(); ++r) {
    const Query& q = firsts[r];
    ft.push_back(q.total_ms);
    // Decoding steps (the first token comes from the prefill logits) and their time, of the first
    // query and of both queries together (the run's bandwidth was measured between the two).
    auto steps = [](const Query& x) { return std::max(0.0, double(x.decode_tokens) - 1); };
    const double s1 = steps(q), s2 = s1 + steps(follows[r]);
    if (s1 > 0) per_token.push_back(q.stages.at("decode") / s1);
    if (s2 > 0 && run_bw[r] > 0) {
      const double ms = (q.stages.at("decode") + follows[r].stages.at("decode")) / s2;
      fractions.push_back(bytes_per_token / (ms / 1000.0) / 1e9 / run_bw[r]);
    }
  }
  for (auto& q : follows) ut.push_back(q.total_ms);
  const double ms_per_token = median(per_token);
  const double tok_s = ms_per_token > 0 ? 1000.0 / ms_per_token : 0;
  const double decode_gbs = ms_per_token > 0 ? bytes_per_token / (ms_per_token / 1000.0) / 1e9 : 0;
  const double bw = median(run_bw), fraction = median(fractions);

  nlohmann::json j = {
      {"model", opt.random_weights.empty() ? opt.model_dir : "random:" + opt.random_weights},
      {"device", to_string(seg.device())},
      {"dtype", to_string(seg.dtype())},
      {"quantization", to_string(seg.quantization())},
      {"threads", at::get_num_threads()},
      {"runs", runs},
      {"new_tokens", new_tokens},
      {"load_s", load_s},
      {"weight_bytes", seg.weight_bytes()},
      {"first_query_ms", median(ft)},
      {"followup_query_ms", median(ut)},
      {"first_query_ms_range", {*std::min_element(ft.begin(), ft.end()), *std::max_element(ft.begin(), ft.end())}},
      {"followup_query_ms_range", {*std::min_element(ut.begin(), ut.end()), *std::max_element(ut.begin(), ut.end())}},
      {"stages_ms", fmed},
      {"prefill_tokens", firsts[0].prefill_tokens},
      {"followup_prefill_tokens", follows[0].prefill_tokens},
      {"stages_ms_range", fspread},
      {"followup_stages_ms", umed},
      {"followup_stages_ms_range", uspread},
      {"decode_ms_per_token", ms_per_token},
      {"decode_tokens_per_s", tok_s},
      {"decode_weight_bytes_per_token", bytes_per_token},
      {"decode_bandwidth_gbs", decode_gbs},
      {"measured_bandwidth_gbs", bw},
      {"measured_bandwidth_kind", seg.device() == Device::CUDA ? "device-to-device copy, bytes read + written"
                                                               : "CPU read (at::sum over 1 GiB)"},
      {"measured_bandwidth_gbs_per_run", run_bw},
      {"decode_bandwidth_fraction", fraction},
      {"decode_bandwidth_fraction_per_run", fractions},
      {"mask_stages_via_point_prompt", firsts[0].masks_via_point},
      {"generated_ids", firsts[0].ids}};
  if (a.has("json")) {
    std::ofstream f(a.get("json"));
    if (!f) fail(a.get("json"), ": cannot write");
    f << j.dump(a.has("pretty") ? 2 : -1) << "\n";
  }
  std::printf("%-14s %12s %12s\n", "stage (ms)", "first", "follow-up");
  for (auto k : {"clip", "sam_encoder", "prefill", "decode", "mask_decoder", "postprocess", "total"})
    std::printf("%-14s %12.1f %12.1f\n", k, fmed.value(k, 0.0), umed.value(k, 0.0));
  std::printf("query          %12.1f %12.1f\n", median(ft), median(ut));
  std::printf("decode: %.2f tok/s, %.1f ms/token, %.2f GB/s of weights ; both queries' decodes at %.0f%% of the bandwidth measured between them (median per run; %.2f GB/s)\n", tok_s,
              ms_per_token, decode_gbs, 100 * fraction, bw);
  std::printf("load %.2f s, weights %.2f GB (%s, %s, LLM weights %s, %d threads)\n", load_s, seg.weight_bytes() / 1e9,
              to_string(seg.device()).c_str(), to_string(seg.dtype()).c_str(),
              seg.quantization() == Quantization::Int8 ? "int8" : "in the run dtype", at::get_num_threads());
  return 0;
}

}  // namespace reasonseg::cli
