#include "models/text_hidden_fcs.hpp"

#include <ATen/ATen.h>

namespace reasonseg {

TextHiddenFcs::TextHiddenFcs(Module& parent, const std::string& name, int64_t hidden, int64_t out_dim)
    : fc0_(parent, name + ".0.0", hidden, hidden), fc2_(parent, name + ".0.2", hidden, out_dim) {}

torch::Tensor TextHiddenFcs::forward(const torch::Tensor& x) const {
  return fc2_.forward(at::relu(fc0_.forward(x)));
}

}  // namespace reasonseg
