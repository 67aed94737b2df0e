// LLaMA tokenizer exactly as transformers 4.31's slow LlamaTokenizer (legacy mode) + LISA's prompt.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace reasonseg {

// SentencePiece `tokenizer.model` plus the added tokens of `added_tokens.json`.
//
// Encoding reproduces HF 4.31 (legacy=True): the text is split on added tokens ([SEG],
// <im_start>, <im_end>, ...) and special tokens (<s>, </s>, <unk>); plain added tokens strip
// the whitespace on both sides, the special ones strip nothing; each remaining piece is
// encoded by SentencePiece with its own dummy prefix; BOS first.
//
// Thread safety: a constructed Tokenizer is immutable; all const methods may be called
// concurrently.
class Tokenizer {
 public:
  // Loads `tokenizer.model` and (if present) `added_tokens.json` from a model directory.
  static Tokenizer from_dir(const std::string& model_dir);
  Tokenizer(const std::string& sp_model_path, std::map<std::string, int> added_tokens);
  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  Tokenizer(const Tokenizer&);

  // Byte ranges [begin, end) of `text` whose added/special-token look-alikes stay plain text.
  using Ranges = std::vector<std::pair<size_t, size_t>>;
  std::vector<int64_t> encode(const std::string& text, bool add_bos = true, const Ranges& plain = {}) const;
  // Decodes like 4.31's decode(skip_special_tokens=...): added tokens joined with spaces.
  // Negative ids (the image placeholder) are skipped; with skip_special_tokens also <s>, </s> and
  // <unk> (the control pieces; added tokens such as [SEG] are not special and stay).
  std::string decode(const std::vector<int64_t>& ids, bool skip_special_tokens = false) const;

  // Id of an added token such as "[SEG]"; throws naming the token when it is unknown.
  int added_token_id(const std::string& token) const;
  bool has_added_token(const std::string& token) const;
  const std::map<std::string, int>& added_tokens() const { return added_; }
  int bos_id() const;
  int eos_id() const;
  int sp_vocab_size() const;
  std::string piece(int64_t id) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::map<std::string, int> added_;
};

// Conversation templates of LLaVA's conversation.py. vicuna_v1 is llava_v1 with another system line
// ("a curious user", SESAME's demo and evaluation).
enum class ConvTemplate { LlavaV1, LlavaLlama2, VicunaV1 };
ConvTemplate parse_conv_template(const std::string& name);  // "llava_v1", "llava_llama_2", "vicuna_v1"
std::string to_string(ConvTemplate t);

// One earlier exchange of a conversation.
struct ConversationTurn {
  std::string question;
  std::string answer;                 // the answer's text (decoded, without EOS)
  std::vector<int64_t> answer_ids;    // the ids the model generated for it (EOS excluded); empty: tokenize `answer`
};

// A rendered prompt and which bytes of it came from the user or from earlier answers.
struct Prompt {
  std::string text;
  Tokenizer::Ranges user_ranges;    // the questions: plain text (no control tokens, no <image>)
  Tokenizer::Ranges answer_ranges;  // answers: added tokens such as [SEG] count, "<image>" stays text
  // Answers that keep the ids the model generated: text[begin, end) (the answer with the space
  // before it) is replaced by `ids` instead of being tokenized again, so that a conversation's
  // history is exactly what the model saw (decoding and re-encoding need not give the same ids).
  struct Splice {
    size_t begin, end;
    const std::vector<int64_t>* ids;
  };
  std::vector<Splice> splices;
};

// Renders a conversation as the template renders multi-turn history (`history` must outlive the
// Prompt: answers with ids are spliced in by pointer): the earlier `history` turns, then "<image>\n" + instruction as the user turn (`<image>` wrapped in <im_start>/<im_end>
// when `im_start_end`; it belongs to the first user turn), then either the open assistant turn
// (generation) or `answer` followed by the template's end (teacher forcing).
//   llava_v1:      "{system} USER: <image>\nq1 ASSISTANT: a1</s>USER: q2 ASSISTANT:"
//   llava_llama_2: "[INST] <<SYS>>\n{system}\n<</SYS>>\n\n<image>\nq1 [/INST] a1 </s><s>[INST] q2 [/INST]"
Prompt build_prompt(ConvTemplate tpl, const std::string& instruction, bool im_start_end,
                    const std::string* answer = nullptr, const std::vector<ConversationTurn>& history = {});

constexpr int64_t kImageTokenIndex = -200;

// LLaVA's tokenizer_image_token: split on "<image>", encode each chunk (BOS only on the first)
// and put one kImageTokenIndex between chunks. User text never contributes control tokens
// unless `allow_special_in_user` is set; neither user text nor answers contribute an image.
std::vector<int64_t> tokenize_prompt(const Tokenizer& tok, const Prompt& prompt, bool allow_special_in_user = false);

// LISA chat.py's cleanup of decoded text: drop "\n", turn double spaces into single ones.
std::string chat_cleanup(const std::string& text);

}  // namespace reasonseg
