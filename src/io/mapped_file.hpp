// A read-only memory map of a whole file; tensors read from checkpoints are views into it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace reasonseg {

class MappedFile {
 public:
  // Maps `path` read-only; throws reasonseg::Error naming the file on failure.
  static std::shared_ptr<MappedFile> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // Tells the kernel the pages of [offset, offset+len) will not be read again soon.
  void release_pages(size_t offset, size_t len) const;

 private:
  MappedFile() = default;
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace reasonseg
