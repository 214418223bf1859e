#!/usr/bin/env bash
# Sets up what is missing, builds, and runs the whole test suite with ctest; then the fast
# tier and the tiny-model command-line suites again built with ASan + UBSan (build-asan/),
# and every fuzz target for a bounded time (scripts/fuzz.sh, build-fuzz/).
#   LRGD_TEST_SANITIZE=0  skip the sanitizer run      LRGD_TEST_FUZZ=0  skip fuzzing
#   LRGD_FUZZ_SECONDS     seconds per fuzz target (default 20)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${LRGD_BUILD_DIR:-$root/build}"
LRGD_LLAMA_TOOLS=1 bash "$root/scripts/build.sh" "$@"
rc=0
(cd "$build" && ctest --output-on-failure -j "$(nproc)" --timeout 900) || rc=1

# Under the sanitizers: the fast tier (label `fast`: no model, no server) and the command-line
# suites that run lrgd on a tiny model (eval.model, optim.model: resume, storage faults, LRGD).
sanitizer_tier=(-L "fast|eval\.model|optim\.model")
if [ "${LRGD_TEST_SANITIZE:-1}" = 1 ]; then
  echo "[test] the fast tier under ASan + UBSan (build-asan)" >&2
  LRGD_BUILD_DIR="$root/build-asan" bash "$root/scripts/build.sh" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DLRGD_SANITIZE=ON -DLRGD_BUILD_BENCH=OFF
  (cd "$root/build-asan" && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --output-on-failure -j "$(nproc)" --timeout 900 "${sanitizer_tier[@]}") || rc=1
fi
if [ "${LRGD_TEST_FUZZ:-1}" = 1 ]; then
  echo "[test] fuzz targets, ${LRGD_FUZZ_SECONDS:-20} s each (build-fuzz)" >&2
  bash "$root/scripts/fuzz.sh" || rc=1
fi
exit "$rc"
