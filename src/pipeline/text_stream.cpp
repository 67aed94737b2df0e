#include "pipeline/text_stream.hpp"

#include <algorithm>

#include "util/strings.hpp"

namespace reasonseg {

int byte_fallback_value(const std::string& piece) {
  if (piece.size() != 6 || piece.compare(0, 3, "<0x") != 0 || piece[5] != '>') return -1;
  int v = 0;
  for (int i = 3; i < 5; ++i) {
    const char c = piece[size_t(i)];
    const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

TextStream::TextStream(const Tokenizer& tok, std::function<bool(const std::string&)> sink)
    : tok_(tok), sink_(std::move(sink)) {}

bool TextStream::push(int64_t id) {
  ids_.push_back(id);
  if (!sink_) return true;
  // The trailing run of byte tokens: hold back an unfinished character at its end.
  size_t run = 0;
  while (run < ids_.size() && byte_fallback_value(tok_.piece(ids_[ids_.size() - 1 - run])) >= 0) ++run;
  size_t held = 0;
  for (size_t i = ids_.size() - run; i < ids_.size();) {
    // A byte that cannot start a sequence is printed as it is (a sequence of one).
    const int need = std::max(1, utf8_sequence_length(static_cast<unsigned char>(byte_fallback_value(tok_.piece(ids_[i])))));
    size_t have = 1;
    while (have < size_t(need) && i + have < ids_.size()) {
      const int b = byte_fallback_value(tok_.piece(ids_[i + have]));
      if ((b & 0xC0) != 0x80) break;  // not a continuation byte: the sequence is broken, print it
      ++have;
    }
    if (i + have == ids_.size() && have < size_t(need)) held = have;
    i += have;
  }
  return emit_upto(ids_.size() - held);
}

bool TextStream::finish() { return !sink_ || emit_upto(ids_.size()); }

bool TextStream::emit_upto(size_t n_ids) {
  const std::string text = tok_.decode(std::vector<int64_t>(ids_.begin(), ids_.begin() + long(n_ids)));
  // A decoding that rewrote text already sent (not seen with LLaMA's tokenizer) waits for finish().
  if (text.size() <= emitted_.size() || text.compare(0, emitted_.size(), emitted_) != 0) return true;
  std::string piece = text.substr(emitted_.size());
  emitted_ = text;
  return sink_(piece);
}

}  // namespace reasonseg
