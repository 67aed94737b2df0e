// text_hidden_fcs: maps the [SEG] hidden state to SAM's prompt width.
#pragma once
#include "nn/layers.hpp"

namespace reasonseg {

// Keys `name`.0.0 (Linear H->H), ReLU, `name`.0.2 (Linear H->out_dim); dropout 0 is omitted.
class TextHiddenFcs {
 public:
  TextHiddenFcs(Module& parent, const std::string& name, int64_t hidden, int64_t out_dim);
  torch::Tensor forward(const torch::Tensor& x) const;

 private:
  Linear fc0_, fc2_;
};

}  // namespace reasonseg
