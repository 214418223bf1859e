#!/usr/bin/env bash
# The README's main job: sets up what is missing, builds lrgd, then `lrgd demo` trains (or
# reuses a cached) item-token model on the Games data and prints the ZSL / ICL / LRGD
# comparison with the baselines. Extra arguments go to `lrgd demo` (see --help).
#   LRGD_DATA      dataset (default: ../shared/data/amazon18-games beside the checkout)
#   LRGD_DEMO_DIR  runs and report (default: lrgd-demo in the checkout)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${LRGD_BUILD_DIR:-$root/build}"
data="${LRGD_DATA:-$root/../shared/data/amazon18-games}"
[ -e "$data" ] || { echo "[demo] no dataset at $data (set LRGD_DATA)" >&2; exit 1; }
LRGD_BUILD_TARGETS="${LRGD_BUILD_TARGETS:-lrgd}" bash "$root/scripts/build.sh"
exec "$build/tools/lrgd/lrgd" demo --data "$data" --workdir "${LRGD_DEMO_DIR:-$root/lrgd-demo}" "$@"
