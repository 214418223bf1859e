#!/usr/bin/env bash
# Trains the item-token model on Games training histories and evaluates it on 1000 users'
# test targets next to popularity, Markov and random (docs/train.md).
# Usage: scripts/train-games.sh [BUILD_DIR] [OUT_DIR]   (extra env: EPOCHS, THREADS, USERS)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$here/build}"
out="${2:-$here/runs/train-games}"
data="${LRGD_DATA:-$here/../shared/data/amazon18-games}"
mkdir -p "$out"
"$build/tools/lrgd/lrgd" model train --data "$data" --out "$out/games-items.gguf" \
  --epochs "${EPOCHS:-8}" --threads "${THREADS:-2}" --seed 42 | tee "$out/train.json"
"$build/tools/lrgd/lrgd" model eval-items --data "$data" --model "$out/games-items.gguf" \
  --users "${USERS:-1000}" --seed 42 --threads "${THREADS:-2}" | tee "$out/eval.json"
