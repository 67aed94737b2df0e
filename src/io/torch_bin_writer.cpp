// Writer of the torch.save zip format (pickle protocol 2, stored entries) for state dicts.
#include "io/torch_bin.hpp"

#include <cstring>
#include <fstream>
#include <map>
#include <memory>

#include "io/mapped_file.hpp"
#include "io/safetensors.hpp"
#include "util/error.hpp"

namespace reasonseg {

namespace {

class PickleWriter {
 public:
  std::string out;
  void op(uint8_t c) { out.push_back(char(c)); }
  void u32(uint32_t v) { out.append(reinterpret_cast<const char*>(&v), 4); }
  void str(const std::string& s) { op('X'); u32(uint32_t(s.size())); out += s; }
  void integer(int64_t v) {
    if (v >= 0 && v < 256) { op('K'); op(uint8_t(v)); }
    else if (v >= INT32_MIN && v <= INT32_MAX) { op('J'); u32(uint32_t(int32_t(v))); }
    else { op(0x8a); op(8); out.append(reinterpret_cast<const char*>(&v), 8); }
  }
  void global(const std::string& mod, const std::string& name) { op('c'); out += mod + "\n" + name + "\n"; }
  void int_tuple(const std::vector<int64_t>& xs) {
    op('(');
    for (auto x : xs) integer(x);
    op('t');
  }
};

std::string storage_name(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat32: return "FloatStorage";
    case torch::kFloat16: return "HalfStorage";
    case torch::kBFloat16: return "BFloat16Storage";
    case torch::kFloat64: return "DoubleStorage";
    case torch::kInt64: return "LongStorage";
    case torch::kInt32: return "IntStorage";
    case torch::kUInt8: return "ByteStorage";
    case torch::kBool: return "BoolStorage";
    default: fail("write_torch_bin: unsupported dtype ", c10::toString(t));
  }
}

// Minimal zip writer: stored entries, zip64 records, 64-byte aligned data like torch.save.
class ZipWriter {
 public:
  explicit ZipWriter(const std::string& path) : path_(path), f_(path, std::ios::binary) {
    if (!f_) fail(path, ": cannot open for writing");
  }
  void add(const std::string& name, const void* data, uint64_t size) {
    uint64_t local = pos_;
    // Local header with a zip64 extra field, padded so the data starts 64-byte aligned.
    size_t fixed = 30 + name.size() + 20;
    size_t pad = (64 - (local + fixed + 4) % 64) % 64;
    std::string h;
    put32(h, 0x04034b50); put16(h, 45); put16(h, 0); put16(h, 0); put16(h, 0); put16(h, 0x21);
    put32(h, crc32(data, size)); put32(h, 0xffffffffu); put32(h, 0xffffffffu);
    put16(h, uint16_t(name.size())); put16(h, uint16_t(20 + 4 + pad));
    h += name;
    put16(h, 0x0001); put16(h, 16); put64(h, size); put64(h, size);
    put16(h, 0xfe50); put16(h, uint16_t(pad)); h.append(pad, 'Z');
    write(h.data(), h.size());
    write(data, size);
    entries_.push_back({name, local, size, crc32(data, size)});
  }
  void close() {
    uint64_t cd = pos_;
    for (auto& e : entries_) {
      std::string h;
      put32(h, 0x02014b50); put16(h, 45); put16(h, 45); put16(h, 0); put16(h, 0); put16(h, 0); put16(h, 0x21);
      put32(h, e.crc); put32(h, 0xffffffffu); put32(h, 0xffffffffu);
      put16(h, uint16_t(e.name.size())); put16(h, 28); put16(h, 0); put16(h, 0); put16(h, 0);
      put32(h, 0); put32(h, 0xffffffffu);
      h += e.name;
      put16(h, 0x0001); put16(h, 24); put64(h, e.size); put64(h, e.size); put64(h, e.offset);
      write(h.data(), h.size());
    }
    uint64_t cd_size = pos_ - cd, z64 = pos_;
    std::string t;
    put32(t, 0x06064b50); put64(t, 44); put16(t, 45); put16(t, 45); put32(t, 0); put32(t, 0);
    put64(t, entries_.size()); put64(t, entries_.size()); put64(t, cd_size); put64(t, cd);
    put32(t, 0x07064b50); put32(t, 0); put64(t, z64); put32(t, 1);
    put32(t, 0x06054b50); put16(t, 0); put16(t, 0); put16(t, 0xffff); put16(t, 0xffff);
    put32(t, 0xffffffffu); put32(t, 0xffffffffu); put16(t, 0);
    write(t.data(), t.size());
    f_.close();
    if (!f_) fail(path_, ": write failed");
  }

 private:
  struct Entry { std::string name; uint64_t offset, size; uint32_t crc; };
  static void put16(std::string& s, uint16_t v) { s.append(reinterpret_cast<const char*>(&v), 2); }
  static void put32(std::string& s, uint32_t v) { s.append(reinterpret_cast<const char*>(&v), 4); }
  static void put64(std::string& s, uint64_t v) { s.append(reinterpret_cast<const char*>(&v), 8); }
  static uint32_t crc32(const void* data, uint64_t n) {
    static uint32_t table[256];
    static bool init = false;
    if (!init) {
      for (uint32_t i = 0; i < 256; ++i) {
        uint32_t c = i;
        for (int k = 0; k < 8; ++k) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
        table[i] = c;
      }
      init = true;
    }
    uint32_t c = 0xffffffffu;
    auto* p = static_cast<const uint8_t*>(data);
    for (uint64_t i = 0; i < n; ++i) c = table[(c ^ p[i]) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
  }
  void write(const void* d, uint64_t n) {
    f_.write(static_cast<const char*>(d), std::streamsize(n));
    pos_ += n;
  }
  std::string path_;
  std::ofstream f_;
  uint64_t pos_ = 0;
  std::vector<Entry> entries_;
};

}  // namespace

void write_torch_bin(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors) {
  std::string archive = "archive";
  PickleWriter pw;
  pw.op(0x80); pw.op(2);
  pw.global("collections", "OrderedDict");
  pw.op(')'); pw.op('R');
  std::vector<torch::Tensor> data;
  pw.op('(');
  for (size_t i = 0; i < tensors.size(); ++i) {
    torch::Tensor t = tensors[i].second.detach().to(torch::kCPU).contiguous();
    data.push_back(t);
    pw.str(tensors[i].first);
    pw.global("torch._utils", "_rebuild_tensor_v2");
    pw.op('(');
    pw.op('(');  // persistent id tuple
    pw.str("storage");
    pw.global("torch", storage_name(t.scalar_type()));
    pw.str(std::to_string(i));
    pw.str("cpu");
    pw.integer(t.numel());
    pw.op('t');
    pw.op('Q');
    pw.integer(0);
    pw.int_tuple(t.sizes().vec());
    pw.int_tuple(t.strides().vec());
    pw.op(0x89);  // requires_grad False
    pw.global("collections", "OrderedDict");
    pw.op(')'); pw.op('R');
    pw.op('t');
    pw.op('R');
  }
  pw.op('u');
  pw.op('.');
  ZipWriter zw(path);
  zw.add(archive + "/data.pkl", pw.out.data(), pw.out.size());
  for (size_t i = 0; i < data.size(); ++i)
    zw.add(archive + "/data/" + std::to_string(i), data[i].data_ptr(), data[i].numel() * data[i].element_size());
  std::string version = "3\n";
  zw.add(archive + "/version", version.data(), version.size());
  zw.close();
}

}  // namespace reasonseg
