#!/usr/bin/env bash
# Sets up what is missing, builds, and runs the main job on the embedded default.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${LRGD_BUILD_DIR:-$root/build}"
bash "$root/scripts/build.sh"
"$build/tools/lrgd/lrgd" demo --workdir "${LRGD_DEMO_DIR:-$root/lrgd-demo}" "$@"
