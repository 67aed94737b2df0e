// mm_projector: maps CLIP patch features into the LLM's embedding space.
#pragma once
#include <memory>

#include "nn/layers.hpp"

namespace reasonseg {

// "linear": one Linear(mm_hidden -> H) whose tensors sit at `name` (mm_projector.weight);
// "mlp2x_gelu": Linear `name`.0 -> GELU -> Linear `name`.2.
class Projector {
 public:
  Projector(Module& parent, const std::string& name, const std::string& type, int64_t in, int64_t hidden);
  torch::Tensor forward(const torch::Tensor& x) const;

 private:
  std::unique_ptr<Linear> linear_, fc0_, fc2_;
};

}  // namespace reasonseg
