#include "io/safetensors.hpp"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "util/error.hpp"

namespace reasonseg {

using json = nlohmann::json;

namespace {
const std::pair<const char*, torch::ScalarType> kDtypes[] = {
    {"F64", torch::kFloat64}, {"F32", torch::kFloat32}, {"F16", torch::kFloat16},
    {"BF16", torch::kBFloat16}, {"I64", torch::kInt64}, {"I32", torch::kInt32},
    {"I16", torch::kInt16},   {"I8", torch::kInt8},     {"U8", torch::kUInt8},
    {"BOOL", torch::kBool}};
}

bool safetensors_dtype(const std::string& name, torch::ScalarType* out) {
  for (auto& [n, t] : kDtypes)
    if (name == n) return *out = t, true;
  return false;
}

std::string safetensors_dtype_name(torch::ScalarType t) {
  for (auto& [n, dt] : kDtypes)
    if (dt == t) return n;
  fail("safetensors: unsupported dtype ", c10::toString(t));
}

torch::Tensor tensor_from_mapping(const std::shared_ptr<MappedFile>& file, size_t offset,
                                  torch::ScalarType dtype, const std::vector<int64_t>& shape) {
  auto keep = new std::shared_ptr<MappedFile>(file);
  void* ptr = const_cast<uint8_t*>(file->data() + offset);
  if (file->size() == 0) ptr = nullptr;
  return torch::from_blob(
      ptr, shape, [keep](void*) { delete keep; },
      torch::TensorOptions().dtype(dtype).device(torch::kCPU));
}

SafetensorsFile::SafetensorsFile(const std::string& path) : file_(MappedFile::open(path)) {
  const size_t size = file_->size();
  if (size < 8) fail(path, ": truncated safetensors file (", size, " bytes, need at least 8)");
  uint64_t header_len = 0;
  std::memcpy(&header_len, file_->data(), 8);  // little endian on every supported host
  if (header_len > size - 8)
    fail(path, ": header length ", header_len, " is longer than the file (", size, " bytes)");
  const char* hb = reinterpret_cast<const char*>(file_->data() + 8);
  std::string header(hb, hb + header_len);

  // Duplicate keys are legal JSON but ambiguous weights: reject them while parsing.
  std::set<std::string> seen;
  json::parser_callback_t cb = [&](int depth, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::key && depth == 1) {
      auto k = parsed.get<std::string>();
      if (!seen.insert(k).second) fail(path, ": duplicate tensor key '", k, "' in the header");
    }
    return true;
  };
  json j;
  try {
    j = json::parse(header, cb);
  } catch (const json::exception& e) {
    fail(path, ": header is not valid JSON: ", e.what());
  }
  if (!j.is_object()) fail(path, ": header is not a JSON object");

  const size_t data_start = 8 + header_len;
  const size_t data_size = size - data_start;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    if (key == "__metadata__") {
      if (!it->is_object()) fail(path, ": __metadata__ must be an object");
      for (auto m = it->begin(); m != it->end(); ++m)
        metadata_[m.key()] = m->is_string() ? m->get<std::string>() : m->dump();
      continue;
    }
    const json& e = *it;
    auto where = str_cat(path, ": tensor '", key, "'");
    if (!e.is_object() || !e.contains("dtype") || !e.contains("shape") || !e.contains("data_offsets"))
      fail(where, ": entry needs dtype, shape and data_offsets");
    StoredTensor t;
    t.key = key;
    if (!e["dtype"].is_string() || !safetensors_dtype(e["dtype"].get<std::string>(), &t.dtype))
      fail(where, ": unknown dtype ", e["dtype"].dump());
    if (!e["shape"].is_array()) fail(where, ": shape must be an array");
    uint64_t numel = 1;
    for (auto& d : e["shape"]) {
      if (!d.is_number_unsigned()) fail(where, ": shape entries must be non-negative integers");
      uint64_t v = d.get<uint64_t>();
      if (v != 0 && numel > (uint64_t(1) << 62) / v) fail(where, ": shape is too large");
      numel *= v;
      t.shape.push_back(int64_t(v));
    }
    auto& off = e["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      fail(where, ": data_offsets must be two non-negative integers");
    uint64_t b = off[0].get<uint64_t>(), en = off[1].get<uint64_t>();
    if (b > en) fail(where, ": data_offsets [", b, ", ", en, "] are reversed");
    if (en > data_size)
      fail(where, ": data_offsets [", b, ", ", en, "] run past the end of the data (", data_size,
           " bytes; file truncated?)");
    uint64_t expect = numel * c10::elementSize(t.dtype);
    if (en - b != expect)
      fail(where, ": holds ", en - b, " bytes but shape ", shape_str(t.shape), " of ",
           e["dtype"].get<std::string>(), " needs ", expect);
    t.offset = data_start + b;
    t.nbytes = en - b;
    tensors_.push_back(std::move(t));
  }
  std::vector<const StoredTensor*> order;
  for (auto& t : tensors_) order.push_back(&t);
  std::sort(order.begin(), order.end(),
            [](auto* a, auto* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < order.size(); ++i)
    if (order[i]->offset < order[i - 1]->offset + order[i - 1]->nbytes)
      fail(path, ": tensors '", order[i - 1]->key, "' and '", order[i]->key, "' overlap");
  for (size_t i = 0; i < tensors_.size(); ++i) index_[tensors_[i].key] = i;
}

const StoredTensor* SafetensorsFile::find(const std::string& key) const {
  auto it = index_.find(key);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

torch::Tensor SafetensorsFile::view(const StoredTensor& t) const {
  return tensor_from_mapping(file_, t.offset, t.dtype, t.shape);
}

void write_safetensors(const std::string& path, const std::map<std::string, torch::Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<torch::Tensor> data;
  uint64_t offset = 0;
  for (auto& [key, t0] : tensors) {
    torch::Tensor t = t0.detach().to(torch::kCPU).contiguous();
    uint64_t n = t.numel() * t.element_size();
    header[key] = {{"dtype", safetensors_dtype_name(t.scalar_type())},
                   {"shape", t.sizes().vec()},
                   {"data_offsets", {offset, offset + n}}};
    offset += n;
    data.push_back(t);
  }
  std::string h = header.dump();
  while (h.size() % 8) h.push_back(' ');
  std::ofstream out(path, std::ios::binary);
  if (!out) fail(path, ": cannot open for writing");
  uint64_t hl = h.size();
  out.write(reinterpret_cast<const char*>(&hl), 8);
  out.write(h.data(), std::streamsize(h.size()));
  for (auto& t : data) out.write(static_cast<const char*>(t.data_ptr()), std::streamsize(t.numel() * t.element_size()));
  if (!out) fail(path, ": write failed");
}

}  // namespace reasonseg
