// Stage-by-stage parity with the reference on every case of tiny-lisa-a (CPU, fp32),
// with the tolerances each case.json states.
#include <catch2/catch.hpp>
#include <cstdlib>

#include "fixture.hpp"
#include "image/image_files.hpp"
#include "reasonseg/segmenter.hpp"

using namespace reasonseg;
using torch::indexing::Slice;

namespace {

const ReasoningSegmenter& fp32_model() {
  static ReasoningSegmenter seg([] {
    SegmenterOptions o;
    o.model_dir = rstest::model_dir();
    o.device = rstest::test_device();
    o.dtype = DType::Float32;
    o.max_new_tokens = 32;
    return o;
  }());
  return seg;
}

struct Tol {
  double atol, rtol;
};

Tol tolerance(const nlohmann::json& tols, const std::string& base) {
  static const std::map<std::string, std::string> group = {
      {"clip_hidden_states", "vision_tower_features"}, {"prefill_last_logits", "logits"},
      {"prefill_last_topk_values", "logits"},           {"step_topk_values", "logits"},
      {"step_logits_seg_eos", "logits"},                {"tf_logits_seg_position", "logits"},
      {"tf_logits_tail_next_token", "logits"},          {"tf_logits_tail_topk_values", "logits"},
      {"sam_sparse_embeddings", "seg_embeddings"}};
  std::string g = group.count(base) ? group.at(base) : base;
  auto& t = tols.at(g);
  return {t.at("atol").get<double>(), t.at("rtol").get<double>()};
}

struct CaseRun {
  int64_t clip_rows = -1;
  nlohmann::json cj;
  SegmentResult result;
  TensorTrace trace;
};

// Teacher-forced cases store the question, or the ReasonSeg JSON LISA's ValDataset built it from.
std::string question_of(const nlohmann::json& cj) {
  if (cj.contains("question")) return cj["question"];
  auto& rs = cj["reason_seg_json"];
  std::string text = rs["text"][0];
  return rs["is_sentence"].get<bool>() ? text + " Please output segmentation mask."
                                       : "What is " + text + " in this image? Please output segmentation mask.";
}

CaseRun run_case(const std::string& name, const nlohmann::json& fixture_case) {
  CaseRun c;
  c.cj = rstest::read_json(rstest::case_dir(name) + "/case.json");
  cv::Mat img = reasonseg::read_image_file(rstest::data_dir() + "/tiny-lisa-a/" + fixture_case["image"].get<std::string>());
  auto& seg = fp32_model();
  auto ctx = seg.encode_image(img, ColorOrder::BGR);
  QueryOptions q;
  q.keep_logits = true;
  if (c.cj["kind"] == "generate")
    c.result = seg.segment(ctx, c.cj["instruction"].get<std::string>(), q, &c.trace);
  else
    c.result = seg.segment_teacher_forced(ctx, question_of(c.cj), c.cj["answer"].get<std::string>(), q, &c.trace);
  return c;
}

// The engine's tensor for an expected key (full tensor or a summary of it).
torch::Tensor actual_for(const std::string& key, CaseRun& c, std::string* base_out) {
  const auto& tr = c.trace;
  auto full = [&](const std::string& k) {
    REQUIRE(tr.count(k));
    return tr.at(k);
  };
  const std::string summaries[] = {"_sub16", "_sub4", "_rowsum", "_colsum"};
  for (auto& s : summaries) {
    if (key.size() > s.size() && key.compare(key.size() - s.size(), s.size(), s) == 0) {
      std::string base = key.substr(0, key.size() - s.size());
      *base_out = base + "#sum";
      if (s == "_sub16" || s == "_sub4") *base_out = base;
      // The fixture sums SAM's input without its batch dimension (images[0]).
      torch::Tensor f = base == "sam_input" && s.find("sum") != std::string::npos ? full(base)[0] : full(base);
      return rstest::summarize(f, s.substr(1));
    }
  }
  *base_out = key;
  if (key == "prefill_last_topk_values") return std::get<0>(full("prefill_last_logits").topk(64));
  if (key == "prefill_last_topk_ids") return std::get<1>(full("prefill_last_logits").topk(64));
  if (key == "step_topk_values") return std::get<0>(full("step_logits").topk(8, -1));
  if (key == "step_topk_ids") return std::get<1>(full("step_logits").topk(8, -1));
  if (key == "step_logits_seg_eos") return full("step_logits").index({Slice(), torch::tensor({32000, 2})});
  if (key.rfind("tf_logits", 0) == 0) {
    auto logits = full("logits");
    if (key == "tf_logits_seg_position") return logits[c.cj["seg_hidden_rows"][0].get<int64_t>()];
    auto pos = torch::tensor(c.cj["tf_logits_tail_positions"].get<std::vector<int64_t>>());
    auto rows = logits.index({pos});
    if (key == "tf_logits_tail_topk_values") return std::get<0>(rows.topk(8, -1));
    if (key == "tf_logits_tail_topk_ids") return std::get<1>(rows.topk(8, -1));
    if (key == "tf_logits_tail_next_token") {
      auto next = c.cj["tf_logits_tail_next_token_ids"];
      std::vector<float> v;  // the fixture stores 0 where no next token exists
      for (size_t i = 0; i < next.size(); ++i)
        v.push_back(next[i].is_null() ? 0.0f : rows[int64_t(i)][next[i].get<int64_t>()].item<float>());
      return torch::tensor(v);
    }
  }
  if (key == "clip_hidden_states") {
    // Layers past the selected hidden state are never run; compare the ones that are.
    auto h = full(key);
    c.clip_rows = h.size(0);
    return h;
  }
  return full(key);
}

// How many elements a _rowsum/_colsum summary adds up.
int64_t summed_count(const CaseRun& c, const std::string& base, const std::string& key) {
  const auto& full = c.trace.at(base);
  return key.find("_rowsum") != std::string::npos ? full.size(-1) : full.size(-2);
}

}  // namespace

