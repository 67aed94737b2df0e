// A checkpoint directory's shard index (model.safetensors.index.json) beside one small shard.
#include "fuzz_common.hpp"
#include "io/checkpoint.hpp"
#include "reasonseg/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool shard = [] {
    // One valid shard the index may point at: {"a": F32 [2]}.
    const std::string header = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
    std::string bytes(8, '\0');
    uint64_t n = header.size();
    for (int i = 0; i < 8; ++i) bytes[size_t(i)] = char((n >> (8 * i)) & 0xff);
    bytes += header + std::string(8, '\0');
    rsfuzz::write("model-00001-of-00001.safetensors", reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    return true;
  }();
  (void)shard;
  rsfuzz::write("model.safetensors.index.json", data, size);
  try {
    auto src = reasonseg::TensorSource::open_dir(rsfuzz::scratch().string());
    (void)src.contains("a");
  } catch (const reasonseg::Error&) {
  }
  return 0;
}
