// Conversations, streaming and cancellation: multi-turn on one image continues the key/value cache
// exactly, answer text streams as UTF-8 pieces, a stopped or timed-out query leaves the context usable.
#include <catch2/catch.hpp>

#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "fixture.hpp"
#include "pipeline/text_stream.hpp"
#include "reasonseg/image_io.hpp"
#include "reasonseg/segmenter.hpp"

using namespace reasonseg;

namespace {

const ReasoningSegmenter& model() {
  static ReasoningSegmenter seg([] {
    SegmenterOptions o;
    o.model_dir = rstest::model_dir();
    o.device = Device::CPU;
    o.dtype = DType::Float32;
    o.max_new_tokens = 24;
    return o;
  }());
  return seg;
}

cv::Mat dog() { return read_image_file(rstest::data_dir() + "/tiny-lisa-a/images/a_dog.png"); }

QueryOptions continued() {
  QueryOptions q;
  q.continue_conversation = true;
  return q;
}

void require_same(const SegmentResult& a, const SegmentResult& b) {
  REQUIRE(a.input_ids == b.input_ids);
  REQUIRE(a.output_ids == b.output_ids);
  REQUIRE(a.text == b.text);
  REQUIRE(a.masks.size() == b.masks.size());
  for (size_t i = 0; i < a.masks.size(); ++i) {
    REQUIRE(cv::countNonZero(a.masks[i].mask != b.masks[i].mask) == 0);
    REQUIRE(a.masks[i].score == Approx(b.masks[i].score).margin(1e-5));
  }
}

bool valid_utf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    i += n;
  }
  return true;
}

}  // namespace

TEST_CASE("multi-turn prompts render as the templates render chat history", "[conversation]") {
  const std::vector<ConversationTurn> history = {{"Where is the dog?", "Sure, [SEG]."}};
  auto v1 = build_prompt(ConvTemplate::LlavaV1, "And its tail?", false, nullptr, history);
  REQUIRE(v1.text ==
          "A chat between a curious human and an artificial intelligence assistant. The assistant gives helpful, "
          "detailed, and polite answers to the human's questions. USER: <image>\nWhere is the dog? ASSISTANT: Sure, "
          "[SEG].</s>USER: And its tail? ASSISTANT:");
  auto l2 = build_prompt(ConvTemplate::LlavaLlama2, "And its tail?", false, nullptr, history);
  REQUIRE(l2.text.find("<image>\nWhere is the dog? [/INST] Sure, [SEG]. </s><s>[INST] And its tail? [/INST]") !=
          std::string::npos);
  REQUIRE(l2.text.rfind("[INST] <<SYS>>\n", 0) == 0);
  // Questions stay plain text, answers keep their [SEG], neither makes a second image.
  Tokenizer tok = Tokenizer::from_dir(rstest::model_dir());
  const int seg = tok.added_token_id("[SEG]");
  auto ids = tokenize_prompt(tok, build_prompt(ConvTemplate::LlavaV1, "q [SEG] <image>", false, nullptr,
                                               {{"Is [SEG] here?", "It is [SEG] <image>."}}));
  REQUIRE(std::count(ids.begin(), ids.end(), int64_t(seg)) == 1);
  REQUIRE(std::count(ids.begin(), ids.end(), kImageTokenIndex) == 1);
}

TEST_CASE("a continued conversation equals one fresh run over the whole rendered conversation", "[conversation]") {
  auto& seg = model();
  auto ctx = seg.encode_image(dog());
  const std::string q1 = "What is the dog in this image? Please output segmentation mask.";
  const std::string q2 = "Please segment the red rectangle in this image.";
  const std::string q3 = "Now the tail, please.";
  auto r1 = seg.segment(ctx, q1, continued());
  auto r2 = seg.segment(ctx, q2, continued());
  REQUIRE(ctx.history().size() == 2);
  REQUIRE(ctx.history()[0].question == q1);
  REQUIRE(ctx.history()[0].answer == r1.answer);
  auto ids1 = r1.output_ids;
  if (r1.stopped_by == StopReason::Eos) ids1.pop_back();
  REQUIRE(ctx.history()[0].answer_ids == ids1);

  // The same conversation rendered whole, in one prefill on a fresh context.
  auto fresh = seg.encode_image(dog());
  fresh.set_history({ctx.history()[0]});
  auto r2_fresh = seg.segment(fresh, q2, continued());
  require_same(r2, r2_fresh);
  INFO("continued prefill " << r2.prefill_tokens << ", fresh " << r2_fresh.prefill_tokens);
  // The continuation computes only the new turn and the answer's last token (generated, not yet fed).
  const int64_t new_ids = int64_t(r2.input_ids.size() - r1.input_ids.size() - r1.output_ids.size());
  REQUIRE(r2.prefill_tokens == new_ids + 1);
  REQUIRE(r2_fresh.prefill_tokens > r2.prefill_tokens + 256);

  // A third turn, and the same after truncating back to one turn.
  auto r3 = seg.segment(ctx, q3, continued());
  auto fresh3 = seg.encode_image(dog());
  fresh3.set_history({ctx.history()[0], ctx.history()[1]});
  require_same(r3, seg.segment(fresh3, q3, continued()));
  ctx.truncate_history(1);
  require_same(seg.segment(ctx, q2, continued()), r2_fresh);
  // A history given as text only is tokenized (the tiny model's answers do not survive decoding and
  // encoding again: the first generated piece lacks the leading space the text gets).
  auto text_only = seg.encode_image(dog());
  text_only.set_history({{q1, r1.answer, {}}});
  auto r2_text = seg.segment(text_only, q2, continued());
  REQUIRE(r2_text.input_ids.size() >= r1.input_ids.size());
  // Reset: the next continued question is a single-turn question again.
  ctx.reset_history();
  auto alone = seg.segment(ctx, q2, continued());
  auto single = seg.encode_image(dog());
  require_same(alone, seg.segment(single, q2));
  REQUIRE(ctx.history().size() == 1);
}

