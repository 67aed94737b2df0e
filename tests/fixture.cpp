#include "fixture.hpp"

#include <ATen/Context.h>

#include <cstdlib>
#include <fstream>
#include <sys/wait.h>  // WEXITSTATUS

#include "io/safetensors.hpp"
#include "reasonseg/error.hpp"

namespace rstest {

std::string data_dir() { return REASONSEG_TEST_DATA; }
std::string model_dir() { return std::string(REASONSEG_MODELS_DIR) + "/tiny-lisa-a"; }
std::string fixture_model_dir(const std::string& fixture) {
  return fixture == "tiny-lisa-a" ? model_dir() : data_dir() + "/" + fixture;
}
reasonseg::Device test_device() {
  const char* env = std::getenv("REASONSEG_TEST_DEVICE");
  const reasonseg::Device d = env ? reasonseg::parse_device(env) : reasonseg::Device::CPU;
  if (d != reasonseg::Device::CPU) {
    at::globalContext().setAllowTF32CuBLAS(false);
    at::globalContext().setAllowTF32CuDNN(false);
  }
  return d;
}
std::string case_dir(const std::string& name, const std::string& fixture) {
  return data_dir() + "/" + fixture + "/cases/" + name;
}

std::string question_of(const nlohmann::json& cj) {
  if (cj.contains("question")) return cj["question"];
  auto& rs = cj.at("reason_seg_json");
  std::string text = rs.at("text").at(0);
  return rs.at("is_sentence").get<bool>() ? text + " Please output segmentation mask."
                                          : "What is " + text + " in this image? Please output segmentation mask.";
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  return nlohmann::json::parse(in);
}

std::map<std::string, torch::Tensor> read_tensors(const std::string& path) {
  reasonseg::SafetensorsFile f(path);
  std::map<std::string, torch::Tensor> out;
  for (auto& t : f.tensors()) out[t.key] = f.view(t).clone();
  return out;
}

Closeness compare(const torch::Tensor& actual, const torch::Tensor& expected, double atol, double rtol) {
  Closeness c;
  if (actual.sizes() != expected.sizes()) {
    c.shape_ok = false;
    return c;
  }
  auto a = actual.to(torch::kFloat64), b = expected.to(torch::kFloat64);
  // NaN matches NaN only (the fixture stores NaN where a value does not exist).
  auto both_nan = a.isnan() & b.isnan();
  auto diff = (a - b).abs().masked_fill(both_nan, 0.0);
  c.numel = diff.numel();
  c.violations = (diff > (atol + rtol * b.abs())).sum().item<int64_t>();
  if (c.numel) c.violations += (a.isnan() ^ b.isnan()).sum().item<int64_t>();
  c.max_abs = c.numel ? diff.nan_to_num(1e300).max().item<double>() : 0.0;
  return c;
}

torch::Tensor summarize(const torch::Tensor& full, const std::string& kind) {
  using torch::indexing::Slice;
  if (kind == "rowsum") return full.sum(-1);
  if (kind == "colsum") return full.sum(-2);
  int64_t k = std::stoi(kind.substr(3));
  return full.index({"...", Slice(0, torch::indexing::None, k), Slice(0, torch::indexing::None, k)});
}

int run_cli(const std::string& args) {
  const int status = std::system((std::string(REASONSEG_CLI) + " " + args).c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const reasonseg::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace rstest
