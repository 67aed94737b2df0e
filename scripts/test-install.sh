#!/usr/bin/env bash
# Installs a build, moves the installed tree elsewhere, then builds and runs against it what an
# application would: the examples (find_package), tests/consumer (find_package) and examples/c_api.c
# through pkg-config. Nothing may point back into the build tree or the first prefix.
#   usage: scripts/test-install.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" > "$work/install.log"
mv "$work/prefix" "$work/moved"
P="$work/moved"
echo "test-install: installed $(find "$P" -type f | wc -l) files, moved to $P"

"$P/bin/reasonseg" version

# CMake package: the examples and the consumer project, built as separate projects.
for project in examples tests/consumer; do
  cmake -S "$src/$project" -B "$work/build-$(basename "$project")" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$P" > "$work/configure.log" || { cat "$work/configure.log"; exit 1; }
  cmake --build "$work/build-$(basename "$project")" -j2 > "$work/build.log" || { cat "$work/build.log"; exit 1; }
done
cd "$work"
E="$work/build-examples"
model="$P/share/reasonseg/models/tiny-lisa-a"
dog="$P/share/reasonseg/examples/dog.png"
"$work/build-consumer/consumer"
"$E/segment"
test -s mask.png
"$E/c_api" "$model" "$dog" "What is the dog in this image? Please output segmentation mask." c_api_overlay.png
test -s c_api_overlay.png
printf 'Where is the dog?\nAnd its tail?\n/history\n/undo\nWhat about the grass?\n/quit\n' | "$E/chat" --out-dir "$work"
test -s chat_turn3.png
if [ -x "$E/camera_loop" ]; then
  mkdir frames
  for i in 000 001 002 003 004 005; do cp "$dog" "frames/frame_$i.png"; done
  "$E/camera_loop" --every 3 --max-frames 6 --out camera.png "frames/frame_%03d.png"
  test -s camera.png
fi

# pkg-config, from the moved tree.
if command -v pkg-config > /dev/null && pkg-config --exists opencv4; then
  PKG_CONFIG_PATH="$P/lib/pkgconfig" pkg-config --modversion reasonseg
  cc -std=c99 -o c_api_pc "$src/examples/c_api.c" $(PKG_CONFIG_PATH="$P/lib/pkgconfig" pkg-config --cflags --libs reasonseg)
  ./c_api_pc "$model" "$dog" "Where is the dog?" > /dev/null
fi
echo "test-install: the installed, moved package builds and runs the examples and the consumer project"
