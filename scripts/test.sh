#!/usr/bin/env bash
# Sets up what is missing, builds, and runs the whole test suite with ctest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${LRGD_BUILD_DIR:-$root/build}"
LRGD_LLAMA_TOOLS=1 bash "$root/scripts/build.sh" "$@"
cd "$build"
ctest --output-on-failure -j "$(nproc)" --timeout 900