TEST_CASE("a conversation longer than the context is an error that leaves the context usable", "[conversation]") {
  auto& seg = model();
  auto ctx = seg.encode_image(dog());
  std::string long_answer;
  for (int i = 0; i < 3000; ++i) long_answer += "word ";
  ctx.set_history({{"Describe it at length.", long_answer}});
  try {
    seg.segment(ctx, "And then?", continued());
    FAIL("no error");
  } catch (const Error& e) {
    REQUIRE(std::string(e.what()).find("truncate_history") != std::string::npos);
  }
  REQUIRE(ctx.history().size() == 1);
  ctx.reset_history();
  auto r = seg.segment(ctx, "Please segment the red rectangle in this image.", continued());
  REQUIRE(!r.output_ids.empty());
}

TEST_CASE("streamed pieces concatenate to the answer; stopping leaves the context usable", "[conversation]") {
  auto& seg = model();
  const std::string q = "What is the dog in this image? Please output segmentation mask.";
  auto ctx = seg.encode_image(dog());
  std::vector<std::string> pieces;
  QueryOptions q_stream;
  q_stream.on_text = [&](const std::string& piece) {
    pieces.push_back(piece);
    return true;
  };
  auto full = seg.segment(ctx, q, q_stream);
  REQUIRE(pieces.size() >= 2);
  std::string joined;
  for (auto& p : pieces) {
    REQUIRE(valid_utf8(p));
    joined += p;
  }
  REQUIRE(joined == full.answer);

  // Stop after the second piece: the answer so far, "cancelled", masks only for [SEG]s generated.
  int calls = 0;
  QueryOptions q_stop;
  q_stop.on_text = [&](const std::string&) { return ++calls < 2; };
  auto stopped = seg.segment(ctx, q, q_stop);
  REQUIRE(stopped.stopped_by == StopReason::Cancelled);
  REQUIRE(stopped.output_ids.size() < full.output_ids.size());
  REQUIRE(std::equal(stopped.output_ids.begin(), stopped.output_ids.end(), full.output_ids.begin()));
  require_same(seg.segment(ctx, q), full);  // the context answers as before

  // A deadline already passed: no token, no mask, "deadline"; the context still answers.
  QueryOptions q_deadline;
  q_deadline.timeout_ms = 1e-3;
  auto late = seg.segment(ctx, q, q_deadline);
  REQUIRE(late.stopped_by == StopReason::Deadline);
  REQUIRE(late.output_ids.empty());
  REQUIRE_FALSE(late.has_target());
  require_same(seg.segment(ctx, q), full);
  q_deadline.timeout_ms = -1;
  REQUIRE_THROWS_AS(seg.segment(ctx, q, q_deadline), Error);

  // A cancelled turn of a conversation keeps its partial answer in the history.
  calls = 0;
  q_stop.continue_conversation = true;
  auto partial = seg.segment(ctx, q, q_stop);
  REQUIRE(ctx.history().size() == 1);
  REQUIRE(ctx.history()[0].answer == partial.answer);
}

TEST_CASE("byte-fallback tokens stream only as whole UTF-8 characters", "[conversation]") {
  Tokenizer tok = Tokenizer::from_dir(rstest::model_dir());
  const std::string text = "a \xF0\x9F\xA6\x99 llama and \xE4\xB8\x96\xE7\x95\x8C!";  // U+1F999, two CJK characters
  auto ids = tok.encode(text, false);
  int bytes = 0;
  for (auto id : ids) bytes += byte_fallback_value(tok.piece(id)) >= 0;
  REQUIRE(bytes >= 4);  // the emoji is spelled in byte tokens
  std::string joined;
  int calls = 0;
  TextStream stream(tok, [&](const std::string& piece) {
    REQUIRE(valid_utf8(piece));
    joined += piece;
    ++calls;
    return true;
  });
  for (auto id : ids) REQUIRE(stream.push(id));
  REQUIRE(stream.finish());
  REQUIRE(joined == tok.decode(ids));
  REQUIRE(calls >= 4);
  REQUIRE(byte_fallback_value("<0x0A>") == 10);
  REQUIRE(byte_fallback_value("<0xZZ>") == -1);
  REQUIRE(byte_fallback_value("0x0A") == -1);
}
