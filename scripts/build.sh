#!/usr/bin/env bash
# Sets up what is missing (scripts/setup.sh), then configures and builds lrgd.
#   LRGD_BUILD_DIR      build folder (default: build)   extra args go to cmake configure
#   LRGD_BUILD_TARGETS  targets to build (default: all; the demo builds only lrgd)
#   LRGD_LLAMA_TOOLS=1  also build llama-server and llama-bench (tests, bench/)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${LRGD_BUILD_DIR:-$root/build}"
prefix_line=$(bash "$root/scripts/setup.sh" | tail -n 1)
prefix="${prefix_line#LLAMA_PREFIX=}"
[ -d "$prefix" ] || { echo "[build] setup did not report a llama.cpp prefix" >&2; exit 1; }
echo "[build] configuring $build (llama.cpp from $prefix)" >&2
# CMake caches where it found llama.cpp (llama_DIR, llama_LIBRARY, ...): a build folder
# configured against another llama.cpp build (another cache key) would keep linking that one,
# so its cache is dropped (the objects stay; a reconfigure takes seconds).
if [ -f "$build/CMakeCache.txt" ] && [ "$(cat "$build/.lrgd-llama-prefix" 2>/dev/null)" != "$prefix" ]; then
  echo "[build] llama.cpp changed: reconfiguring $build from scratch" >&2
  rm -f "$build/CMakeCache.txt"
fi
mkdir -p "$build" && echo "$prefix" >"$build/.lrgd-llama-prefix"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" "$@" >"$build.configure.log" 2>&1 \
  || { cat "$build.configure.log" >&2; exit 1; }
targets=()
for t in ${LRGD_BUILD_TARGETS:-}; do targets+=(--target "$t"); done
echo "[build] building ${LRGD_BUILD_TARGETS:-all targets}" >&2
cmake --build "$build" -j "$(nproc)" "${targets[@]}" 2>&1 | grep -E "(error|warning):|\*\*\* " >&2 || true
cmake --build "$build" -j "$(nproc)" "${targets[@]}" >/dev/null 2>&1 \
  || { cmake --build "$build" -j1 "${targets[@]}" 2>&1 | tail -40 >&2; exit 1; }
echo "[build] done: $build/tools/lrgd/lrgd" >&2
