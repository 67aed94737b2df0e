#include "nn/module.hpp"

#include <torch/torch.h>

#include <sys/mman.h>

#include <cstdlib>

#include <map>

#include "io/checkpoint.hpp"
#include "util/error.hpp"

namespace reasonseg {

torch::Tensor& Module::param(const std::string& name, std::vector<int64_t> shape) {
  params_.push_back(Spec{name, std::move(shape), torch::Tensor()});
  return params_.back().value;
}

namespace {
// madvise on the whole `align`-sized blocks inside [ptr, ptr + bytes).
void advise_interior(const void* ptr, size_t bytes, uintptr_t align, int advice) {
  uintptr_t p = reinterpret_cast<uintptr_t>(ptr);
  uintptr_t b = (p + align - 1) & ~(align - 1), e = (p + bytes) & ~(align - 1);
  if (e > b) madvise(reinterpret_cast<void*>(b), e - b, advice);
}
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
      return torch::from_blob(p, shape, [](void* q) { std::free(q); }, opts);
    }
  }
  return torch::empty(shape, opts);
}
// Checkpoint tensors are views of read-only file mappings (io/checkpoint.hpp). Once converted,
// their pages are dropped so they stop counting towards resident memory while loading.
void release_mapped_pages(const torch::Tensor& t) {
  advise_interior(t.data_ptr(), t.numel() * t.element_size(), 4096, MADV_DONTNEED);
}
}  // namespace

void Module::child(const std::string& name, Module& m) { children_.push_back({name, &m}); }

void Module::collect(const std::string& prefix, std::vector<Slot>& out) {
  for (auto& p : params_) out.push_back(Slot{prefix + p.name, p.shape, &p.value});
  for (auto& [name, m] : children_) m->collect(prefix + name + ".", out);
}

void load_module(Module& root, const std::string& prefix, const TensorSource& src, const LoadSettings& s) {
  std::vector<Module::Slot> slots;
  root.collect(prefix, slots);
  std::map<std::string, std::vector<Module::Slot*>> by_file;
  for (auto& slot : slots) {
    if (!src.contains(slot.key)) {
      auto files = src.files();
      fail(files.size() == 1 ? files[0] : files.empty() ? std::string("checkpoint") : files[0] + " (and other shards)",
           ": tensor '", slot.key, "' is missing");
    }
    by_file[src.file_of(slot.key)].push_back(&slot);
  }
  torch::NoGradGuard no_grad;
  for (auto& [file, file_slots] : by_file) {
    auto tensors = src.read_file(file);
    for (auto* slot : file_slots) {
      torch::Tensor t = tensors.at(slot->key);
      if (t.sizes().vec() != slot->shape)
        fail(file, ": tensor '", slot->key, "' has shape ", shape_str(t.sizes().vec()), " but the config needs ",
             shape_str(slot->shape));
      if (!t.is_floating_point()) fail(file, ": tensor '", slot->key, "' is not a floating-point tensor");
      if (t.scalar_type() != s.dtype || s.device != t.device() || !t.is_contiguous() || !s.zero_copy) {
        auto dst = empty_weight(t.sizes().vec(), torch::TensorOptions().dtype(s.dtype).device(s.device));
        dst.copy_(t);
        if (t.is_cpu() && t.is_contiguous()) release_mapped_pages(t);
        t = dst;
      }
      *slot->value = t;
      if (s.on_bytes) s.on_bytes(t.numel() * t.element_size());
    }
  }
}

namespace {
// splitmix64: a counter-based generator, so every chunk of a tensor is drawn independently (in
// parallel) and the values do not depend on the thread count.
inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

template <typename T>
void fill_uniform(T* p, int64_t n, uint64_t seed, float half_width) {
  const int64_t chunk = 1 << 16;
  at::parallel_for(0, (n + chunk - 1) / chunk, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      uint64_t state = splitmix64(seed ^ (uint64_t(c) * 0xD1B54A32D192ED03ull));
      const int64_t end = std::min(n, (c + 1) * chunk);
      for (int64_t i = c * chunk; i < end; ++i) {
        state = splitmix64(state);
        const float u = float(state >> 40) * (1.0f / 16777216.0f);  // [0, 1) with 24 bits
        p[i] = T((2.0f * u - 1.0f) * half_width);
      }
    }
  });
}
}  // namespace

torch::Tensor random_tensor(const Module::Slot& slot, torch::ScalarType dtype, torch::Device device, uint64_t seed) {
  const std::string& k = slot.key;
  auto opts = torch::TensorOptions().dtype(dtype).device(device);
  bool norm_weight = (k.find("norm") != std::string::npos || k.find("layrnorm") != std::string::npos ||
                      k.find("output_upscaling.1.") != std::string::npos) &&
                     k.size() > 7 && k.compare(k.size() - 7, 7, ".weight") == 0;
  if (norm_weight) return torch::ones(slot.shape, opts);
  // Uniform with the standard deviation 0.02 of HF's initializer_range, drawn straight into the
  // target dtype on the CPU threads (at::normal with one generator ran at ~150 MB/s: 100 s for 7B).
  const float half_width = 0.02f * std::sqrt(3.0f);
  const uint64_t key_seed = splitmix64(seed ^ std::hash<std::string>{}(k));
  auto t = empty_weight(slot.shape, opts.device(torch::kCPU));
  switch (dtype) {
    case torch::kFloat32: fill_uniform(t.data_ptr<float>(), t.numel(), key_seed, half_width); break;
    case torch::kBFloat16: fill_uniform(t.data_ptr<at::BFloat16>(), t.numel(), key_seed, half_width); break;
    case torch::kHalf: fill_uniform(t.data_ptr<at::Half>(), t.numel(), key_seed, half_width); break;
    default: fail(k, ": random weights need a floating-point dtype");
  }
  return device.is_cpu() ? t : t.to(device);
}

void randomize_module(Module& root, const LoadSettings& s, uint64_t seed) {
  std::vector<Module::Slot> slots;
  root.collect("", slots);
  torch::NoGradGuard no_grad;
  for (auto& slot : slots) {
    *slot.value = random_tensor(slot, s.dtype, s.device, seed);
    if (s.on_bytes) s.on_bytes(slot.value->numel() * slot.value->element_size());
  }
}

int64_t module_bytes(Module& root, torch::ScalarType dtype) {
  std::vector<Module::Slot> slots;
  root.collect("", slots);
  int64_t n = 0;
  for (auto& s : slots) {
    int64_t e = 1;
    for (auto d : s.shape) e *= d;
    n += e * int64_t(c10::elementSize(dtype));
  }
  return n;
}

}  // namespace reasonseg
