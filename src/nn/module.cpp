#include "nn/module.hpp"

#include <torch/torch.h>

#include <sys/mman.h>

#include <cstdlib>

#include <map>

#include "io/checkpoint.hpp"
#include "nn/weight_memory.hpp"
#include "util/error.hpp"

namespace reasonseg {

torch::Tensor& Module::param(const std::string& name, std::vector<int64_t> shape, QuantizedWeight* quant) {
  params_.push_back(Spec{name, std::move(shape), torch::Tensor(), quant});
  return params_.back().value;
}

namespace {
// madvise on the whole `align`-sized blocks inside [ptr, ptr + bytes).
void advise_interior(const void* ptr, size_t bytes, uintptr_t align, int advice) {
  uintptr_t p = reinterpret_cast<uintptr_t>(ptr);
  uintptr_t b = (p + align - 1) & ~(align - 1), e = (p + bytes) & ~(align - 1);
  if (e > b) madvise(reinterpret_cast<void*>(b), e - b, advice);
}
// Checkpoint tensors are views of read-only file mappings (io/checkpoint.hpp). Once converted,
// their pages are dropped so they stop counting towards resident memory while loading.
void release_mapped_pages(const torch::Tensor& t) {
  advise_interior(t.data_ptr(), t.numel() * t.element_size(), 4096, MADV_DONTNEED);
}
}  // namespace

void Module::child(const std::string& name, Module& m) { children_.push_back({name, &m}); }

void Module::collect(const std::string& prefix, std::vector<Slot>& out) {
  for (auto& p : params_) out.push_back(Slot{prefix + p.name, p.shape, &p.value, p.quant});
  for (auto& [name, m] : children_) m->collect(prefix + name + ".", out);
}

std::string int8_key(const std::string& weight_key) { return weight_key + "_int8"; }
std::string scale_key(const std::string& weight_key) { return weight_key + "_scale"; }

namespace {
QuantizedWeight to_device(QuantizedWeight q, torch::Device d) {
  if (!d.is_cpu()) q.data = q.data.to(d), q.scales = q.scales.to(d);
  return q;
}

// A weight stored as int8 + scales (reasonseg convert --quantize): validated, used in place.
QuantizedWeight stored_quantized(const Module::Slot& slot, const std::string& file,
                                 const std::map<std::string, torch::Tensor>& tensors, const TensorSource& src,
                                 const LoadSettings& s) {
  const std::string ik = int8_key(slot.key), sk = scale_key(slot.key);
  if (s.stored_group_size == 0)
    fail(file, ": tensor '", ik, "' is quantized but config.json has no \"reasonseg_quantization\" with its group_size");
  if (!src.contains(sk)) fail(file, ": tensor '", sk, "' is missing (the scales of '", ik, "')");
  QuantizedWeight q;
  q.group_size = s.stored_group_size;
  q.data = tensors.at(ik);
  q.scales = tensors.count(sk) ? tensors.at(sk) : src.get(sk);
  validate_quantized(q, slot.shape.at(0), slot.shape.at(1), file + ": quantized weight '" + slot.key + "'");
  if (!s.zero_copy && s.device.is_cpu()) {
    q.data = empty_weight(q.data.sizes().vec(), q.data.options()).copy_(q.data);
    q.scales = q.scales.clone();
  }
  return to_device(q, s.device);
}
}  // namespace

void load_module(Module& root, const std::string& prefix, const TensorSource& src, const LoadSettings& s) {
  std::vector<Module::Slot> slots;
  root.collect(prefix, slots);
  std::map<std::string, std::vector<Module::Slot*>> by_file;
  for (auto& slot : slots) {
    const bool stored_int8 = slot.quant && src.contains(int8_key(slot.key));
    if (!stored_int8 && !src.contains(slot.key)) {
      auto files = src.files();
      fail(files.size() == 1 ? files[0] : files.empty() ? std::string("checkpoint") : files[0] + " (and other shards)",
           ": tensor '", slot.key, "' is missing");
    }
    by_file[src.file_of(stored_int8 ? int8_key(slot.key) : slot.key)].push_back(&slot);
  }
  torch::NoGradGuard no_grad;
  for (auto& [file, file_slots] : by_file) {
    auto tensors = src.read_file(file);
    for (auto* slot : file_slots) {
      if (slot->quant && tensors.count(int8_key(slot->key))) {
        *slot->quant = stored_quantized(*slot, file, tensors, src, s);
        if (s.on_bytes) s.on_bytes(slot->quant->bytes());
        continue;
      }
      torch::Tensor t = tensors.at(slot->key);
      if (t.sizes().vec() != slot->shape)
        fail(file, ": tensor '", slot->key, "' has shape ", shape_str(t.sizes().vec()), " but the config needs ",
             shape_str(slot->shape));
      if (!t.is_floating_point()) fail(file, ": tensor '", slot->key, "' is not a floating-point tensor");
      if (slot->quant && s.quantize_group_size > 0) {
        // Quantized straight from the file mapping, whose pages are then dropped: peak memory
        // stays the quantized model plus one tensor.
        auto q = quantize_int8(t, s.quantize_group_size, file + ": tensor '" + slot->key + "'");
        if (t.is_cpu() && t.is_contiguous()) release_mapped_pages(t);
        *slot->quant = to_device(std::move(q), s.device);
        if (s.on_bytes) s.on_bytes(slot->quant->bytes());
        continue;
      }
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
    if (slot.quant && s.quantize_group_size > 0) {
      *slot.quant = to_device(
          quantize_int8(random_tensor(slot, s.dtype, torch::kCPU, seed), s.quantize_group_size, slot.key), s.device);
      if (s.on_bytes) s.on_bytes(slot.quant->bytes());
      continue;
    }
    *slot.value = random_tensor(slot, s.dtype, s.device, seed);
    if (s.on_bytes) s.on_bytes(slot.value->numel() * slot.value->element_size());
  }
}

int64_t module_bytes(Module& root, torch::ScalarType dtype, int64_t quantize_group_size) {
  std::vector<Module::Slot> slots;
  root.collect("", slots);
  int64_t n = 0;
  for (auto& s : slots) {
    int64_t e = 1;
    for (auto d : s.shape) e *= d;
    if (s.quant && quantize_group_size > 0 && s.shape.size() == 2)
      n += e + s.shape[0] * scale_groups(s.shape[1], quantize_group_size) * 4;
    else
      n += e * int64_t(c10::elementSize(dtype));
  }
  return n;
}

int64_t loaded_bytes(Module& root, const std::vector<std::string>& prefixes) {
  std::vector<Module::Slot> slots;
  root.collect("", slots);
  int64_t n = 0;
  for (auto& s : slots) {
    bool wanted = prefixes.empty();
    for (auto& p : prefixes) wanted = wanted || s.key.rfind(p, 0) == 0;
    if (!wanted) continue;
    if (s.quant && s.quant->defined()) n += s.quant->bytes();
    else if (s.value->defined()) n += s.value->numel() * s.value->element_size();
  }
  return n;
}

}  // namespace reasonseg
