// Reader of torch.save zip checkpoints: the zip directory and a pickle machine for what torch.save writes.
#include "io/torch_bin.hpp"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <memory>

#include "io/mapped_file.hpp"
#include "io/safetensors.hpp"
#include "util/error.hpp"

namespace reasonseg {

namespace {

struct ZipEntry {
  size_t data_offset = 0;
  size_t size = 0;
};

template <typename T>
T rd(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

// Central-directory walk of a zip archive as written by torch.save (entries stored, not
// deflated; zip64 records for archives over 4 GB).
std::map<std::string, ZipEntry> read_zip_directory(const MappedFile& f) {
  const uint8_t* d = f.data();
  const size_t n = f.size();
  const std::string& path = f.path();
  if (n < 22) fail(path, ": too small to be a torch.save zip archive (", n, " bytes)");
  if (rd<uint32_t>(d) != 0x04034b50)
    fail(path, ": not a zip archive; only the torch.save zip format (PyTorch >= 1.6) is supported");
  size_t eocd = std::string::npos;
  size_t lowest = n > 22 + 65535 ? n - 22 - 65535 : 0;
  for (size_t i = n - 22 + 1; i-- > lowest;)
    if (rd<uint32_t>(d + i) == 0x06054b50) { eocd = i; break; }
  if (eocd == std::string::npos) fail(path, ": zip end-of-directory record not found (file truncated?)");
  uint64_t count = rd<uint16_t>(d + eocd + 10);
  uint64_t cd_size = rd<uint32_t>(d + eocd + 12);
  uint64_t cd_off = rd<uint32_t>(d + eocd + 16);
  if (cd_off == 0xffffffffu || count == 0xffff || cd_size == 0xffffffffu) {
    if (eocd < 20 || rd<uint32_t>(d + eocd - 20) != 0x07064b50) fail(path, ": zip64 locator missing");
    uint64_t z64 = rd<uint64_t>(d + eocd - 20 + 8);
    if (z64 + 56 > n || rd<uint32_t>(d + z64) != 0x06064b50) fail(path, ": zip64 directory record is corrupt");
    count = rd<uint64_t>(d + z64 + 32);
    cd_size = rd<uint64_t>(d + z64 + 40);
    cd_off = rd<uint64_t>(d + z64 + 48);
  }
  if (cd_off > n || cd_size > n - cd_off) fail(path, ": zip central directory lies outside the file");
  std::map<std::string, ZipEntry> out;
  size_t p = cd_off;
  for (uint64_t i = 0; i < count; ++i) {
    if (p + 46 > n || rd<uint32_t>(d + p) != 0x02014b50) fail(path, ": zip central directory is corrupt");
    uint16_t method = rd<uint16_t>(d + p + 10);
    uint64_t csize = rd<uint32_t>(d + p + 20), usize = rd<uint32_t>(d + p + 24);
    uint16_t name_len = rd<uint16_t>(d + p + 28), extra_len = rd<uint16_t>(d + p + 30),
             comment_len = rd<uint16_t>(d + p + 32);
    uint64_t local = rd<uint32_t>(d + p + 42);
    if (p + 46 + name_len + extra_len > n) fail(path, ": zip central directory is corrupt");
    std::string name(reinterpret_cast<const char*>(d + p + 46), name_len);
    // zip64 extended information holds, in order, the fields that read 0xffffffff.
    for (size_t e = p + 46 + name_len; e + 4 <= p + 46 + name_len + extra_len;) {
      uint16_t id = rd<uint16_t>(d + e), len = rd<uint16_t>(d + e + 2);
      if (id == 0x0001) {
        size_t q = e + 4;
        if (usize == 0xffffffffu) usize = rd<uint64_t>(d + q), q += 8;
        if (csize == 0xffffffffu) csize = rd<uint64_t>(d + q), q += 8;
        if (local == 0xffffffffu) local = rd<uint64_t>(d + q), q += 8;
      }
      e += 4 + len;
    }
    if (method != 0) fail(path, ": zip entry '", name, "' is compressed; torch.save stores entries uncompressed");
    if (local + 30 > n || rd<uint32_t>(d + local) != 0x04034b50)
      fail(path, ": zip entry '", name, "' has no valid local header");
    size_t data = local + 30 + rd<uint16_t>(d + local + 26) + rd<uint16_t>(d + local + 28);
    if (data > n || usize > n - data)
      fail(path, ": zip entry '", name, "' (", usize, " bytes) runs past the end of the file (truncated?)");
    out[name] = ZipEntry{data, size_t(usize)};
    p += 46 + name_len + extra_len + comment_len;
  }
  return out;
}

// ---- a pickle machine for the subset torch.save uses ------------------------------------

// Bytes from a hostile file, safe to print: printable ASCII kept, the rest as \xNN, at most 80.
std::string printable(const std::string& s) {
  std::string o;
  for (unsigned char c : s.substr(0, 80)) {
    if (c >= 0x20 && c < 0x7f) {
      o += char(c);
    } else {
      char b[8];
      std::snprintf(b, sizeof b, "\\x%02x", c);
      o += b;
    }
  }
  return s.size() > 80 ? o + "..." : o;
}

struct PVal;
using PV = std::shared_ptr<PVal>;
struct PVal {
  enum Kind { None, Bool, Int, Float, Str, Tuple, List, Dict, Global, Tensor, Opaque, Mark } kind = None;
  int64_t i = 0;
  double f = 0;
  std::string s, s2;  // string / global module+name
  std::vector<PV> items;                     // tuple, list
  std::vector<std::pair<PV, PV>> entries;    // dict, in insertion order
  torch::Tensor tensor;
};
PV mk(PVal::Kind k) {
  auto v = std::make_shared<PVal>();
  v->kind = k;
  return v;
}

bool storage_dtype(const std::string& name, torch::ScalarType* t) {
  static const std::map<std::string, torch::ScalarType> m = {
      {"FloatStorage", torch::kFloat32}, {"HalfStorage", torch::kFloat16},
      {"BFloat16Storage", torch::kBFloat16}, {"DoubleStorage", torch::kFloat64},
      {"LongStorage", torch::kInt64}, {"IntStorage", torch::kInt32}, {"ShortStorage", torch::kInt16},
      {"CharStorage", torch::kInt8}, {"ByteStorage", torch::kUInt8}, {"BoolStorage", torch::kBool}};
  auto it = m.find(name);
  if (it == m.end()) return false;
  *t = it->second;
  return true;
}

// The Python globals torch.save writes for a state dict. Any other one (os.system, eval, ...) is
// refused when the pickle names it, whether or not the state dict would use it.
bool allowed_global(const std::string& module, const std::string& name) {
  static const std::set<std::string> allowed = {
      "collections.OrderedDict",          "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor",
      "torch._utils._rebuild_parameter", "torch.Size",                      "_codecs.encode"};
  torch::ScalarType unused;
  return allowed.count(module + "." + name) || (module == "torch" && storage_dtype(name, &unused));
}

class PickleMachine {
 public:
  PickleMachine(const std::string& path, const uint8_t* data, size_t size,
                std::function<torch::Tensor(const std::string&, torch::ScalarType, int64_t)> storage)
      : path_(path), p_(data), end_(data + size), storage_(std::move(storage)) {}

  PV run() {
    while (true) {
      uint8_t op = u8();
      switch (op) {
        case 0x80: u8(); break;                        // PROTO
        case 0x95: bytes(8); break;                    // FRAME
        case '.': return pop();                        // STOP
        case '(': push(mk(PVal::Mark)); break;         // MARK
        case 'N': push(mk(PVal::None)); break;
        case 0x88: case 0x89: { auto v = mk(PVal::Bool); v->i = op == 0x88; push(v); break; }
        case 'J': push_int(rd<int32_t>(bytes(4))); break;
        case 'K': push_int(u8()); break;
        case 'M': push_int(rd<uint16_t>(bytes(2))); break;
        case 0x8a: {                                   // LONG1
          int n = u8();
          const uint8_t* b = bytes(n);
          int64_t v = 0;
          if (n > 8) fail(path_, ": pickle integer too large");
          for (int k = n - 1; k >= 0; --k) v = (v << 8) | b[k];
          if (n > 0 && n < 8 && (b[n - 1] & 0x80)) v -= int64_t(1) << (8 * n);
          push_int(v);
          break;
        }
        case 'G': {                                    // BINFLOAT, big endian
          const uint8_t* b = bytes(8);
          uint64_t u = 0;
          for (int k = 0; k < 8; ++k) u = (u << 8) | b[k];
          auto v = mk(PVal::Float);
          std::memcpy(&v->f, &u, 8);
          push(v);
          break;
        }
        case 'X': push_str(rd<uint32_t>(bytes(4))); break;
        case 0x8c: push_str(u8()); break;
        case 0x8d: push_str(rd<uint64_t>(bytes(8))); break;
        case 'U': push_str(u8()); break;
        case 'T': push_str(rd<uint32_t>(bytes(4))); break;
        case 'B': push_str(rd<uint32_t>(bytes(4))); break;
        case 'C': push_str(u8()); break;
        case ')': push(mk(PVal::Tuple)); break;
        case ']': push(mk(PVal::List)); break;
        case '}': push(mk(PVal::Dict)); break;
        case 't': { auto v = mk(PVal::Tuple); v->items = pop_mark(); push(v); break; }
        case 0x85: case 0x86: case 0x87: {
          auto v = mk(PVal::Tuple);
          v->items.resize(op - 0x84);
          for (size_t k = v->items.size(); k-- > 0;) v->items[k] = pop();
          push(v);
          break;
        }
        case 'l': { auto v = mk(PVal::List); v->items = pop_mark(); push(v); break; }
        case 'a': { auto x = pop(); top()->items.push_back(x); break; }
        case 'e': { auto xs = pop_mark(); auto& l = top()->items; l.insert(l.end(), xs.begin(), xs.end()); break; }
        case 's': { auto v = pop(); auto k = pop(); set_item(top(), k, v); break; }
        case 'u': {
          auto xs = pop_mark();
          if (xs.size() % 2) fail(path_, ": corrupt pickle (odd SETITEMS)");
          for (size_t k = 0; k < xs.size(); k += 2) set_item(top(), xs[k], xs[k + 1]);
          break;
        }
        case 'q': memo_[u8()] = top(); break;
        case 'r': memo_[rd<uint32_t>(bytes(4))] = top(); break;
        case 0x94: memo_[memo_.size()] = top(); break;
        case 'h': push(memo_at(u8())); break;
        case 'j': push(memo_at(rd<uint32_t>(bytes(4)))); break;
        case 'c': {
          auto v = mk(PVal::Global);
          v->s = line();
          v->s2 = line();
          push(checked_global(v));
          break;
        }
        case 0x93: {
          auto name = pop(), mod = pop();
          auto v = mk(PVal::Global);
          v->s = mod->s;
          v->s2 = name->s;
          push(checked_global(v));
          break;
        }
        case 'Q': push(persistent_load(pop())); break;
        case 'R': { auto args = pop(); auto fn = pop(); push(reduce(fn, args)); break; }
        case 0x81: { auto args = pop(); auto cls = pop(); push(reduce(cls, args)); break; }
        case 'b': pop(); break;  // BUILD: state of an OrderedDict (_metadata) or similar; not needed
        default:
          fail(path_, ": unsupported pickle opcode 0x", std::hex, int(op), " in data.pkl");
      }
    }
  }

 private:
  uint8_t u8() { return *bytes(1); }
  const uint8_t* bytes(size_t n) {
    if (size_t(end_ - p_) < n) fail(path_, ": data.pkl ends early (truncated pickle)");
    const uint8_t* b = p_;
    p_ += n;
    return b;
  }
  std::string line() {
    std::string s;
    while (true) {
      char c = char(u8());
      if (c == '\n') return s;
      s.push_back(c);
    }
  }
  void push(PV v) { stack_.push_back(std::move(v)); }
  void push_int(int64_t i) { auto v = mk(PVal::Int); v->i = i; push(v); }
  void push_str(uint64_t n) { auto v = mk(PVal::Str); const uint8_t* b = bytes(n); v->s.assign(b, b + n); push(v); }
  PV pop() {
    if (stack_.empty()) fail(path_, ": corrupt pickle (stack underflow)");
    PV v = stack_.back();
    stack_.pop_back();
    return v;
  }
  PV& top() {
    if (stack_.empty()) fail(path_, ": corrupt pickle (stack underflow)");
    return stack_.back();
  }
  std::vector<PV> pop_mark() {
    size_t k = stack_.size();
    while (k > 0 && stack_[k - 1]->kind != PVal::Mark) --k;
    if (k == 0) fail(path_, ": corrupt pickle (no MARK)");
    std::vector<PV> xs(stack_.begin() + k, stack_.end());
    stack_.resize(k - 1);
    return xs;
  }
  PV memo_at(size_t k) {
    auto it = memo_.find(k);
    if (it == memo_.end()) fail(path_, ": corrupt pickle (memo ", k, " unset)");
    return it->second;
  }
  void set_item(const PV& d, const PV& k, const PV& v) {
    if (d->kind != PVal::Dict) return;  // items of an opaque object: ignored
    d->entries.emplace_back(k, v);
  }
  PV persistent_load(const PV& pid) {
    // ('storage', <storage class>, key, location, numel)
    if (pid->kind != PVal::Tuple || pid->items.size() < 5 || pid->items[0]->s != "storage")
      fail(path_, ": unsupported persistent id in data.pkl");
    torch::ScalarType dt;
    if (pid->items[1]->kind != PVal::Global || !storage_dtype(pid->items[1]->s2, &dt))
      fail(path_, ": unsupported storage type '", pid->items[1]->s2, "'");
    auto v = mk(PVal::Tensor);
    v->tensor = storage_(pid->items[2]->s, dt, pid->items[4]->i);
    return v;
  }
  std::vector<int64_t> ints(const PV& t) {
    std::vector<int64_t> out;
    for (auto& x : t->items) {
      if (x->kind != PVal::Int) fail(path_, ": corrupt tensor size/stride in data.pkl");
      out.push_back(x->i);
    }
    return out;
  }
  PV checked_global(const PV& g) {
    if (!allowed_global(g->s, g->s2))
      fail(path_, ": data.pkl names the Python global '", printable(g->s), ".", printable(g->s2),
           "', which no state dict needs; refusing to load it (allowed: collections.OrderedDict, "
           "torch._utils._rebuild_tensor_v2 / _rebuild_parameter, torch.*Storage, torch.Size, _codecs.encode)");
    return g;
  }

  PV reduce(const PV& fn, const PV& args) {
    if (fn->kind == PVal::Global) {
      const std::string name = fn->s + "." + fn->s2;
      if (name == "collections.OrderedDict" || name == "builtins.dict") return mk(PVal::Dict);
      if ((name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor") &&
          args->items.size() >= 4 && args->items[0]->kind == PVal::Tensor) {
        torch::Tensor storage = args->items[0]->tensor;
        int64_t offset = args->items[1]->i;
        auto size = ints(args->items[2]), stride = ints(args->items[3]);
        if (size.size() != stride.size()) fail(path_, ": tensor size and stride disagree in data.pkl");
        int64_t last = offset;
        bool empty = false;
        for (size_t k = 0; k < size.size(); ++k) {
          if (size[k] < 0 || stride[k] < 0) fail(path_, ": negative tensor size or stride in data.pkl");
          if (size[k] == 0) empty = true;
          else last += (size[k] - 1) * stride[k];
        }
        if (!empty && (offset < 0 || last >= storage.numel()))
          fail(path_, ": a tensor reaches past the end of its storage (file truncated or lying)");
        auto v = mk(PVal::Tensor);
        v->tensor = storage.as_strided(size, stride, offset);
        return v;
      }
      if (name == "torch._utils._rebuild_parameter" && !args->items.empty()) return args->items[0];
    }
    return mk(PVal::Opaque);
  }

  std::string path_;
  const uint8_t* p_;
  const uint8_t* end_;
  std::function<torch::Tensor(const std::string&, torch::ScalarType, int64_t)> storage_;
  std::vector<PV> stack_;
  std::map<size_t, PV> memo_;
};

}  // namespace

std::vector<std::pair<std::string, torch::Tensor>> read_torch_bin(const std::string& path) {
  auto file = MappedFile::open(path);
  auto entries = read_zip_directory(*file);
  // Every record lives under one top-level folder (the archive name).
  std::string prefix;
  for (auto& [name, e] : entries) {
    auto slash = name.find('/');
    if (slash != std::string::npos && name.compare(slash + 1, std::string::npos, "data.pkl") == 0)
      prefix = name.substr(0, slash + 1);
  }
  auto pkl = entries.find(prefix + "data.pkl");
  if (pkl == entries.end()) fail(path, ": no data.pkl record; not a torch.save checkpoint");

  std::map<std::string, torch::Tensor> storages;
  auto storage = [&](const std::string& key, torch::ScalarType dt, int64_t numel) {
    auto it = storages.find(key);
    if (it != storages.end()) return it->second;
    auto e = entries.find(prefix + "data/" + key);
    if (e == entries.end()) fail(path, ": storage record 'data/", key, "' is missing");
    size_t need = size_t(numel) * c10::elementSize(dt);
    if (numel < 0 || need > e->second.size)
      fail(path, ": storage 'data/", key, "' should hold ", need, " bytes but has ", e->second.size,
           " (file truncated or lying)");
    auto t = tensor_from_mapping(file, e->second.data_offset, dt, {numel});
    storages[key] = t;
    return t;
  };
  PickleMachine pm(path, file->data() + pkl->second.data_offset, pkl->second.size, storage);
  PV root = pm.run();
  if (root->kind != PVal::Dict) fail(path, ": checkpoint is not a state dict");
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (auto& [k, v] : root->entries) {
    if (k->kind != PVal::Str) fail(path, ": state dict has a non-string key");
    if (v->kind != PVal::Tensor) continue;
    out.emplace_back(k->s, v->tensor);
  }
  return out;
}

}  // namespace reasonseg
