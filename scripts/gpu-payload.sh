#!/usr/bin/env bash
# Assembles, on the CPU machine (Debian 12, after scripts/install-deps.sh), what the one-call GPU
# check carries besides the source tree, in third_party/gpu/ (ignored by git, carried by name):
#   sysroot.tar.xz  Debian 12's OpenCV core + imgproc, SentencePiece, nlohmann/json, Catch2 and the
#             shared libraries they need that a CUDA image may lack; static archives and docs
#             dropped, xz-compressed (31 MB -> ~8 MB: the fixtures of three model families leave no
#             room for it unpacked); gpu-check.sh unpacks it. No imgcodecs: with its codecs and
#             GDAL it is ~200 MB.
#   decoded/  every PNG the check reads (tests/data, examples), decoded here by OpenCV's imread
#             into binary PPM at the same relative path + ".ppm" (the GPU build reads PPM only).
# Then prints what one device call carries (git's tracked + untracked-not-ignored files, and
# third_party/gpu) against the 64 MiB limit, and fails above it.
#   bash scripts/gpu-payload.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DEST=$ROOT/third_party/gpu
rm -rf "$DEST"
mkdir -p "$DEST/debs" "$DEST/sysroot" "$DEST/decoded"

PKGS="libopencv-core-dev libopencv-core406 libopencv-imgproc-dev libopencv-imgproc406
      libsentencepiece-dev libsentencepiece0 nlohmann-json3-dev catch2
      libtbb12 libglx0 libglvnd0 libx11-6 libxcb1 libxau6 libxdmcp6 libbsd0 libmd0
      liblapack3 libblas3 libgfortran5 libquadmath0"
(cd "$DEST/debs" && apt-get download -qq $PKGS >/dev/null 2>&1) || { echo "gpu-payload: apt-get download failed (run apt-get update?)" >&2; exit 1; }
for f in "$DEST"/debs/*.deb; do dpkg -x "$f" "$DEST/sysroot"; done
rm -rf "$DEST/debs"
S=$DEST/sysroot/usr
rm -rf "$S/share/doc" "$S/share/lintian" "$S/share/man" "$S/share/X11/locale"
rm -f "$S"/lib/x86_64-linux-gnu/*.a "$S"/lib/x86_64-linux-gnu/libsentencepiece_train*
# Debian reaches BLAS/LAPACK through alternatives links that dpkg -x does not make.
ln -sf blas/libblas.so.3 "$S/lib/x86_64-linux-gnu/libblas.so.3"
ln -sf lapack/liblapack.so.3 "$S/lib/x86_64-linux-gnu/liblapack.so.3"

# Decode with the same OpenCV imread the CPU build uses.
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cat > "$TMP/decode.cpp" <<'CPP'
#include <cstdio>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
int main(int argc, char** argv) {
  for (int i = 1; i + 1 < argc; i += 2) {
    cv::Mat m = cv::imread(argv[i], cv::IMREAD_COLOR);
    if (m.empty()) { std::fprintf(stderr, "%s: cannot read\n", argv[i]); return 1; }
    cv::cvtColor(m, m, cv::COLOR_BGR2RGB);
    FILE* f = std::fopen(argv[i + 1], "wb");
    if (!f) return 1;
    std::fprintf(f, "P6\n%d %d\n255\n", m.cols, m.rows);
    std::fwrite(m.data, 1, m.total() * 3, f);
    std::fclose(f);
  }
  return 0;
}
CPP
g++ -O1 -o "$TMP/decode" "$TMP/decode.cpp" $(pkg-config --cflags --libs opencv4)
ARGS=()
while IFS= read -r png; do
  mkdir -p "$DEST/decoded/$(dirname "$png")"
  ARGS+=("$png" "$DEST/decoded/$png.ppm")
done < <(git ls-files -co --exclude-standard -- 'tests/data/*.png' 'examples/*.png')
"$TMP/decode" "${ARGS[@]}"

tar -C "$DEST" -cf - sysroot | xz -6 -T0 > "$DEST/sysroot.tar.xz"
rm -rf "$DEST/sysroot"
tree_bytes=$(git ls-files -co --exclude-standard -z | du -cb --files0-from=- | tail -1 | cut -f1)
sysroot_bytes=$(du -sb "$DEST/sysroot.tar.xz" | cut -f1)
decoded_bytes=$(du -sb "$DEST/decoded" | cut -f1)
total=$((tree_bytes + sysroot_bytes + decoded_bytes))
limit=$((64 * 1024 * 1024))
awk -v t="$tree_bytes" -v s="$sysroot_bytes" -v d="$decoded_bytes" -v all="$total" 'BEGIN {
  m = 1048576; printf "gpu-payload: source tree %.1f MiB + sysroot.tar.xz %.1f MiB + decoded images %.1f MiB = %.1f MiB of 64 MiB\n", t/m, s/m, d/m, all/m }'
[ "$total" -le "$limit" ] || { echo "gpu-payload: over the device call's 64 MiB limit" >&2; exit 1; }
echo "gpu-payload: device call: run(command='bash scripts/gpu-check.sh', carry=['third_party/gpu'])"
