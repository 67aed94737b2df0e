// safetensors header, offsets and tensor views: any bytes either load (and every tensor can be
// read) or throw reasonseg::Error.
#include "fuzz_common.hpp"
#include "io/safetensors.hpp"
#include "reasonseg/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = rsfuzz::write("x.safetensors", data, size);
  try {
    reasonseg::SafetensorsFile f(path);
    for (const auto& t : f.tensors()) {
      auto v = f.view(t);
      if (v.numel()) (void)v.to(torch::kFloat64).sum().item<double>();  // touches every byte
    }
  } catch (const reasonseg::Error&) {
  }
  return 0;
}
