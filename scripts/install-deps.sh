#!/usr/bin/env bash
# Installs everything reasonseg needs to build and test on a fresh Debian 12 machine.
# libopenblas0-pthread matters: with Debian's reference BLAS LibTorch's fp32 matmul is ~45x slower.
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if ! command -v sudo > /dev/null; then
    echo "install-deps: installing Debian packages needs root: run this script as root (or install sudo)." >&2
    echo "install-deps: the packages: cmake g++ make ccache pkg-config clang libtorch-dev libopencv-dev" \
         "libpng-dev libjpeg-dev libsentencepiece-dev nlohmann-json3-dev catch2 libopenblas0-pthread" >&2
    exit 1
  fi
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
  cmake g++ make ccache pkg-config clang \
  libtorch-dev libopencv-dev libpng-dev libjpeg-dev libsentencepiece-dev nlohmann-json3-dev catch2 \
  libopenblas0-pthread >/dev/null
echo "install-deps: done"
