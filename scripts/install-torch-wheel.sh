#!/usr/bin/env bash
# Installs LibTorch 2.x with CUDA from PyPI's `torch` wheel into a Python virtual environment, for
# building reasonseg against it (README: "Building against LibTorch 2.x"). CI runs exactly this.
#
#   bash scripts/install-torch-wheel.sh [VENV_DIR (.venv-torch)]
#   cmake -S . -B build-torch2 -DCMAKE_PREFIX_PATH=$(VENV_DIR/bin/python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
#
# The wheel (torch 2.11.0+cu130, 531 MB) carries LibTorch but not the CUDA libraries it links:
# those come from the CUDA 13.0 toolkit on the machine (cudart, cuBLAS, cuDNN, cuFFT, cuRAND,
# cuSOLVER, cuSPARSE, NCCL, nvJitLink, CUPTI), except three the toolkit lacks, installed here
# from their own wheels: cuSPARSELt (170 MB), NVSHMEM (60 MB) and cuFile (1.2 MB). They land in
# site-packages/nvidia/, where libtorch_cuda.so's RPATH looks. Without a toolkit, install the
# full `pip install torch==2.11.0` instead (it brings every CUDA library, ~3 GB).
set -euo pipefail
VENV=${1:-.venv-torch}
TORCH_VERSION=${TORCH_VERSION:-2.11.0}
# The CUDA 13 runtime must be where the dynamic loader looks. Toolkits installed without their
# ld.so.conf entry (or with a stale cache) are found here and registered, as root; without a toolkit
# this exits 3, which .ci/run reports as a skipped LibTorch 2.x stage.
LDCONFIG=$(command -v ldconfig || echo /sbin/ldconfig)
if ! "$LDCONFIG" -p 2>/dev/null | grep -q 'libcudart.so.13 '; then
  CUDA_LIB=""
  NVCC_ROOT=$(dirname "$(dirname "$(command -v nvcc || echo /nonexistent/bin/nvcc)")")
  for root in "${CUDA_HOME:-}" "${CUDA_PATH:-}" "$NVCC_ROOT" /usr/local/cuda /usr/local/cuda-13*; do
    for sub in lib64 lib targets/x86_64-linux/lib; do
      if [ -n "$root" ] && [ -e "$root/$sub/libcudart.so.13" ]; then CUDA_LIB=$(cd "$root/$sub" && pwd -P); break 2; fi
    done
  done
  if [ -z "$CUDA_LIB" ]; then
    echo "install-torch-wheel: no CUDA 13.0 toolkit found (no libcudart.so.13 in the loader cache, nvcc: $(command -v nvcc || echo none)," >&2
    echo "  none under \$CUDA_HOME or /usr/local/cuda*): install the CUDA 13.0 toolkit to build against LibTorch 2.x with CUDA" >&2
    exit 3
  fi
  if [ "$(id -u)" != 0 ]; then
    echo "install-torch-wheel: the CUDA toolkit's libraries in $CUDA_LIB are not on the loader's path:" >&2
    echo "  as root: echo $CUDA_LIB > /etc/ld.so.conf.d/cuda-13.conf && ldconfig   (or export LD_LIBRARY_PATH=$CUDA_LIB)" >&2
    exit 1
  fi
  echo "install-torch-wheel: registering $CUDA_LIB with the dynamic loader (/etc/ld.so.conf.d/cuda-13.conf)"
  echo "$CUDA_LIB" > /etc/ld.so.conf.d/cuda-13.conf
  "$LDCONFIG"
  "$LDCONFIG" -p | grep -q 'libcudart.so.13 ' || { echo "install-torch-wheel: ldconfig still lacks libcudart.so.13" >&2; exit 1; }
fi
python3 -m venv "$VENV"
PIP="$VENV/bin/python3 -m pip --disable-pip-version-check -q"
$PIP install --no-compile --no-deps "torch==$TORCH_VERSION" \
  nvidia-cusparselt-cu13==0.8.0 nvidia-nvshmem-cu13==3.4.5 nvidia-cufile==1.15.1.6
# What `import torch` needs to print its CMake prefix quietly.
$PIP install --no-compile typing_extensions sympy filelock networkx jinja2 fsspec numpy
"$VENV/bin/python3" -W ignore -c 'import torch; print("install-torch-wheel: torch", torch.__version__, "CUDA", torch.version.cuda, "at", torch.utils.cmake_prefix_path)'
