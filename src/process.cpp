#include "reasonseg/process.hpp"

#include <ATen/Parallel.h>

#include <malloc.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>

#include "util/error.hpp"

namespace reasonseg {

void configure_process(const ProcessSettings& s) {
  if (s.threads < -1 || s.threads > 1024)
    fail("threads: ", s.threads, " is out of range (-1: LibTorch's choice, 0: one per hardware thread, at most 1024)");
  if (s.keep_freed_memory) {
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
  }
  if (s.passive_openmp_wait) setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
  if (s.threads >= 0)
    at::set_num_threads(s.threads > 0 ? s.threads : int(std::max(1u, std::thread::hardware_concurrency())));
}

DType auto_dtype(Device device) {
  if (device == Device::CUDA) return DType::BFloat16;
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("flags", 0) == 0)
      return line.find(" amx_bf16") != std::string::npos || line.find(" avx512_bf16") != std::string::npos
                 ? DType::BFloat16
                 : DType::Float32;
  return DType::Float32;
}

}  // namespace reasonseg
