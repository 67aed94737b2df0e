#!/usr/bin/env bash
# Run on the CPU machine (Debian 12): downloads the Debian packages the GPU build needs besides
# LibTorch (headers + shared libraries of OpenCV core/imgproc/imgcodecs, SentencePiece,
# nlohmann/json) and unpacks them into third_party/sysroot, to be carried to the GPU machine.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=$PWD/third_party/sysroot
mkdir -p "$DEST" third_party/debs
cd third_party/debs
PKGS="libopencv-core-dev libopencv-core406 libopencv-imgproc-dev libopencv-imgproc406 libopencv-imgcodecs-dev
      libopencv-imgcodecs406 libsentencepiece-dev libsentencepiece0 nlohmann-json3-dev libtbb12 libjpeg62-turbo
      libpng16-16 libtiff6 libwebp7 libopenjp2-7 libdeflate0 liblerc4 libjbig0 libwebpdemux2 libwebpmux3
      libopenexr-3-1-30 libimath-3-1-29 libgdcm3.0 libgdal32 libdc1394-25"
apt-get download $PKGS
for f in *.deb; do dpkg -x "$f" "$DEST"; done
du -sh "$DEST"
