#!/usr/bin/env bash
# CPU dry run of the one-call GPU check, on the CPU machine, as the GPU machine will see it:
#  - a staging folder holding exactly what a device call carries (git's tracked and
#    untracked-not-ignored files, plus third_party/gpu from scripts/gpu-payload.sh), its size printed
#    (gpu-check.sh unpacks the sysroot there);
#  - a private mount namespace in which the system's OpenCV, SentencePiece, nlohmann/json and
#    Catch2 (headers, CMake files, libraries) are hidden (empty mounts over them), so the build
#    can only use the carried sysroot;
#  - LibTorch from the PyPI wheel (.venv-torch, scripts/install-torch-wheel.sh), as python3.
# scripts/gpu-check.sh then builds and runs; with no GPU it must get as far as the first CUDA
# call (the parity step's "no CUDA device"). Needs root (unshare -m).
#   bash scripts/gpu-dry-run.sh [OUT_DIR (/tmp/reasonseg-dry-run-out)]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${1:-/tmp/reasonseg-dry-run-out}
VENV=${VENV:-$ROOT/.venv-torch}
[ -x "$VENV/bin/python3" ] || bash scripts/install-torch-wheel.sh "$VENV"
[ -f third_party/gpu/sysroot.tar.xz ] || bash scripts/gpu-payload.sh
STAGE=$(mktemp -d /tmp/reasonseg-dry-run.XXXXXX)
git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t "$STAGE"
cp -r --parents third_party/gpu "$STAGE"
echo "gpu-dry-run: staged $(du -sb "$STAGE" | awk '{printf "%.1f MiB", $1 / 1048576}') in $STAGE (the device limit is 64 MiB)"
rm -rf "$OUT"
mkdir -p "$OUT"
export STAGE OUT VENV
unshare -m bash -euo pipefail -c '
  mount --make-rprivate /
  hidden=0
  for d in /usr/include/opencv4 /usr/lib/x86_64-linux-gnu/cmake/opencv4 /usr/include/nlohmann \
           /usr/share/cmake/nlohmann_json /usr/include/catch2 /usr/lib/cmake/Catch2 /usr/share/pkgconfig; do
    if [ -d "$d" ]; then mount -t tmpfs none "$d"; hidden=$((hidden + 1)); fi
  done
  for f in $(ls /usr/lib/x86_64-linux-gnu/libopencv_* /usr/lib/x86_64-linux-gnu/libsentencepiece* \
                /usr/include/sentencepiece*.h 2>/dev/null | xargs -r realpath | sort -u); do
    mount --bind /dev/null "$f"; hidden=$((hidden + 1))
  done
  echo "gpu-dry-run: $hidden system paths of OpenCV, SentencePiece, json and Catch2 hidden"
  cd "$STAGE"
  PATH=$VENV/bin:$PATH PYTHON=$VENV/bin/python3 OUT=$OUT REASONSEG_USE_CCACHE=${REASONSEG_USE_CCACHE:-ON} \
    CCACHE_BASEDIR=$STAGE bash scripts/gpu-check.sh
  echo "gpu-dry-run: libraries the built tests load (with gpu-check.sh'"'"'s library path):"
  export LD_LIBRARY_PATH=$STAGE/third_party/gpu/sysroot/usr/lib/x86_64-linux-gnu
  ldd build-gpu/tests/reasonseg_tests | grep -E "opencv|torch\.so|tbb|lapack|blas|X11" || true
  ldd build-gpu/libreasonseg_spm.so | grep sentencepiece || true
'
echo "gpu-dry-run: results in $OUT (gpu-check.json, gpu-check.txt, one log per step); staging folder $STAGE"
