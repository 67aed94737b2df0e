// Stage-by-stage parity with the reference on every case of the three fixture families, each made by
// its authors' own code: LISA v1 (tiny-lisa-a), SESAME (tiny-sesame-a) and LISA++ (tiny-lisapp-a)
// (fp32; CPU, or the device REASONSEG_TEST_DEVICE names), with the tolerances each case.json states. The queries
// run the path users run: a trace only listens. Positions reused from caches (the model's text
// before the image, an image's previous prompt) are not recomputed, so the fixture's tensors are
// compared from the first position the prefill computed. Follow-ups (a second query on the same
// ImageContext) must reproduce the fixture as a fresh run of their instruction does.
#include <catch2/catch.hpp>
#include <cstdlib>

#include "fixture.hpp"
#include "pipeline/trace.hpp"
#include "reasonseg/image_io.hpp"
#include "reasonseg/segmenter.hpp"

using namespace reasonseg;
using torch::indexing::Slice;

namespace {

// The model of a fixture family: the bundled tiny-lisa-a, or the fixture directory itself. Every
// choice (family, template, projector, image tokens) comes from the checkpoint's config.
const ReasoningSegmenter& fp32_model(const std::string& fixture) {
  static std::map<std::string, std::unique_ptr<ReasoningSegmenter>> models;
  auto& m = models[fixture];
  if (!m) {
    SegmenterOptions o;
    o.model_dir = rstest::fixture_model_dir(fixture);
    o.device = rstest::test_device();
    o.dtype = DType::Float32;
    o.max_new_tokens = 32;
    m = std::make_unique<ReasoningSegmenter>(o);
  }
  return *m;
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
  std::string fixture;
  int64_t clip_rows = -1;
  nlohmann::json cj;
  ImageContext ctx;
  SegmentResult result;
  std::map<std::string, torch::Tensor> trace;
  int64_t prefill_start = 0;  // first prompt position the query computed
  bool follow_up = false;     // the image was encoded by an earlier query
  std::vector<int64_t> tail_rows;  // rows of the fixture's tf_logits_tail_* the query computed
};

// Tensors of the image encoders: reported when an image is encoded, not by follow-ups.
bool image_stage(const std::string& key) {
  for (auto p : {"clip_", "vision_tower_features", "mm_projector_out", "sam_input", "sam_image_embeddings"})
    if (key.rfind(p, 0) == 0) return true;
  return false;
}

// Expected tensors indexed by sequence position start at the first computed position.
torch::Tensor expected_from(const std::string& key, const torch::Tensor& e, int64_t start) {
  if (key == "llm_inputs_embeds" || key == "final_hidden_states") return e.narrow(1, start, e.size(1) - start);
  return e;
}

// Runs a fixture case on a freshly encoded image, or as a follow-up on `earlier`'s context.
CaseRun run_case(const std::string& fixture, const std::string& name, const nlohmann::json& fixture_case,
               CaseRun* earlier = nullptr) {
  CaseRun c;
  c.fixture = fixture;
  c.cj = rstest::read_json(rstest::case_dir(name, fixture) + "/case.json");
  auto& seg = fp32_model(fixture);
  TensorCollector tr;
  if (earlier) {
    c.ctx = std::move(earlier->ctx);
    c.follow_up = true;
  } else {
    cv::Mat img = reasonseg::read_image_file(rstest::data_dir() + "/" + fixture + "/" + fixture_case["image"].get<std::string>());
    c.ctx = seg.encode_image(img, ColorOrder::BGR, &tr);
  }
  QueryOptions q;
  q.keep_logits = true;
  if (c.cj["kind"] == "generate")
    c.result = seg.segment(c.ctx, c.cj["instruction"].get<std::string>(), q, &tr);
  else
    c.result = seg.segment_teacher_forced(c.ctx, rstest::question_of(c.cj), c.cj["answer"].get<std::string>(), q, &tr);
  c.trace = std::move(tr.tensors);
  REQUIRE(c.trace.count("prefill_start"));
  c.prefill_start = int64_t(c.trace.at("prefill_start")[0].item<float>());
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
    auto logits = full("logits");  // from position prefill_start on
    if (key == "tf_logits_seg_position") return logits[c.cj["seg_hidden_rows"][0].get<int64_t>() - c.prefill_start];
    // Tail positions before prefill_start came from the cache (a follow-up): compare the rest.
    std::vector<int64_t> pos;
    c.tail_rows.clear();
    auto all = c.cj["tf_logits_tail_positions"].get<std::vector<int64_t>>();
    for (size_t i = 0; i < all.size(); ++i)
      if (all[i] >= c.prefill_start) pos.push_back(all[i] - c.prefill_start), c.tail_rows.push_back(int64_t(i));
    auto rows = logits.index({torch::tensor(pos)});
    if (key == "tf_logits_tail_topk_values") return std::get<0>(rows.topk(8, -1));
    if (key == "tf_logits_tail_topk_ids") return std::get<1>(rows.topk(8, -1));
    if (key == "tf_logits_tail_next_token") {
      auto next = c.cj["tf_logits_tail_next_token_ids"];
      std::vector<float> v;  // the fixture stores 0 where no next token exists
      for (size_t r = 0; r < c.tail_rows.size(); ++r) {
        auto& n = next[size_t(c.tail_rows[r])];
        v.push_back(n.is_null() ? 0.0f : rows[int64_t(r)][n.get<int64_t>()].item<float>());
      }
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

// Every expected tensor of the case, compared with what the query computed.
void check_case(const std::string& name, CaseRun& c) {
  auto exp = rstest::read_tensors(rstest::case_dir(name, c.fixture) + "/expected.safetensors");
  auto& tols = c.cj["tolerances"];
  INFO(name << (c.follow_up ? " (follow-up)" : "") << ", prefill from position " << c.prefill_start);
  // Token ids and texts: exact.
  if (c.cj["kind"] == "generate") {
    REQUIRE(c.result.output_ids == c.cj["generated_ids"].get<std::vector<int64_t>>());
    REQUIRE(to_string(c.result.stopped_by) == (c.cj["stopped_by"] == "eos" ? "eos" : "max_new_tokens"));
    REQUIRE(c.result.chat_text == c.cj["text_output"].get<std::string>());
  }
  REQUIRE(c.result.input_ids == c.cj["input_ids"].get<std::vector<int64_t>>());
  REQUIRE(int(c.result.masks.size()) == c.cj["num_masks"].get<int>());
  // Presence: SESAME's object_presence; LISA and LISA++: a [SEG] was generated.
  if (c.cj.contains("object_presence")) REQUIRE(c.result.has_target() == c.cj["object_presence"].get<bool>());
  else REQUIRE(c.result.has_target() == (c.cj["num_masks"].get<int>() > 0));
  // SESAME's output_mask: the first mask thresholded, or zeros at the image size.
  if (exp.count("output_mask")) {
    const auto& om = exp.at("output_mask");
    if (c.result.masks.empty()) {
      REQUIRE(om.sum().item<int64_t>() == 0);
    } else {
      const cv::Mat& m = c.result.masks[0].mask;
      REQUIRE(m.rows == om.size(0));
      REQUIRE(m.cols == om.size(1));
      auto ours = torch::from_blob(m.data, {m.rows, m.cols}, torch::kUInt8).ne(0);
      auto unstable = exp.at("mask_logits")[0].abs().lt(1e-3);
      REQUIRE((ours.ne(om.ne(0)) & ~unstable).sum().item<int64_t>() == 0);
    }
  }
  for (auto& [key, e] : exp) {
    if (key == "mask_binary" || key == "output_mask") continue;
    if (c.follow_up && image_stage(key)) {
      REQUIRE(c.trace.count(key) == 0);  // cached in the context: not recomputed
      continue;
    }
    std::string base;
    torch::Tensor a = actual_for(key, c, &base);
    torch::Tensor ex = expected_from(key, e, c.prefill_start);
    if (key == "clip_hidden_states") ex = e.narrow(0, 0, c.clip_rows);
    if (key.rfind("tf_logits_tail", 0) == 0) ex = e.index({torch::tensor(c.tail_rows)});
    INFO(key);
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
    auto bin = c.trace.at("mask_binary").to(torch::kUInt8);
    auto mism = bin.ne(exp.at("mask_binary"));
    auto unstable = exp.at("mask_logits").abs().lt(1e-3);
    INFO("mismatched pixels " << mism.sum().item<int64_t>());
    REQUIRE((mism & ~unstable).sum().item<int64_t>() == 0);
  }
}

const nlohmann::json& fixture_case(const nlohmann::json& fixture, const std::string& name) {
  for (auto& fc : fixture["cases"])
    if (fc["name"] == name) return fc;
  FAIL("no fixture case " << name);
  throw;
}

// Every case of a fixture, fresh and asked again on the same image.
void check_fixture(const std::string& fx) {
  auto fixture = rstest::read_json(rstest::data_dir() + "/" + fx + "/fixture.json");
  for (auto& fc : fixture["cases"]) {
    std::string name = fc["name"];
    SECTION(name) {
      CaseRun c = run_case(fx, name, fc);
      check_case(name, c);
      REQUIRE(c.prefill_start > 0);  // the text before the image came from the model's prefix cache
    }
    SECTION(name + ", asked again on the same image") {
      CaseRun first = run_case(fx, name, fc);
      CaseRun again = run_case(fx, name, fc, &first);
      check_case(name, again);
      REQUIRE(again.prefill_start > first.prefill_start);  // the image and the prompt's start reused
    }
  }
}

}  // namespace

TEST_CASE("fp32 parity with the reference, every stage of every case, on the path users run", "[parity]") {
  check_fixture("tiny-lisa-a");
  SECTION("a different question as a follow-up: t2 after g3 on the same image") {
    auto fixture = rstest::read_json(rstest::data_dir() + "/tiny-lisa-a/fixture.json");
    CaseRun g3 = run_case("tiny-lisa-a", "g3_zero_seg_a_dog", fixture_case(fixture, "g3_zero_seg_a_dog"));
    CaseRun t2 = run_case("tiny-lisa-a", "t2_tf_val_a_dog", fixture_case(fixture, "t2_tf_val_a_dog"), &g3);
    check_case("t2_tf_val_a_dog", t2);
  }
}

TEST_CASE("SESAME: fp32 parity with its own inference code, every stage; presence; first mask only", "[parity][sesame]") {
  REQUIRE(fp32_model("tiny-sesame-a").family() == ModelFamily::Sesame);
  check_fixture("tiny-sesame-a");
}

TEST_CASE("LISA++: fp32 parity with its own code, every stage; several [SEG], one mask each", "[parity][lisapp]") {
  REQUIRE(fp32_model("tiny-lisapp-a").family() == ModelFamily::LisaPlus);
  check_fixture("tiny-lisapp-a");
}
