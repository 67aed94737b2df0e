#!/usr/bin/env bash
# One-call GPU check (issue: CUDA): build against the machine's CUDA LibTorch, run the parity
# tests on CUDA, benchmark lisa-7b bf16, print a short table. Needs the sysroot made on the
# CPU machine by scripts/make-gpu-sysroot.sh (OpenCV, SentencePiece, nlohmann/json headers and
# libraries unpacked from Debian packages), carried as third_party/sysroot.
# Usage on the GPU machine:  bash scripts/gpu-check.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-${OUT:-/tmp/reasonseg-gpu}}
mkdir -p "$OUT"
SYSROOT=$PWD/third_party/sysroot
TORCH_PREFIX=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -c 'import torch;print("torch", torch.__version__, "cuda", torch.version.cuda)' | tee -a "$OUT/gpu.txt"
export LD_LIBRARY_PATH=$SYSROOT/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
export REASONSEG_SPM_SHIM=$PWD/build-gpu/libreasonseg_spm.so
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DREASONSEG_USE_CCACHE=OFF \
  -DCMAKE_PREFIX_PATH="$TORCH_PREFIX;$SYSROOT/usr;$SYSROOT/usr/lib/x86_64-linux-gnu/cmake" \
  -DPKG_CONFIG_EXECUTABLE=$(command -v pkg-config || echo /usr/bin/pkg-config) 2>&1 | tail -5 | tee "$OUT/cmake.txt"
PKG_CONFIG_PATH=$SYSROOT/usr/lib/x86_64-linux-gnu/pkgconfig cmake --build build-gpu -j16 2>&1 | tail -20 | tee "$OUT/build.txt"
# Parity on CUDA, fp32 with TF32 off (LibTorch leaves TF32 off for matmuls by default).
REASONSEG_TEST_DEVICE=cuda ./build-gpu/tests/reasonseg_tests "[parity],[bf16]" 2>&1 | tail -30 | tee "$OUT/parity.txt"
./build-gpu/reasonseg bench --random-weights lisa-7b --device cuda --dtype bf16 --runs 5 --warmup 2 --new-tokens 8 \
  --json "$OUT/bench-lisa7b-bf16.json" 2>&1 | tail -14 | tee "$OUT/bench.txt"
