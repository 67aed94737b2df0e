// safetensors reader (memory-mapped, validated against the format's rules) and writer.
#pragma once
#include <torch/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/mapped_file.hpp"

namespace reasonseg {

struct StoredTensor {
  std::string key;
  torch::ScalarType dtype;
  std::vector<int64_t> shape;
  size_t offset = 0;  // absolute offset of the first byte in the file
  size_t nbytes = 0;
};

class SafetensorsFile {
 public:
  // Maps and validates `path`: header length and JSON, dtypes, offsets inside the data
  // section, ordered and non-overlapping, sizes equal to numel * itemsize, no duplicate keys.
  explicit SafetensorsFile(const std::string& path);

  const std::string& path() const { return file_->path(); }
  const std::vector<StoredTensor>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const StoredTensor* find(const std::string& key) const;
  // A CPU tensor viewing the mapping; the mapping stays alive while the tensor does.
  torch::Tensor view(const StoredTensor& t) const;
  const std::shared_ptr<MappedFile>& file() const { return file_; }

 private:
  std::shared_ptr<MappedFile> file_;
  std::vector<StoredTensor> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// Wraps a region of a mapped file as a tensor without copying.
torch::Tensor tensor_from_mapping(const std::shared_ptr<MappedFile>& file, size_t offset,
                                  torch::ScalarType dtype, const std::vector<int64_t>& shape);

// Writes tensors (any device, made contiguous on CPU) in key order, with optional metadata.
void write_safetensors(const std::string& path, const std::map<std::string, torch::Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// Maps a safetensors dtype string (F32, BF16, ...) to a torch dtype; false if unknown.
bool safetensors_dtype(const std::string& name, torch::ScalarType* out);
std::string safetensors_dtype_name(torch::ScalarType t);

}  // namespace reasonseg
