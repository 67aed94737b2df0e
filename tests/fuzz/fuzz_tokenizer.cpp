// Tokenizer text paths with LLaMA's real vocabulary and LISA's added tokens: encode with and without
// plain ranges, the chat prompt of every template (a conversation included), decode of what was
// encoded and of raw ids, and the UTF-8 stream over the ids. Decoding must give valid output for any
// id sequence; encoding any bytes must give ids inside the vocabulary.
#include <cstdlib>

#include "fuzz_common.hpp"
#include "pipeline/text_stream.hpp"
#include "reasonseg/error.hpp"
#include "reasonseg/tokenizer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static reasonseg::Tokenizer tok = reasonseg::Tokenizer::from_dir(std::getenv("REASONSEG_FUZZ_MODEL"));
  const std::string text(reinterpret_cast<const char*>(data), size);
  const int64_t vocab = tok.sp_vocab_size() + int64_t(tok.added_tokens().size());
  {
    reasonseg::Tokenizer::Ranges r;
    if (size > 1 && (data[1] & 1)) r.push_back({0, text.size()});
    auto ids = tok.encode(text, true, r);
    for (auto id : ids)
      if (id < 0 || id >= vocab) std::abort();
    (void)tok.decode(ids);
    (void)tok.decode(ids, true);
  }
  // One template per input (its first byte picks it and whether the text is also a history turn):
  // SentencePiece's encoding dominates the time of an execution.
  if (size > 0) {
    const reasonseg::ConvTemplate tpls[] = {reasonseg::ConvTemplate::LlavaV1, reasonseg::ConvTemplate::VicunaV1,
                                            reasonseg::ConvTemplate::LlavaLlama2};
    std::vector<reasonseg::ConversationTurn> history;
    if (data[0] & 4) history.push_back({text, text, {}});
    try {
      (void)reasonseg::tokenize_prompt(tok, reasonseg::build_prompt(tpls[data[0] % 3], text, data[0] & 8, nullptr, history));
    } catch (const reasonseg::Error&) {
    }
  }
  // The bytes as raw ids (two bytes each, any value, negative and past the vocabulary included).
  std::vector<int64_t> raw;
  for (size_t i = 0; i + 1 < size; i += 2) raw.push_back(int64_t(int16_t(data[i] | (data[i + 1] << 8))));
  (void)tok.decode(raw);
  // The stream decodes the whole answer at every token (quadratic in its length): 48 ids per input.
  std::vector<int64_t> in_vocab;
  for (auto id : raw)
    if (id >= 0 && id < vocab && in_vocab.size() < 48) in_vocab.push_back(id);
  std::string streamed;
  reasonseg::TextStream stream(tok, [&](const std::string& piece) {
    streamed += piece;
    return true;
  });
  for (auto id : in_vocab) stream.push(id);
  stream.finish();
  return 0;
}
