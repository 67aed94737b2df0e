#!/usr/bin/env bash
# Builds reasonseg and its tests with AddressSanitizer + UndefinedBehaviorSanitizer
# (-DREASONSEG_SANITIZE=address,undefined) and runs the whole test suite under them; any sanitizer
# report fails the test it occurs in. The recorded run is in docs/security.md.
#   bash scripts/sanitize.sh [ctest arguments...]
# Environment: BUILD (build-asan), JOBS (build jobs, 2), CMAKE_ARGS (more configure arguments, e.g.
# -DCMAKE_PREFIX_PATH=... for another LibTorch).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-asan}
# Leak detection stays on and nothing is suppressed: the recorded run had no report to suppress.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
start=$(date +%s)
# shellcheck disable=SC2086
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DREASONSEG_SANITIZE=address,undefined ${CMAKE_ARGS:-}
cmake --build "$BUILD" -j "${JOBS:-2}"
built=$(date +%s)
echo "sanitize: built in $((built - start)) s"
(cd "$BUILD" && ctest --output-on-failure --timeout 3000 "$@")
echo "sanitize: the test suite passed under ASan + UBSan in $(($(date +%s) - built)) s"
