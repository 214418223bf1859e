#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ with clang (ASan + UBSan) and runs each for a
# bounded time, seeded from tests/fixtures; a crash leaves its input in $out/<target>/
# and fails the script.   LRGD_FUZZ_SECONDS  seconds per target (default 20)
#                         LRGD_FUZZ_DIR      build folder (default build-fuzz)
#                         LRGD_FUZZ_SEED     libFuzzer seed (default 1, so a CI failure reproduces;
#                                            0 draws a fresh one, for exploratory runs)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${LRGD_FUZZ_DIR:-$root/build-fuzz}"
seconds="${LRGD_FUZZ_SECONDS:-20}"
fuzz_seed="${LRGD_FUZZ_SEED:-1}"
prefix_line=$(LRGD_FUZZ=1 bash "$root/scripts/setup.sh" | tail -n 1)
prefix="${prefix_line#LLAMA_PREFIX=}"
cxx=$(command -v clang++-14 || command -v clang++ || true)
cc=$(command -v clang-14 || command -v clang || true)
[ -n "$cxx" ] || { echo "[fuzz] clang is missing (LRGD_FUZZ=1 scripts/setup.sh installs clang-14)" >&2; exit 1; }
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx" \
  -DCMAKE_PREFIX_PATH="$prefix" -DLRGD_FUZZ=ON -DLRGD_WERROR=OFF -DLRGD_BUILD_TESTS=OFF -DLRGD_BUILD_BENCH=OFF \
  >"$build.configure.log" 2>&1 || { cat "$build.configure.log" >&2; exit 1; }
cmake --build "$build" -j "$(nproc)" --target fuzz_all >"$build.build.log" 2>&1 || { tail -40 "$build.build.log" >&2; exit 1; }
out="$build/runs"
rm -rf "$out"
mkdir -p "$out"
fixtures="$root/tests/fixtures"
seed() {  # seed <target> <files...>: a fresh corpus folder with copies of the seeds
  local target="$1"; shift
  mkdir -p "$out/$target/corpus"
  for f in "$@"; do [ -f "$f" ] && cp "$f" "$out/$target/corpus/" || true; done
}
seed fuzz_answer "$fixtures"/parse/*.txt
seed fuzz_load_lcrec_inter "$fixtures"/data/lcrec/*.inter.json "$fixtures"/data/bad_lcrec*/*.inter.json
seed fuzz_load_lcrec_item "$fixtures"/data/lcrec/*.item.json "$fixtures"/data/bad_lcrec/*.item.json
seed fuzz_load_csv "$fixtures"/data/csv/interactions.csv "$fixtures"/data/bad_csv/interactions.csv
seed fuzz_load_recbole "$fixtures"/data/recbole/*.inter "$fixtures"/data/bad_recbole/*.inter
seed fuzz_load_amazon "$fixtures"/data/raw/Tiny.json "$fixtures"/data/bad_raw/Bad.json
seed fuzz_load_amazon_meta "$fixtures"/data/raw/meta_Tiny.json "$fixtures"/data/bad_raw/meta_Bad.json
seed fuzz_results "$root"/fuzz/seeds/results.jsonl
seed fuzz_split "$root"/fuzz/seeds/split.jsonl
seed fuzz_candidates "$root"/fuzz/seeds/candidates.tsv "$root"/fuzz/seeds/candidates-more.json "$root"/fuzz/seeds/candidates-overflow.json "$root"/fuzz/seeds/users.json
seed fuzz_template "$root"/prompts/*.txt "$fixtures"/prompt/*.txt
# A minimal GGUF v3 header with lrgd's item-model keys, written here (no model file is kept
# in the repository).
python3 - "$out/item-model-meta.bin" <<'PY'
import struct, sys
def s(x): b = x.encode(); return struct.pack('<Q', len(b)) + b
d = b'GGUF' + struct.pack('<IQQ', 3, 0, 2)
d += s('lrgd.item_model.layout') + struct.pack('<II', 4, 1)
d += s('lrgd.item_model.dataset') + struct.pack('<I', 8) + s('Games')
open(sys.argv[1], 'wb').write(d)
PY
seed fuzz_gguf_meta "$out/item-model-meta.bin"
failed=0
printf '%-24s %10s %8s %s\n' target runs "exec/s" result
for t in fuzz_answer fuzz_load_lcrec_inter fuzz_load_lcrec_item fuzz_load_csv fuzz_load_recbole fuzz_load_amazon \
         fuzz_load_amazon_meta fuzz_results fuzz_split fuzz_candidates fuzz_template fuzz_gguf_meta; do
  mkdir -p "$out/$t/corpus"
  log="$out/$t/log.txt"
  if (cd "$out/$t" && "$build/fuzz/$t" corpus -max_total_time="$seconds" -seed="$fuzz_seed" -max_len=65536 -rss_limit_mb=2048 \
        -print_final_stats=1 >"$log" 2>&1); then result=ok; else result="CRASH (input in $out/$t/)"; failed=1; fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  rate=$(( runs / (seconds > 0 ? seconds : 1) ))
  printf '%-24s %10s %8s %s\n' "$t" "$runs" "$rate" "$result"
  if [ "$result" != ok ]; then  # what a CI log needs to reproduce it: the error, lrgd's frames, the input
    grep -E 'ERROR:|runtime error|SUMMARY|what\(\)|/(src|tools|fuzz)/|^Base64:' "$log" | grep -v '/usr/' | head -20 | sed 's/^/    /' >&2
  fi
done
exit "$failed"
