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
if ! ldconfig -p | grep -q 'libcudart.so.13 '; then
  echo "install-torch-wheel: libcudart.so.13 is not on the library path: install the CUDA 13.0 toolkit" >&2
  echo "  (or use a full 'pip install torch==$TORCH_VERSION', which brings the CUDA libraries as wheels)" >&2
  exit 1
fi
python3 -m venv "$VENV"
PIP="$VENV/bin/python3 -m pip --disable-pip-version-check -q"
$PIP install --no-compile --no-deps "torch==$TORCH_VERSION" \
  nvidia-cusparselt-cu13==0.8.0 nvidia-nvshmem-cu13==3.4.5 nvidia-cufile==1.15.1.6
# What `import torch` needs to print its CMake prefix quietly.
$PIP install --no-compile typing_extensions sympy filelock networkx jinja2 fsspec numpy
"$VENV/bin/python3" -W ignore -c 'import torch; print("install-torch-wheel: torch", torch.__version__, "CUDA", torch.version.cuda, "at", torch.utils.cmake_prefix_path)'
