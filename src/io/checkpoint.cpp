#include "io/checkpoint.hpp"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "io/safetensors.hpp"
#include "io/torch_bin.hpp"
#include "util/error.hpp"
#include "util/strings.hpp"

namespace fs = std::filesystem;

namespace reasonseg {

namespace {

std::vector<std::string> file_keys(const std::string& file) {
  std::vector<std::string> keys;
  if (ends_with(file, ".safetensors")) {
    SafetensorsFile st(file);
    for (auto& t : st.tensors()) keys.push_back(t.key);
  } else {
    for (auto& [k, t] : read_torch_bin(file)) keys.push_back(k);
  }
  return keys;
}
}  // namespace

TensorSource TensorSource::open_dir(const std::string& dir) {
  if (!fs::is_directory(dir)) fail(dir, ": model directory does not exist");
  for (const char* name : {"model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                           "pytorch_model.bin.index.json"}) {
    auto p = fs::path(dir) / name;
    if (fs::exists(p)) return open_path(p.string());
  }
  fail(dir, ": no weights found (looked for model.safetensors[.index.json] and pytorch_model.bin[.index.json])");
}

TensorSource TensorSource::open_path(const std::string& path) {
  TensorSource src;
  if (ends_with(path, ".index.json")) {
    std::ifstream in(path);
    if (!in) fail(path, ": cannot open");
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
      fail(path, ": invalid JSON: ", e.what());
    }
    if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
      fail(path, ": has no \"weight_map\" object");
    auto base = fs::path(path).parent_path();
    std::set<std::string> files;
    std::map<std::string, std::string> index;
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
      if (!it->is_string()) fail(path, ": weight_map entry '", it.key(), "' is not a file name");
      auto f = (base / it->get<std::string>()).string();
      if (!fs::exists(f)) fail(path, ": shard '", it->get<std::string>(), "' (for '", it.key(), "') does not exist");
      index[it.key()] = f;
      files.insert(f);
    }
    src.files_.assign(files.begin(), files.end());
    // Where each tensor really is: a key in two shards is a duplicate; the index must agree.
    for (auto& f : src.files_)
      for (auto& k : file_keys(f)) {
        auto [it, fresh] = src.key_to_file_.emplace(k, f);
        if (!fresh) fail(f, ": tensor '", k, "' is also in ", it->second, " (duplicate key)");
      }
    for (auto& [k, f] : index) {
      auto it = src.key_to_file_.find(k);
      if (it == src.key_to_file_.end()) src.key_to_file_[k] = f;  // missing: reported as such when needed
      else if (it->second != f)
        fail(path, ": weight_map sends '", k, "' to ", fs::path(f).filename().string(), " but it is in ",
             fs::path(it->second).filename().string());
    }
    return src;
  }
  if (!fs::exists(path)) fail(path, ": weights file does not exist");
  src.files_.push_back(path);
  for (auto& k : file_keys(path)) src.key_to_file_[k] = path;
  return src;
}

const std::string& TensorSource::file_of(const std::string& key) const {
  auto it = key_to_file_.find(key);
  if (it == key_to_file_.end()) fail("checkpoint: tensor '", key, "' is missing");
  return it->second;
}

std::vector<std::string> TensorSource::keys_in(const std::string& file) const {
  std::vector<std::string> out;
  for (auto& [k, f] : key_to_file_)
    if (f == file) out.push_back(k);
  return out;
}

std::vector<std::string> TensorSource::keys() const {
  std::vector<std::string> out;
  for (auto& [k, f] : key_to_file_) out.push_back(k);
  return out;
}

std::map<std::string, torch::Tensor> TensorSource::read_file(const std::string& file) const {
  std::map<std::string, torch::Tensor> out;
  if (ends_with(file, ".safetensors")) {
    SafetensorsFile st(file);
    for (auto& t : st.tensors()) out[t.key] = st.view(t);
  } else {
    for (auto& [k, t] : read_torch_bin(file)) {
      if (out.count(k)) fail(file, ": duplicate tensor key '", k, "'");
      out[k] = t;
    }
  }
  return out;
}

torch::Tensor TensorSource::get(const std::string& key) const {
  auto m = read_file(file_of(key));
  auto it = m.find(key);
  if (it == m.end()) fail(file_of(key), ": tensor '", key, "' is missing");
  return it->second;
}

uint64_t TensorSource::total_file_bytes() const {
  uint64_t n = 0;
  for (auto& f : files_) n += fs::file_size(f);
  return n;
}

}  // namespace reasonseg
