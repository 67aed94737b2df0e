// Process-wide settings that make reasonseg faster. Constructing a model changes none of them: an
// application opts in by calling configure_process once, before loading a model (the CLI does).
#pragma once
#include "reasonseg/options.hpp"

namespace reasonseg {

struct ProcessSettings {
  // LibTorch's intra-op thread count (at::set_num_threads, for the whole process). 0: one per
  // hardware thread; -1: leave LibTorch's choice. At most 1024.
  int threads = 0;
  // glibc keeps freed blocks of up to 1 GiB in the heap (mallopt M_MMAP_THRESHOLD and
  // M_TRIM_THRESHOLD) instead of returning them to the kernel: activations freed and allocated
  // again every layer then do not page-fault every time (docs/performance.md).
  bool keep_freed_memory = true;
  // Sets OMP_WAIT_POLICY=PASSIVE unless the environment already sets it: fp32 on CPU runs
  // OpenBLAS's threads beside OpenMP's, and spinning OpenMP workers steal their cores. Only
  // effective before LibTorch's first parallel work; bf16 is faster with the default (spinning)
  // policy (docs/performance.md).
  bool passive_openmp_wait = false;
};

// Applies `settings`; throws reasonseg::Error for out-of-range values before changing anything.
void configure_process(const ProcessSettings& settings);

// The dtype DType::Auto resolves to on `device` on this machine: bf16 on CUDA and on CPUs with
// native bf16 (AVX512-BF16 or AMX), else fp32.
DType auto_dtype(Device device);

}  // namespace reasonseg
