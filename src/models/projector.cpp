#include "models/projector.hpp"

#include <ATen/ATen.h>

namespace reasonseg {

Projector::Projector(Module& parent, const std::string& name, const std::string& type, int64_t in, int64_t hidden) {
  if (type == "linear") {
    linear_ = std::make_unique<Linear>(parent, name, in, hidden);
  } else {
    fc0_ = std::make_unique<Linear>(parent, name + ".0", in, hidden);
    fc2_ = std::make_unique<Linear>(parent, name + ".2", hidden, hidden);
  }
}

torch::Tensor Projector::forward(const torch::Tensor& x) const {
  if (linear_) return linear_->forward(x);
  return fc2_->forward(fast_gelu(fc0_->forward(x)));
}

}  // namespace reasonseg
