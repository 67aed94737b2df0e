#include "reasonseg/tokenizer.hpp"
#include "util/error.hpp"

namespace reasonseg {

namespace {
const char* kLlavaV1System =
    "A chat between a curious human and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the human's questions.";
const char* kLlama2System =
    "You are a helpful language and vision assistant. You are able to understand the visual content that "
    "the user provides, and assist the user with a variety of tasks using natural language.";
}  // namespace

ConvTemplate parse_conv_template(const std::string& name) {
  if (name == "llava_v1") return ConvTemplate::LlavaV1;
  if (name == "llava_llama_2") return ConvTemplate::LlavaLlama2;
  fail("conversation template '", name, "' is unknown (llava_v1, llava_llama_2)");
}

Prompt build_prompt(ConvTemplate tpl, const std::string& instruction, bool im_start_end, const std::string* answer) {
  std::string image = im_start_end ? "<im_start><image><im_end>" : "<image>";
  Prompt p;
  auto user = [&](std::string& s) {
    s += image + "\n";
    p.user_ranges.push_back({s.size(), s.size() + instruction.size()});
    s += instruction;
  };
  if (tpl == ConvTemplate::LlavaV1) {
    // SepStyle.TWO: system, " USER: " msg, " ASSISTANT:" then " " answer "</s>".
    p.text = std::string(kLlavaV1System) + " USER: ";
    user(p.text);
    p.text += " ASSISTANT:";
    if (answer) {
      p.text += " ";
      p.user_ranges.push_back({p.text.size(), p.text.size() + answer->size()});
      p.text += *answer + "</s>";
    }
  } else {
    // SepStyle.LLAMA_2: "[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{msg} [/INST]" then " answer </s>".
    p.text = std::string("[INST] <<SYS>>\n") + kLlama2System + "\n<</SYS>>\n\n";
    user(p.text);
    p.text += " [/INST]";
    if (answer) {
      p.text += " ";
      p.user_ranges.push_back({p.text.size(), p.text.size() + answer->size()});
      p.text += *answer + " </s>";
    }
  }
  return p;
}

std::vector<int64_t> tokenize_prompt(const Tokenizer& tok, const Prompt& prompt, bool allow_special_in_user) {
  // An answer given for teacher forcing must keep its [SEG]; the user's instruction must not.
  Tokenizer::Ranges plain;
  if (!allow_special_in_user && !prompt.user_ranges.empty()) plain.push_back(prompt.user_ranges[0]);
  auto in_plain = [&](size_t b, size_t e) {
    for (auto& [pb, pe] : plain)
      if (b < pe && pb < e) return true;
    return false;
  };
  const std::string& s = prompt.text;
  const std::string img = "<image>";
  std::vector<int64_t> ids;
  size_t start = 0;
  bool first = true;
  auto emit = [&](size_t b, size_t e) {
    Tokenizer::Ranges local;
    for (auto& [pb, pe] : plain) {
      size_t lb = std::max(pb, b), le = std::min(pe, e);
      if (lb < le) local.push_back({lb - b, le - b});
    }
    auto chunk = tok.encode(s.substr(b, e - b), true, local);
    ids.insert(ids.end(), chunk.begin() + (first ? 0 : 1), chunk.end());
    first = false;
  };
  for (size_t pos = s.find(img); pos != std::string::npos; pos = s.find(img, pos + 1)) {
    if (in_plain(pos, pos + img.size())) continue;
    emit(start, pos);
    ids.push_back(kImageTokenIndex);
    start = pos + img.size();
  }
  emit(start, s.size());
  return ids;
}

}  // namespace reasonseg
