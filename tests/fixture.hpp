// Helpers to read the golden fixtures (copied into tests/data) and compare tensors.
#pragma once
#include <torch/types.h>

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "reasonseg/options.hpp"

namespace rstest {

std::string data_dir();    // tests/data
std::string model_dir();   // models/tiny-lisa-a (the bundled tiny model)
// The checkpoint of a fixture family: the bundled model for tiny-lisa-a, else tests/data/FIXTURE.
std::string fixture_model_dir(const std::string& fixture);
// The device the parity tests run on: REASONSEG_TEST_DEVICE (cpu, cuda), CPU by default. On CUDA
// it also turns TF32 off for cuBLAS and cuDNN (process-wide, test binary only): fp32 parity means
// fp32 arithmetic.
reasonseg::Device test_device();
// A case of a fixture family: tests/data/FIXTURE/cases/NAME.
std::string case_dir(const std::string& name, const std::string& fixture = "tiny-lisa-a");
nlohmann::json read_json(const std::string& path);
// The question of a teacher-forced case (case.json): stored, or built from the ReasonSeg JSON as
// LISA's ValDataset builds it.
std::string question_of(const nlohmann::json& case_json);
std::map<std::string, torch::Tensor> read_tensors(const std::string& path);  // owned copies
// Runs the reasonseg CLI with `args` (a shell command line); its exit status, -1 if it did not exit.
int run_cli(const std::string& args);
// The message of the reasonseg::Error `fn` throws, "" if it throws none.
std::string error_of(const std::function<void()>& fn);

struct Closeness {
  double max_abs = 0;      // largest |a - b|
  int64_t violations = 0;  // elements outside atol + rtol * |b|
  int64_t numel = 0;
  bool shape_ok = true;
};
Closeness compare(const torch::Tensor& actual, const torch::Tensor& expected, double atol, double rtol);

// Summary `kind` ("sub4", "sub16", "rowsum", "colsum") of a full tensor, as the fixture computes it.
torch::Tensor summarize(const torch::Tensor& full, const std::string& kind);

}  // namespace rstest
