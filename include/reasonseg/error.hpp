// The single exception type reasonseg throws for bad input, bad files and bad options.
#pragma once
#include <stdexcept>
#include <string>

namespace reasonseg {

// Every failure the library can diagnose is reported as an Error whose message names the
// file, tensor key or argument at fault ("model.safetensors: tensor 'lm_head.weight': ...").
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace reasonseg
