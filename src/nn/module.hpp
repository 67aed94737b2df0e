// A minimal module tree whose tensor names are the checkpoint keys, so loading is generic.
#pragma once
#include <torch/types.h>

#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "nn/quantized_weight.hpp"

namespace reasonseg {

class TensorSource;
class ProgressBar;

// Base of every sub-model. A module declares the checkpoint tensors it reads (`param`) and
// its sub-modules (`child`); the full key of a tensor is the dotted path from the root.
// Modules are neither copied nor moved: children are registered by address.
class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  struct Slot {
    std::string key;
    std::vector<int64_t> shape;
    torch::Tensor* value;
    // Set for weights that may be held as int8 (the LLM's linear layers): loading fills either
    // *value or *quant.
    QuantizedWeight* quant = nullptr;
  };
  // Appends every declared tensor under `prefix` (e.g. "model.layers.0.") to `out`.
  void collect(const std::string& prefix, std::vector<Slot>& out);

 protected:
  // Declares tensor `name` of `shape`; it is filled by load_module (into `quant` instead when
  // given and the weights are quantized).
  torch::Tensor& param(const std::string& name, std::vector<int64_t> shape, QuantizedWeight* quant = nullptr);
  // Registers a member sub-module; `name` may contain dots ("model.visual_model").
  void child(const std::string& name, Module& m);

 private:
  struct Spec {
    std::string name;
    std::vector<int64_t> shape;
    torch::Tensor value;
    QuantizedWeight* quant;
  };
  std::deque<Spec> params_;
  std::vector<std::pair<std::string, Module*>> children_;
  friend class ModuleChildHelper;
};

// Declares tensors and children on another module: for composite sub-models (Llama, Projector)
// whose tensors sit at their owner's prefix, and for the layer constructors.
class ModuleChildHelper {
 public:
  static torch::Tensor& param(Module& m, const std::string& name, std::vector<int64_t> shape,
                              QuantizedWeight* quant = nullptr) {
    return m.param(name, std::move(shape), quant);
  }
  static void child(Module& parent, const std::string& name, Module& c) { parent.child(name, c); }
};

struct LoadSettings {
  torch::ScalarType dtype = torch::kFloat32;
  torch::Device device = torch::kCPU;
  // false: copy even matching CPU tensors out of the file mapping into anonymous (huge-page)
  // memory, releasing the file pages tensor by tensor (peak memory stays ~1x).
  bool zero_copy = true;
  // Quantize the weights that may be quantized (Slot::quant) to int8 with this group size while
  // loading, tensor by tensor (0: keep them in `dtype`).
  int64_t quantize_group_size = 0;
  // The group size of a checkpoint that stores int8 weights (`<name>.weight_int8` and
  // `<name>.weight_scale` keys; config.json's "reasonseg_quantization"), 0 if it declares none.
  int64_t stored_group_size = 0;
  // Called with the number of bytes of each tensor read (for progress bars).
  std::function<void(int64_t)> on_bytes;
};

// Fills every tensor of `root` from `src` (key = prefix + path), converting to the run dtype
// and device; reads one file at a time. CPU tensors whose dtype already matches stay views of
// the memory-mapped file. Missing keys and wrong shapes throw naming file and key.
void load_module(Module& root, const std::string& prefix, const TensorSource& src, const LoadSettings& s);

// Fills every tensor of `root` with deterministic random values (norm weights 1, biases and
// other 1-D tensors small) so full-size models can be run without their weights.
void randomize_module(Module& root, const LoadSettings& s, uint64_t seed);

// One deterministic random tensor for a slot: uniform with standard deviation 0.02 (HF's
// initializer_range), ones for norm weights; the values depend only on (seed, key).
torch::Tensor random_tensor(const Module::Slot& slot, torch::ScalarType dtype, torch::Device device, uint64_t seed);

// Total bytes the module's tensors occupy in `dtype`, with the quantizable weights as int8 in
// groups of `quantize_group_size` when it is > 0.
int64_t module_bytes(Module& root, torch::ScalarType dtype, int64_t quantize_group_size = 0);
// Bytes the loaded tensors occupy (quantized weights as int8 + scales) among the slots whose key
// starts with one of `prefixes` (all slots when empty).
int64_t loaded_bytes(Module& root, const std::vector<std::string>& prefixes = {});

// The checkpoint keys of a quantized weight stored for the slot key "<name>.weight".
std::string int8_key(const std::string& weight_key);
std::string scale_key(const std::string& weight_key);

}  // namespace reasonseg
