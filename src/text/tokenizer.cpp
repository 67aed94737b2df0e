#include "reasonseg/tokenizer.hpp"

#include <dlfcn.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "util/error.hpp"

namespace fs = std::filesystem;

namespace reasonseg {

namespace {

// SentencePiece through the private shim library (see spm_shim.cpp for why).
struct SpmApi {
  void* (*load)(const char*, char**);
  void (*free_handle)(void*);
  void (*free_buf)(void*);
  int* (*encode)(void*, const char*, size_t, size_t*, char**);
  char* (*decode)(void*, const int*, size_t, size_t*);
  char* (*piece)(void*, int, size_t*);
  int (*query)(void*, int, int);
};

#if defined(__SANITIZE_ADDRESS__)
#define REASONSEG_SPM_OWN_NAMESPACE 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define REASONSEG_SPM_OWN_NAMESPACE 1
#endif
#endif

// The sanitizer runtimes refuse RTLD_DEEPBIND (they could not intercept malloc in a deep-bound
// library). Under them the module goes into a link-map namespace of its own instead, which isolates
// its protobuf just as well; the shim's C interface only passes plain buffers, each freed on the
// side that allocated it (rs_spm_free_buf), so the two namespaces' allocators never mix.
void* open_spm_module(const std::string& path) {
#ifdef REASONSEG_SPM_OWN_NAMESPACE
  return dlmopen(LM_ID_NEWLM, path.c_str(), RTLD_NOW | RTLD_LOCAL);
#else
  return dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
#endif
}

const SpmApi& spm_api() {
  static const SpmApi api = [] {
    std::vector<std::string> candidates;
    if (const char* env = std::getenv("REASONSEG_SPM_SHIM")) candidates.push_back(env);
    Dl_info info{};
    if (dladdr(reinterpret_cast<void*>(&spm_api), &info) && info.dli_fname)
      candidates.push_back((fs::path(info.dli_fname).parent_path() / "libreasonseg_spm.so").string());
    candidates.push_back("libreasonseg_spm.so");
    void* lib = nullptr;
    std::string tried;
    for (auto& c : candidates) {
      if (c.empty()) continue;
      lib = open_spm_module(c);
      if (lib) break;
      tried += " " + c;
    }
    if (!lib) fail("cannot load the SentencePiece shim libreasonseg_spm.so (tried:", tried,
                   "); set REASONSEG_SPM_SHIM to its path");
    SpmApi a{};
    auto sym = [&](const char* name) {
      void* p = dlsym(lib, name);
      if (!p) fail("libreasonseg_spm.so lacks ", name);
      return p;
    };
    a.load = reinterpret_cast<decltype(a.load)>(sym("rs_spm_load"));
    a.free_handle = reinterpret_cast<decltype(a.free_handle)>(sym("rs_spm_free"));
    a.free_buf = reinterpret_cast<decltype(a.free_buf)>(sym("rs_spm_free_buf"));
    a.encode = reinterpret_cast<decltype(a.encode)>(sym("rs_spm_encode"));
    a.decode = reinterpret_cast<decltype(a.decode)>(sym("rs_spm_decode"));
    a.piece = reinterpret_cast<decltype(a.piece)>(sym("rs_spm_piece"));
    a.query = reinterpret_cast<decltype(a.query)>(sym("rs_spm_query"));
    return a;
  }();
  return api;
}

// The subset of SentencePieceProcessor the tokenizer uses.
class SpModel {
 public:
  explicit SpModel(const std::string& path) : api_(spm_api()) {
    char* err = nullptr;
    h_ = api_.load(path.c_str(), &err);
    if (!h_) {
      std::string e = err ? err : "unknown error";
      api_.free_buf(err);
      // SentencePiece reports a file that is no model with its own source line; say what it means.
      if (e.find("ParseFromArray") != std::string::npos)
        fail(path, ": not a SentencePiece model (the file does not parse as one; is it truncated or another format?)");
      fail(path, ": cannot load SentencePiece model: ", e);
    }
  }
  ~SpModel() { api_.free_handle(h_); }
  SpModel(const SpModel&) = delete;
  SpModel& operator=(const SpModel&) = delete;

  std::vector<int> encode(const std::string& text) const {
    size_t n = 0;
    char* err = nullptr;
    int* ids = api_.encode(h_, text.data(), text.size(), &n, &err);
    if (!ids) {
      std::string e = err ? err : "unknown error";
      api_.free_buf(err);
      fail("SentencePiece failed: ", e);
    }
    std::vector<int> out(ids, ids + n);
    api_.free_buf(ids);
    return out;
  }
  std::string decode(const std::vector<int>& ids) const {
    size_t len = 0;
    char* s = api_.decode(h_, ids.data(), ids.size(), &len);
    std::string out(s, len);
    api_.free_buf(s);
    return out;
  }
  std::string piece(int id) const {
    size_t len = 0;
    char* s = api_.piece(h_, id, &len);
    std::string out(s, len);
    api_.free_buf(s);
    return out;
  }
  int size() const { return api_.query(h_, 0, 0); }
  int bos_id() const { return api_.query(h_, 1, 0); }
  int eos_id() const { return api_.query(h_, 2, 0); }
  int unk_id() const { return api_.query(h_, 3, 0); }
  bool is_control(int id) const { return api_.query(h_, 4, id) != 0; }
  bool is_unknown(int id) const { return api_.query(h_, 5, id) != 0; }

