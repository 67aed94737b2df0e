// Tokenizer: the 30 LLaMA vectors, every fixture prompt, decoding, and user-text protection.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "fixture.hpp"
#include "reasonseg/error.hpp"
#include "reasonseg/tokenizer.hpp"

using namespace reasonseg;

TEST_CASE("LLaMA tokenizer: all 30 reference vectors exact", "[tokenizer]") {
  Tokenizer tok(rstest::data_dir() + "/llama-tokenizer/tokenizer.model", {});
  std::ifstream in(rstest::data_dir() + "/llama-tokenizer/cases.jsonl");
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    if (line.find('{') == std::string::npos) continue;
    auto j = nlohmann::json::parse(line);
    std::string text = j["text"];
    INFO(text);
    Tokenizer::Ranges plain{{0, text.size()}};
    REQUIRE(tok.encode(text, true, plain) == j["ids"].get<std::vector<int64_t>>());
    ++n;
  }
  REQUIRE(n == 30);
}

TEST_CASE("chat prompts and input_ids of every fixture case are exact", "[tokenizer]") {
  auto tok = Tokenizer::from_dir(rstest::model_dir());
  // Named: a range-for over a member of a temporary reads freed memory (found by scripts/sanitize.sh).
  auto fixture = rstest::read_json(rstest::data_dir() + "/tiny-lisa-a/fixture.json");
  size_t cases = 0;
  for (auto& c : fixture["cases"]) {
    ++cases;
    auto cj = rstest::read_json(rstest::case_dir(c["name"]) + "/case.json");
    INFO(c["name"].get<std::string>());
    Prompt p;
    std::string answer;
    if (cj["kind"] == "generate") {
      p = build_prompt(ConvTemplate::LlavaV1, cj["instruction"].get<std::string>(), true);
      REQUIRE(p.text == cj["prompt"].get<std::string>());
    } else {
      answer = cj["answer"];
      p = build_prompt(ConvTemplate::LlavaV1, rstest::question_of(cj), true, &answer);
    }
    REQUIRE(tokenize_prompt(tok, p) == cj["input_ids"].get<std::vector<int64_t>>());
    if (cj.contains("text_raw")) {
      auto out = cj["output_ids"].get<std::vector<int64_t>>();
      REQUIRE(tok.decode(out) == cj["text_raw"].get<std::string>());
      REQUIRE(chat_cleanup(tok.decode(out)) == cj["text_output"].get<std::string>());
    }
  }
  REQUIRE((cases > 0 && cases == fixture["cases"].size()));
}

TEST_CASE("added tokens: whitespace stripping and the dummy prefix after them", "[tokenizer]") {
  auto tok = Tokenizer::from_dir(rstest::model_dir());
  // "[SEG]." -> [SEG], "▁." (869): the text after an added token gets its own dummy prefix.
  REQUIRE(tok.encode("[SEG].", false) == std::vector<int64_t>{32000, 869});
  REQUIRE(tok.encode("a  [SEG]  b", false) == tok.encode("a[SEG]b", false));
  // </s> is a special token that strips nothing.
  auto with_space = tok.encode("x </s>", false), without = tok.encode("x</s>", false);
  REQUIRE(with_space != without);
  REQUIRE(with_space.back() == 2);
}

TEST_CASE("user text never becomes control tokens unless allowed", "[tokenizer]") {
  auto tok = Tokenizer::from_dir(rstest::model_dir());
  auto p = build_prompt(ConvTemplate::LlavaV1, "Is [SEG] or <image> or </s> here?", true);
  auto ids = tokenize_prompt(tok, p, false);
  int images = 0, segs = 0, eos = 0;
  for (auto id : ids) images += id == kImageTokenIndex, segs += id == 32000, eos += id == 2;
  REQUIRE(images == 1);
  REQUIRE(segs == 0);
  REQUIRE(eos == 0);
  auto allowed = tokenize_prompt(tok, p, true);
  int segs2 = 0, images2 = 0;
  for (auto id : allowed) segs2 += id == 32000, images2 += id == kImageTokenIndex;
  REQUIRE(segs2 == 1);
  REQUIRE(images2 == 2);
  // A teacher-forcing answer keeps its [SEG] either way.
  std::string answer = "Sure, [SEG].";
  auto tf = tokenize_prompt(tok, build_prompt(ConvTemplate::LlavaV1, "q", true, &answer), false);
  REQUIRE(std::count(tf.begin(), tf.end(), 32000) == 1);
  REQUIRE(tf.back() == 2);
}

TEST_CASE("llava_llama_2 template renders LLaVA's LLAMA_2 style", "[tokenizer]") {
  auto p = build_prompt(ConvTemplate::LlavaLlama2, "find it", true);
  REQUIRE(p.text.rfind("[INST] <<SYS>>\n", 0) == 0);
  REQUIRE(p.text.find("<</SYS>>\n\n<im_start><image><im_end>\nfind it [/INST]") != std::string::npos);
  REQUIRE_THROWS_AS(parse_conv_template("vicuna"), reasonseg::Error);
  REQUIRE(parse_conv_template("vicuna_v1") == ConvTemplate::VicunaV1);
}

TEST_CASE("added tokens may not take a base-vocabulary id or share one", "[tokenizer]") {
  const std::string sp = rstest::data_dir() + "/llama-tokenizer/tokenizer.model";
  REQUIRE_THROWS_WITH(Tokenizer(sp, {{"[SEG]", 5}}), Catch::Contains("'[SEG]' has id 5") && Catch::Contains("base vocabulary"));
  REQUIRE_THROWS_WITH(Tokenizer(sp, {{"[SEG]", 32000}, {"<im_start>", 32000}}), Catch::Contains("share id 32000"));
  // Restating a base piece with its own id is what HF's files do for </s>: accepted.
  REQUIRE_NOTHROW(Tokenizer(sp, {{"</s>", 2}, {"[SEG]", 32000}}));
}

TEST_CASE("a file that is no SentencePiece model is named as such, not with SentencePiece's source line", "[tokenizer]") {
  const std::string bad = (std::filesystem::temp_directory_path() / "reasonseg_not_a_model.model").string();
  {
    std::ofstream f(bad, std::ios::binary);
    f << "garbage\x01\x02 not a protobuf";
  }
  REQUIRE_THROWS_WITH(Tokenizer(bad, {}), Catch::Contains(bad) && Catch::Contains("not a SentencePiece model") &&
                                              !Catch::Contains("sentencepiece_processor.cc"));
  std::filesystem::remove(bad);
}
