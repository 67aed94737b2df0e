// One view over a checkpoint made of one or many safetensors / torch.save shards.
#pragma once
#include <torch/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace reasonseg {

// Where a tensor lives: which file, and (until that file is opened) nothing else.
class TensorSource {
 public:
  // Opens a directory holding model.safetensors, model.safetensors.index.json,
  // pytorch_model.bin or pytorch_model.bin.index.json (first found, in that order).
  static TensorSource open_dir(const std::string& dir);
  // Opens a single .safetensors or .bin file, or a *.index.json naming shards.
  static TensorSource open_path(const std::string& path);

  bool contains(const std::string& key) const { return key_to_file_.count(key) != 0; }
  const std::string& file_of(const std::string& key) const;
  std::vector<std::string> files() const { return files_; }
  std::vector<std::string> keys_in(const std::string& file) const;
  std::vector<std::string> keys() const;
  // Reads every tensor of one file (views of its memory map, no copy).
  std::map<std::string, torch::Tensor> read_file(const std::string& file) const;
  // Reads one tensor (opens its file; fine for a few tensors, use read_file for many).
  torch::Tensor get(const std::string& key) const;
  // Total bytes of tensor data in the files (from the file sizes).
  uint64_t total_file_bytes() const;

 private:
  std::vector<std::string> files_;
  std::map<std::string, std::string> key_to_file_;
};

}  // namespace reasonseg
