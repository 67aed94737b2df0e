// Streaming of the answer text while it is decoded (QueryOptions::on_text).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "reasonseg/tokenizer.hpp"

namespace reasonseg {

// Turns generated ids into UTF-8 text pieces. Decoding the whole answer again at every token keeps
// the tokenizer's own joining rules (leading space, added tokens joined by spaces); byte-fallback
// tokens (<0xE2>...) that do not yet form a whole character are held back until they do.
class TextStream {
 public:
  TextStream(const Tokenizer& tok, std::function<bool(const std::string&)> sink);
  // Adds a generated id (not the EOS); returns false when the sink asked to stop.
  bool push(int64_t id);
  // Emits whatever is still held back (an unfinished byte sequence at the end, decoded as is).
  bool finish();
  bool active() const { return bool(sink_); }

 private:
  bool emit_upto(size_t n_ids);
  const Tokenizer& tok_;
  std::function<bool(const std::string&)> sink_;
  std::vector<int64_t> ids_;
  std::string emitted_;
};

// Byte value of a SentencePiece byte-fallback piece such as "<0xE2>", or -1.
int byte_fallback_value(const std::string& piece);

}  // namespace reasonseg
