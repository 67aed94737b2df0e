#include "reasonseg/options.hpp"

#include "util/error.hpp"

namespace reasonseg {

Device parse_device(const std::string& s) {
  if (s == "auto") return Device::Auto;
  if (s == "cpu") return Device::CPU;
  if (s == "cuda" || s == "gpu") return Device::CUDA;
  fail("--device: '", s, "' is not one of auto, cpu, cuda");
}

DType parse_dtype(const std::string& s) {
  if (s == "auto") return DType::Auto;
  if (s == "fp32" || s == "float32") return DType::Float32;
  if (s == "bf16" || s == "bfloat16") return DType::BFloat16;
  if (s == "fp16" || s == "float16") return DType::Float16;
  fail("--dtype: '", s, "' is not one of auto, fp32, bf16, fp16");
}

Quantization parse_quantization(const std::string& s) {
  if (s == "none" || s.empty()) return Quantization::None;
  if (s == "int8") return Quantization::Int8;
  fail("--quantize: '", s, "' is not one of none, int8");
}

std::string to_string(Quantization q) { return q == Quantization::Int8 ? "int8" : "none"; }

ModelFamily parse_model_family(const std::string& s) {
  if (s == "auto") return ModelFamily::Auto;
  if (s == "lisa") return ModelFamily::Lisa;
  if (s == "sesame") return ModelFamily::Sesame;
  if (s == "lisa++" || s == "lisa_plus" || s == "lisaplus") return ModelFamily::LisaPlus;
  fail("--family: '", s, "' is not one of auto, lisa, sesame, lisa++");
}

std::string to_string(ModelFamily f) {
  switch (f) {
    case ModelFamily::Auto: return "auto";
    case ModelFamily::Lisa: return "lisa";
    case ModelFamily::Sesame: return "sesame";
    case ModelFamily::LisaPlus: return "lisa++";
  }
  return "?";
}

std::string to_string(Device d) { return d == Device::Auto ? "auto" : d == Device::CPU ? "cpu" : "cuda"; }

std::string to_string(DType d) {
  switch (d) {
    case DType::Auto: return "auto";
    case DType::Float32: return "fp32";
    case DType::BFloat16: return "bf16";
    case DType::Float16: return "fp16";
  }
  return "?";
}

}  // namespace reasonseg
