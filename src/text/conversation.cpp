#include "reasonseg/tokenizer.hpp"
#include "util/error.hpp"

namespace reasonseg {

namespace {
const char* kLlavaV1System =
    "A chat between a curious human and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the human's questions.";
const char* kVicunaV1System =
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions.";
const char* kLlama2System =
    "You are a helpful language and vision assistant. You are able to understand the visual content that "
    "the user provides, and assist the user with a variety of tasks using natural language.";
}  // namespace

ConvTemplate parse_conv_template(const std::string& name) {
  if (name == "llava_v1") return ConvTemplate::LlavaV1;
  if (name == "llava_llama_2") return ConvTemplate::LlavaLlama2;
  if (name == "vicuna_v1") return ConvTemplate::VicunaV1;
  fail("conversation template '", name, "' is unknown (llava_v1, llava_llama_2, vicuna_v1)");
}

std::string to_string(ConvTemplate t) {
  switch (t) {
    case ConvTemplate::LlavaV1: return "llava_v1";
    case ConvTemplate::LlavaLlama2: return "llava_llama_2";
    case ConvTemplate::VicunaV1: return "vicuna_v1";
  }
  return "?";
}

namespace {
// How a template writes one exchange: first_user + question + after_user + " " + answer + after_answer
// for the first turn, later_user instead of first_user after it.
struct TurnFormat {
  std::string preamble, first_user, later_user, after_user, after_answer;
};

TurnFormat turn_format(ConvTemplate tpl) {
  if (tpl == ConvTemplate::LlavaV1 || tpl == ConvTemplate::VicunaV1)
    // SepStyle.TWO: system + sep " ", then "ROLE: message" followed by sep " " (user) or sep2 "</s>"
    // (assistant); the open assistant turn is "ASSISTANT:".
    return {std::string(tpl == ConvTemplate::LlavaV1 ? kLlavaV1System : kVicunaV1System) + " ", "USER: ", "USER: ",
            " ASSISTANT:", "</s>"};
  // SepStyle.LLAMA_2: "[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{msg} [/INST]", then " answer </s>",
  // later user turns "<s>[INST] {msg} [/INST]".
  return {"", std::string("[INST] <<SYS>>\n") + kLlama2System + "\n<</SYS>>\n\n", "<s>[INST] ", " [/INST]", " </s>"};
}
}  // namespace

Prompt build_prompt(ConvTemplate tpl, const std::string& instruction, bool im_start_end, const std::string* answer,
                    const std::vector<ConversationTurn>& history) {
  const std::string image = im_start_end ? "<im_start><image><im_end>" : "<image>";
  const TurnFormat f = turn_format(tpl);
  Prompt p;
  std::string& s = p.text;
  s = f.preamble;
  bool first = true;
  auto turn = [&](const std::string& question, const std::string* text, const std::vector<int64_t>* ids) {
    s += first ? f.first_user + image + "\n" : f.later_user;  // the image belongs to the first user turn
    first = false;
    p.user_ranges.push_back({s.size(), s.size() + question.size()});
    s += question + f.after_user;
    if (!text) return;  // the open assistant turn
    // " " + answer; an answer with generated ids replaces the space too (the ids begin with "▁...").
    const size_t space = s.size();
    s += " ";
    p.answer_ranges.push_back({s.size(), s.size() + text->size()});
    s += *text;
    if (ids && !ids->empty()) p.splices.push_back({space, s.size(), ids});
    s += f.after_answer;
  };
  for (const auto& t : history) turn(t.question, &t.answer, &t.answer_ids);
  turn(instruction, answer, nullptr);
  return p;
}

std::vector<int64_t> tokenize_prompt(const Tokenizer& tok, const Prompt& prompt, bool allow_special_in_user) {
  // Answers keep their [SEG]; the user's questions must not yield control tokens. Neither yields an image.
  Tokenizer::Ranges plain, no_image = prompt.answer_ranges;
  if (!allow_special_in_user) plain = prompt.user_ranges;
  no_image.insert(no_image.end(), plain.begin(), plain.end());
  auto in_no_image = [&](size_t b, size_t e) {
    for (auto& [pb, pe] : no_image)
      if (b < pe && pb < e) return true;
    return false;
  };
  const std::string& s = prompt.text;
  const std::string img = "<image>";
  std::vector<int64_t> ids;
  size_t start = 0;
  bool first = true;
  auto emit_text = [&](size_t b, size_t e) {
    Tokenizer::Ranges local;
    for (auto& [pb, pe] : plain) {
      size_t lb = std::max(pb, b), le = std::min(pe, e);
      if (lb < le) local.push_back({lb - b, le - b});
    }
    auto chunk = tok.encode(s.substr(b, e - b), true, local);
    ids.insert(ids.end(), chunk.begin() + (first ? 0 : 1), chunk.end());
    first = false;
  };
  auto emit = [&](size_t b, size_t e) {  // text, with the spliced answers' ids in place of their text
    for (const auto& sp : prompt.splices) {
      if (sp.begin < b || sp.end > e) continue;
      emit_text(b, sp.begin);
      ids.insert(ids.end(), sp.ids->begin(), sp.ids->end());
      b = sp.end;
    }
    emit_text(b, e);
  };
  for (size_t pos = s.find(img); pos != std::string::npos; pos = s.find(img, pos + 1)) {
    if (in_no_image(pos, pos + img.size())) continue;
    emit(start, pos);
    ids.push_back(kImageTokenIndex);
    start = pos + img.size();
  }
  emit(start, s.size());
  return ids;
}

}  // namespace reasonseg
