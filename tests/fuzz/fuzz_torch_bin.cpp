// torch.save .bin files: the zip container and the pickle machine (with its global allowlist).
#include "fuzz_common.hpp"
#include "io/torch_bin.hpp"
#include "reasonseg/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = rsfuzz::write("pytorch_model.bin", data, size);
  try {
    for (auto& [key, t] : reasonseg::read_torch_bin(path))
      if (t.numel()) (void)t.to(torch::kFloat64).sum().item<double>();
  } catch (const reasonseg::Error&) {
  }
  return 0;
}
