#!/usr/bin/env bash
# Builds the libFuzzer harnesses (tests/fuzz, clang + ASan + UBSan) and runs each for SECONDS
# (default 60) from the seed corpora in tests/fuzz/corpus (new inputs go to BUILD/corpus, the seeds
# stay as they are). Prints a table of executions, coverage and findings; a crash, a sanitizer
# report or a timeout fails the run (exit 1) and leaves the input in BUILD/crashes.
#   bash scripts/fuzz.sh [SECONDS] [HARNESS...]
# Environment: BUILD (build-fuzz), JOBS (build jobs, 2), RUNS (executions per harness instead of
# SECONDS), PARALLEL (harnesses at once, 1). The recorded run: RUNS=1000000 PARALLEL=2 (docs/security.md).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SECONDS_EACH=${1:-60}
shift || true
HARNESSES=${*:-"safetensors torch_bin checkpoint_index config tokenizer reasonseg_json image"}
BUILD=${BUILD:-build-fuzz}
command -v clang++ > /dev/null || { echo "fuzz: clang++ is needed (apt-get install clang)" >&2; exit 2; }
mkdir -p "$BUILD"
LAUNCHER=()
command -v ccache > /dev/null && LAUNCHER=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S tests/fuzz -B "$BUILD" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo "${LAUNCHER[@]}" > "$BUILD/configure.log" 2>&1 \
  || { cat "$BUILD/configure.log"; exit 1; }
cmake --build "$BUILD" -j "${JOBS:-2}" > "$BUILD/build.log" 2>&1 || { tail -30 "$BUILD/build.log"; exit 1; }
export REASONSEG_FUZZ_MODEL=$ROOT/models/tiny-lisa-a
# LibTorch and OpenCV keep allocations until exit on purpose: leak reports would be theirs.
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
mkdir -p "$BUILD/crashes"
# RUNS=N runs each harness for N executions instead of SECONDS; PARALLEL=N runs N harnesses at once.
fuzz_one() {
  local h=$1 log="$BUILD/fuzz_$1.log" rc=0 limit max_len=262144
  limit=-max_total_time="$SECONDS_EACH"
  [ -n "${RUNS:-}" ] && limit=-runs="$RUNS"
  case $h in tokenizer) max_len=1024 ;; config | reasonseg_json | checkpoint_index) max_len=8192 ;; esac
  mkdir -p "$BUILD/corpus/$h"
  "$BUILD/fuzz_$h" "$limit" -print_final_stats=1 -rss_limit_mb=4096 -timeout=30 -max_len=$max_len \
    -artifact_prefix="$BUILD/crashes/$h-" "$BUILD/corpus/$h" "tests/fuzz/corpus/$h" > "$log" 2>&1 || rc=$?
  local execs rate cov result=ok
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo 0)
  [ "$rc" = 0 ] || result="FOUND (exit $rc, see $log)"
  printf "%-18s %12s %10s %8s %s\n" "$h" "$execs" "$rate" "$cov" "$result" >> "$BUILD/fuzz-results.txt"
  return "$rc"
}
: > "$BUILD/fuzz-results.txt"
pids=()
for h in $HARNESSES; do
  fuzz_one "$h" &
  pids+=($!)
  while [ "$(jobs -rp | wc -l)" -ge "${PARALLEL:-1}" ]; do sleep 1; done
done
status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done
{ printf "%-18s %12s %10s %8s %s\n" harness executions exec/s cov result; sort "$BUILD/fuzz-results.txt"; } \
  | tee "$BUILD/fuzz-summary.txt"
exit $status
