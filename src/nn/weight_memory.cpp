#include "nn/weight_memory.hpp"

#include <ATen/ATen.h>

#include <sys/mman.h>

#include <cstdlib>

namespace reasonseg {

// Weight storage on CPU asks for transparent huge pages: decoding streams every weight once
// per token, and 4 KiB pages cost a TLB miss every 4 KiB (docs/performance.md). Large
// tensors get their own 2 MiB-aligned blocks of whole huge pages: advising only the aligned
// interior of a malloc'ed tensor left its two ends (up to 2 MiB each) on 4 KiB pages, ~0.5 GB
// of LLaMA-7B whose page-table entries no longer fit in cache.
torch::Tensor empty_weight(const std::vector<int64_t>& shape, const torch::TensorOptions& opts) {
  constexpr size_t kHuge = size_t(2) << 20;
  int64_t numel = 1;
  for (auto d : shape) numel *= d;
  const size_t bytes = size_t(numel) * c10::elementSize(c10::typeMetaToScalarType(opts.dtype()));
  if (opts.device().is_cpu() && bytes >= 2 * kHuge) {
    const size_t rounded = (bytes + kHuge - 1) / kHuge * kHuge;
    void* p = nullptr;
    if (posix_memalign(&p, kHuge, rounded) == 0) {
      madvise(p, rounded, MADV_HUGEPAGE);
      return at::from_blob(p, shape, [](void* q) { std::free(q); }, opts);
    }
  }
  return at::empty(shape, opts);
}

}  // namespace reasonseg
