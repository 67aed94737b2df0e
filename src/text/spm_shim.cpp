// A C shim around libsentencepiece, loaded with dlopen(RTLD_LOCAL | RTLD_DEEPBIND).
//
// Why: Debian's libsentencepiece exports its own bundled protobuf 3.14 symbols while LibTorch
// pulls in libprotobuf 3.21; linking both into one process makes libprotobuf's initialisers
// call sentencepiece's copies and crash. Loaded privately and deep-bound, sentencepiece keeps
// its own protobuf and LibTorch keeps the system one.
#include <sentencepiece_processor.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {
char* dup(const std::string& s, size_t* len) {
  char* p = static_cast<char*>(std::malloc(s.size() + 1));
  std::memcpy(p, s.data(), s.size());
  p[s.size()] = 0;
  if (len) *len = s.size();
  return p;
}
}  // namespace

extern "C" {

__attribute__((visibility("default"))) void* rs_spm_load(const char* path, char** error) {
  auto* sp = new sentencepiece::SentencePieceProcessor();
  auto st = sp->Load(path);
  if (!st.ok()) {
    *error = dup(st.ToString(), nullptr);
    delete sp;
    return nullptr;
  }
  return sp;
}

__attribute__((visibility("default"))) void rs_spm_free(void* h) {
  delete static_cast<sentencepiece::SentencePieceProcessor*>(h);
}

__attribute__((visibility("default"))) void rs_spm_free_buf(void* p) { std::free(p); }

// Encodes `len` bytes; returns malloc'd ids and their count, or nullptr with *error set.
__attribute__((visibility("default"))) int* rs_spm_encode(void* h, const char* text, size_t len, size_t* n,
                                                          char** error) {
  std::vector<int> ids;
  auto st = static_cast<sentencepiece::SentencePieceProcessor*>(h)->Encode(std::string(text, len), &ids);
  if (!st.ok()) {
    *error = dup(st.ToString(), nullptr);
    return nullptr;
  }
  int* out = static_cast<int*>(std::malloc(sizeof(int) * (ids.size() + 1)));
  std::memcpy(out, ids.data(), sizeof(int) * ids.size());
  *n = ids.size();
  return out;
}

__attribute__((visibility("default"))) char* rs_spm_decode(void* h, const int* ids, size_t n, size_t* len) {
  std::string s;
  static_cast<sentencepiece::SentencePieceProcessor*>(h)->Decode(std::vector<int>(ids, ids + n), &s);
  return dup(s, len);
}

__attribute__((visibility("default"))) char* rs_spm_piece(void* h, int id, size_t* len) {
  return dup(static_cast<sentencepiece::SentencePieceProcessor*>(h)->IdToPiece(id), len);
}

// kind: 0 piece count, 1 bos, 2 eos, 3 unk; 4/5 is_control/is_unknown of `id`.
__attribute__((visibility("default"))) int rs_spm_query(void* h, int kind, int id) {
  auto* sp = static_cast<sentencepiece::SentencePieceProcessor*>(h);
  switch (kind) {
    case 0: return sp->GetPieceSize();
    case 1: return sp->bos_id();
    case 2: return sp->eos_id();
    case 3: return sp->unk_id();
    case 4: return sp->IsControl(id);
    case 5: return sp->IsUnknown(id);
  }
  return -1;
}
}