 private:
  const SpmApi& api_;
  void* h_ = nullptr;
};

}  // namespace

struct Tokenizer::Impl {
  std::string path;
  std::unique_ptr<SpModel> sp;
};

namespace {

// Decodes the UTF-8 code point at s[i] (length in *len); invalid bytes count as one char.
uint32_t code_point(const std::string& s, size_t i, size_t* len) {
  unsigned char c = s[i];
  int n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
  if (i + n > s.size()) n = 1;
  uint32_t cp = n == 1 ? c : c & (0x7f >> n);
  for (int k = 1; k < n; ++k) cp = (cp << 6) | (s[i + k] & 0x3f);
  *len = size_t(n);
  return cp;
}

// Python's str.isspace for one code point.
bool py_space(uint32_t c) {
  return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
}

size_t lstrip_len(const std::string& s) {  // bytes of leading whitespace
  size_t i = 0, n;
  while (i < s.size() && py_space(code_point(s, i, &n))) i += n;
  return i;
}

size_t rstrip_end(const std::string& s) {  // end of s without trailing whitespace
  size_t end = 0, i = 0, n;
  while (i < s.size()) {
    bool sp = py_space(code_point(s, i, &n));
    i += n;
    if (!sp) end = i;
  }
  return end;
}

struct Piece {
  std::string text;
  int special = -1;   // token id when this piece is an added/special token
  bool strip = false; // plain added tokens eat the whitespace around them
};

}  // namespace

Tokenizer Tokenizer::from_dir(const std::string& model_dir) {
  auto sp = (fs::path(model_dir) / "tokenizer.model").string();
  std::map<std::string, int> added;
  auto at = (fs::path(model_dir) / "added_tokens.json").string();
  if (fs::exists(at)) {
    std::ifstream in(at);
    try {
      auto j = nlohmann::json::parse(in);
      if (!j.is_object()) fail(at, ": expected an object of token -> id");
      for (auto it = j.begin(); it != j.end(); ++it) {
        if (!it->is_number_integer()) fail(at, ": id of '", it.key(), "' is not an integer");
        added[it.key()] = it->get<int>();
      }
    } catch (const nlohmann::json::exception& e) {
      fail(at, ": invalid JSON: ", e.what());
    }
  }
  return Tokenizer(sp, std::move(added));
}

Tokenizer::Tokenizer(const std::string& sp_model_path, std::map<std::string, int> added)
    : impl_(std::make_unique<Impl>()), added_(std::move(added)) {
  impl_->path = sp_model_path;
  if (!fs::exists(sp_model_path)) fail(sp_model_path, ": tokenizer model does not exist");
  impl_->sp = std::make_unique<SpModel>(sp_model_path);
  const int base = impl_->sp->size();
  std::map<int, std::string> by_id;
  for (auto& [tok, id] : added_) {
    if (id < 0) fail(sp_model_path, ": added token '", tok, "' has a negative id");
    // An added token may restate a base piece with its own id (HF does for <s>, </s>), not take another's.
    if (id < base && impl_->sp->piece(id) != tok)
      fail(sp_model_path, ": added token '", tok, "' has id ", id, ", which is the base vocabulary's piece '",
           impl_->sp->piece(id), "' (added tokens take ids from ", base, " on)");
    if (!by_id.emplace(id, tok).second) fail(sp_model_path, ": added tokens '", by_id[id], "' and '", tok, "' share id ", id);
  }
}

Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::Tokenizer(const Tokenizer& o) : Tokenizer(o.impl_->path, o.added_) {}

int Tokenizer::bos_id() const { return impl_->sp->bos_id(); }
int Tokenizer::eos_id() const { return impl_->sp->eos_id(); }
int Tokenizer::sp_vocab_size() const { return impl_->sp->size(); }

bool Tokenizer::has_added_token(const std::string& t) const { return added_.count(t) != 0; }

int Tokenizer::added_token_id(const std::string& t) const {
  auto it = added_.find(t);
  if (it == added_.end()) fail(impl_->path, ": the tokenizer has no added token '", t, "' (added_tokens.json)");
  return it->second;
}

std::string Tokenizer::piece(int64_t id) const {
  for (auto& [t, i] : added_)
    if (i == id) return t;
  if (id < 0 || id >= sp_vocab_size()) return "";
  return impl_->sp->piece(int(id));
}

std::vector<int64_t> Tokenizer::encode(const std::string& text, bool add_bos, const Ranges& plain) const {
  // Tokens recognised in the text: added tokens (strip both sides) and the SentencePiece
  // control tokens, which HF registers as AddedToken(lstrip=False, rstrip=False).
  std::vector<std::pair<std::string, std::pair<int, bool>>> specials;
  for (auto& [t, id] : added_) specials.push_back({t, {id, true}});
  auto& sp = *impl_->sp;
  for (int id : {sp.unk_id(), sp.bos_id(), sp.eos_id()})
    if (id >= 0) specials.push_back({sp.piece(id), {id, false}});
  auto protected_at = [&](size_t b, size_t e) {
    for (auto& [pb, pe] : plain)
      if (b < pe && pb < e) return true;
    return false;
  };
  // Leftmost-longest split, like HF's Trie.split.
  std::vector<Piece> pieces;
  std::string cur;
  for (size_t i = 0; i < text.size();) {
    const std::pair<std::string, std::pair<int, bool>>* best = nullptr;
    for (auto& s : specials)
      if (text.compare(i, s.first.size(), s.first) == 0 && (!best || s.first.size() > best->first.size()) &&
          !protected_at(i, i + s.first.size()))
        best = &s;
    if (!best) {
      cur.push_back(text[i++]);
      continue;
    }
    pieces.push_back({cur});
    cur.clear();
    pieces.push_back({best->first, best->second.first, best->second.second});
    i += best->first.size();
  }
  pieces.push_back({cur});
  for (size_t i = 0; i < pieces.size(); ++i) {
    if (pieces[i].special < 0 || !pieces[i].strip) continue;
    if (i > 0 && pieces[i - 1].special < 0) pieces[i - 1].text.resize(rstrip_end(pieces[i - 1].text));
    if (i + 1 < pieces.size() && pieces[i + 1].special < 0)
      pieces[i + 1].text.erase(0, lstrip_len(pieces[i + 1].text));
  }
  std::vector<int64_t> ids;
  if (add_bos) ids.push_back(bos_id());
  for (auto& p : pieces) {
    if (p.special >= 0) {
      ids.push_back(p.special);
    } else if (!p.text.empty()) {
      std::vector<int> v = sp.encode(p.text);
      ids.insert(ids.end(), v.begin(), v.end());
    }
  }
  return ids;
}

std::string Tokenizer::decode(const std::vector<int64_t>& ids, bool skip_special_tokens) const {
  auto& sp = *impl_->sp;
  if (skip_special_tokens) {
    std::vector<int64_t> kept;
    for (int64_t id : ids)
      if (!(id >= 0 && id < sp.size() && (sp.is_control(int(id)) || sp.is_unknown(int(id))))) kept.push_back(id);
    return decode(kept, false);
  }
  std::map<int64_t, std::string> added_by_id;
  for (auto& [t, i] : added_) added_by_id[i] = t;
  std::vector<std::string> sub_texts;
  std::vector<int> run;  // SentencePiece ids since the last added token
  std::string run_text;          // decoded text of the run so far, with control tokens inline
  auto flush_pieces = [&]() {
    std::string s;
    if (!run.empty()) s = sp.decode(run);
    run.clear();
    return s;
  };
  // Within a run, HF 4.31's convert_tokens_to_string puts a space before a control token
  // that follows ordinary pieces (not at the run's start), then decodes the pieces before it.
  bool in_run = false, prev_special = false;
  size_t run_len = 0;
  for (int64_t id : ids) {
    if (id < 0) continue;
    auto a = added_by_id.find(id);
    if (a != added_by_id.end()) {
      if (in_run) sub_texts.push_back(run_text + flush_pieces());
      run_text.clear();
      in_run = prev_special = false;
      run_len = 0;
      sub_texts.push_back(a->second);
      continue;
    }
    in_run = true;
    if (id >= sp.size()) continue;  // id past the vocabulary: nothing to print
    if (sp.is_control(int(id)) || sp.is_unknown(int(id))) {
      if (!prev_special && run_len != 0) run_text += " ";
      run_text += flush_pieces() + sp.piece(int(id));
      prev_special = true;
    } else {
      run.push_back(int(id));
      prev_special = false;
    }
    ++run_len;
  }
  if (in_run) sub_texts.push_back(run_text + flush_pieces());
  std::string out;
  for (size_t i = 0; i < sub_texts.size(); ++i) out += (i ? " " : "") + sub_texts[i];
  return out;
}

std::string chat_cleanup(const std::string& text) {
  std::string s;
  for (char c : text)
    if (c != '\n') s.push_back(c);
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {  // str.replace("  ", " "): non-overlapping, left to right
    if (s[i] == ' ' && i + 1 < s.size() && s[i + 1] == ' ') {
      out.push_back(' ');
      ++i;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

}  // namespace reasonseg