TEST_CASE("fp32 CPU parity with the reference, every stage of every case", "[parity]") {
  auto fixture = rstest::read_json(rstest::data_dir() + "/tiny-lisa-a/fixture.json");
  for (auto& fc : fixture["cases"]) {
    std::string name = fc["name"];
    SECTION(name) {
      CaseRun c = run_case(name, fc);
      auto exp = rstest::read_tensors(rstest::case_dir(name) + "/expected.safetensors");
      auto& tols = c.cj["tolerances"];
      // Token ids and texts: exact.
      if (c.cj["kind"] == "generate") {
        REQUIRE(c.result.output_ids == c.cj["generated_ids"].get<std::vector<int64_t>>());
        REQUIRE(c.result.stopped_by == (c.cj["stopped_by"] == "eos" ? "eos" : "max_new_tokens"));
        REQUIRE(c.result.chat_text == c.cj["text_output"].get<std::string>());
      }
      REQUIRE(c.result.input_ids == c.cj["input_ids"].get<std::vector<int64_t>>());
      REQUIRE(int(c.result.masks.size()) == c.cj["num_masks"].get<int>());
      for (auto& [key, e] : exp) {
        if (key == "mask_binary") continue;
        std::string base;
        torch::Tensor a = actual_for(key, c, &base);
        torch::Tensor ex = e;
        if (key == "clip_hidden_states") ex = e.narrow(0, 0, c.clip_rows);
        INFO(name << " / " << key);
        if (e.scalar_type() == torch::kInt64) {  // top-k ids: exact
          REQUIRE(torch::equal(a.to(torch::kInt64), ex));
          continue;
        }
        bool is_sum = base.size() > 4 && base.compare(base.size() - 4, 4, "#sum") == 0;
        std::string tb = is_sum ? base.substr(0, base.size() - 4) : base;
        Tol t = tolerance(tols, tb.rfind("sam_input", 0) == 0 ? "sam_input" : tb);
        if (is_sum) {
          // A sum of n elements, each within atol + rtol|b|, is within n * atol (+ rtol terms).
          int64_t n = summed_count(c, tb, key);
          t.atol = tb == "sam_input" ? 1e-2 : t.atol * double(n);
        }
        auto r = rstest::compare(a, ex, t.atol, t.rtol);
        INFO("max |diff| " << r.max_abs << ", violations " << r.violations << " of " << r.numel);
        INFO("actual " << a.flatten().narrow(0, 0, std::min<int64_t>(a.numel(), 16)) << " expected "
                       << ex.flatten().narrow(0, 0, std::min<int64_t>(ex.numel(), 16)));
        REQUIRE(r.shape_ok);
        REQUIRE(r.violations == 0);
      }
      // Binary masks: identical except where the reference logit is within 1e-3 of 0.
      if (exp.count("mask_binary")) {
        auto bin = c.trace.at("mask_binary");
        auto mism = bin.ne(exp.at("mask_binary"));
        auto unstable = exp.at("mask_logits").abs().lt(1e-3);
        INFO("mismatched pixels " << mism.sum().item<int64_t>());
        REQUIRE((mism & ~unstable).sum().item<int64_t>() == 0);
      }
    }
  }
}
