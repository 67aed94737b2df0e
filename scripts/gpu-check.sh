#!/usr/bin/env bash
# The one-call GPU check. On the GPU machine (python3 with torch 2.x + CUDA, nvcc, CMake; no
# OpenCV, SentencePiece, json or Catch2), with third_party/gpu made by scripts/gpu-payload.sh:
#   run(command='bash scripts/gpu-check.sh', carry=['third_party/gpu'], timeout_s=600)
# It builds reasonseg against the machine's own LibTorch (no imgcodecs: images come pre-decoded),
# then runs, each step logged to $OUT/<step>.log and timed:
#   parity  every fixture case, fp32 on CUDA with TF32 off, within the fixtures' tolerances
#   bf16    the bf16 table on CUDA (ids agreement, mask IoU vs fp32)
#   cuda    the CUDA-only paths (SAM attention through SDPA, the graph-captured decode step)
#   bench   reasonseg bench --random-weights lisa-7b --device cuda --dtype bf16, with the
#           device-to-device copy bandwidth measured in the same run
# and writes $OUT/gpu-check.json and $OUT/gpu-check.txt (a short table, also printed last).
# A failed step is recorded and the next one still runs. Environment: OUT, PYTHON (python3),
# JOBS (all cores), REASONSEG_USE_CCACHE (OFF), BENCH_RUNS (5).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${OUT:-/tmp/reasonseg-gpu-check}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
SYS=$ROOT/third_party/gpu/sysroot/usr
if [ ! -d "$SYS" ] && [ -f third_party/gpu/sysroot.tar.xz ]; then
  tar -C third_party/gpu -xJf third_party/gpu/sysroot.tar.xz
fi
if [ ! -d "$SYS" ]; then
  echo "gpu-check: $SYS is missing: run scripts/gpu-payload.sh on the CPU machine and carry third_party/gpu" >&2
  exit 2
fi
export LD_LIBRARY_PATH=$SYS/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
# The GPU build reads no PNG: put the pre-decoded copies beside the files the tests name.
(cd third_party/gpu/decoded && find . -name '*.ppm' -exec cp --parents {} "$ROOT" \;)

STEPS=$OUT/steps.tsv
: > "$STEPS"
step() {  # step NAME COMMAND...: runs it, logs to $OUT/NAME.log, records rc and seconds
  local name=$1 t0 rc
  shift
  echo "== $name: $*"
  t0=$(date +%s.%N)
  "$@" > "$OUT/$name.log" 2>&1
  rc=$?
  printf '%s\t%s\t%s\n' "$name" "$rc" "$(echo "$(date +%s.%N) $t0" | awk '{printf "%.1f", $1 - $2}')" >> "$STEPS"
  tail -n 4 "$OUT/$name.log"
  return 0
}

step env bash -c "nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; nproc; \
  $PY -c 'import torch;print(\"torch\", torch.__version__, \"cuda\", torch.version.cuda, \"available\", torch.cuda.is_available())'"
TORCH_PREFIX=$($PY -W ignore -c 'import torch;print(torch.utils.cmake_prefix_path)')
GEN=()
command -v ninja >/dev/null && GEN=(-G Ninja)
export TORCH_CUDA_ARCH_LIST=9.0  # Hopper (H100/H200); LibTorch ignores CMAKE_CUDA_ARCHITECTURES
step configure cmake -S . -B build-gpu "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release -DREASONSEG_WITH_IMGCODECS=OFF \
  -DREASONSEG_USE_CCACHE="${REASONSEG_USE_CCACHE:-OFF}" \
  -DCMAKE_PREFIX_PATH="$TORCH_PREFIX;$SYS"
step build cmake --build build-gpu -j "${JOBS:-$(nproc)}"
T=build-gpu/tests/reasonseg_tests
export REASONSEG_TEST_DEVICE=cuda
step parity "$T" "[parity]"
step bf16 "$T" "[bf16]"
step cuda "$T" "[cuda]"
step bench build-gpu/reasonseg bench --random-weights lisa-7b --device cuda --dtype bf16 --runs "${BENCH_RUNS:-5}" \
  --warmup 2 --new-tokens 16 --json "$OUT/bench-lisa7b-bf16.json"

"$PY" - "$OUT" <<'PY'
import json, os, re, sys
out = sys.argv[1]
steps = {}
for line in open(os.path.join(out, "steps.tsv")):
    name, rc, sec = line.rstrip("\n").split("\t")
    steps[name] = {"rc": int(rc), "seconds": float(sec)}
def log(name):
    p = os.path.join(out, name + ".log")
    return open(p, errors="replace").read() if os.path.exists(p) else ""
for name in ("parity", "bf16", "cuda"):
    m = re.search(r"test cases?: *(\d+)(?: *\| *(\d+) passed)?(?: *\| *(\d+) failed)?", log(name))
    if m:
        steps[name]["catch2"] = m.group(0)
    if name in steps and "All tests passed" in log(name):
        steps[name]["catch2"] = re.search(r"All tests passed.*", log(name)).group(0)
table_rows = [l for l in log("bf16").splitlines() if re.match(r"^(case +ids|[gt]\d+_\S+ +(same|differ))", l)]
result = {"steps": steps, "env": log("env").strip().splitlines(), "bf16_table": table_rows}
bp = os.path.join(out, "bench-lisa7b-bf16.json")
if os.path.exists(bp):
    result["bench"] = json.load(open(bp))
json.dump(result, open(os.path.join(out, "gpu-check.json"), "w"), indent=1)
lines = ["step       rc  seconds  result"]
for name, s in steps.items():
    lines.append(f"{name:10} {s['rc']:>2} {s['seconds']:>8.1f}  {s.get('catch2', '')}")
if table_rows:
    lines += ["", "bf16 on CUDA vs fp32:"] + table_rows
b = result.get("bench")
if b:
    st, fu = b["stages_ms"], b["followup_stages_ms"]
    lines += ["", f"lisa-7b bf16 ({b['device']}): first query {b['first_query_ms']:.1f} ms, follow-up {b['followup_query_ms']:.1f} ms",
              "stage ms: " + ", ".join(f"{k} {st.get(k, 0):.1f}/{fu.get(k, 0):.1f}" for k in
                                      ("clip", "sam_encoder", "prefill", "decode", "mask_decoder", "postprocess")),
              f"decode {b['decode_ms_per_token']:.2f} ms/token, {b['decode_bandwidth_gbs']:.0f} GB/s = "
              f"{100 * b['decode_bandwidth_fraction']:.0f}% of the measured copy bandwidth {b['measured_bandwidth_gbs']:.0f} GB/s"]
open(os.path.join(out, "gpu-check.txt"), "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
