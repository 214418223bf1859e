#!/usr/bin/env bash
# Installs what lrgd needs and builds llama.cpp into a cache outside the checkout.
# Idempotent: every step checks first and says what it does. Offline except apt and npm.
#   LRGD_CACHE   cache root (default ~/.cache/lrgd)
#   LRGD_SKIP_APT=1  do not call apt-get (packages already there)
# Prints the llama.cpp install prefix on the last line as: LLAMA_PREFIX=<dir>
set -euo pipefail

NODE_LLAMA_CPP_VERSION=3.21.1
# sha512 of node-llama-cpp-3.21.1.tgz as published by the npm registry (dist.integrity).
NODE_LLAMA_CPP_INTEGRITY='sha512-E3N0Ev2Va0wzydvXYFwM9Hvyo07PoWjt8T/9GMc43Cvt8YkV/NU/tYUgEMC1grTPv2o9PRjQi0G3Wb5P/awiMg=='

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
cache="${LRGD_CACHE:-$HOME/.cache/lrgd}"
jobs="${LRGD_JOBS:-$(nproc)}"
say() { printf '[setup] %s\n' "$*" >&2; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

APT_PACKAGES=(build-essential cmake git pkg-config openssl libssl-dev
  nlohmann-json3-dev libcli11-dev libsqlite3-dev libfmt-dev zlib1g-dev
  libcpp-httplib-dev libzip-dev libutf8proc-dev libopenblas-openmp-dev libgtest-dev libgmock-dev libbenchmark-dev gnuplot-nox clang-format)
# scripts/fuzz.sh (LRGD_FUZZ=1): clang with libFuzzer, and the OpenMP that ggml's CMake
# package asks the compiler for.
[ "${LRGD_FUZZ:-0}" = 1 ] && APT_PACKAGES+=(clang-14 libclang-rt-14-dev libomp-14-dev)

install_apt() {
  [ "${LRGD_SKIP_APT:-0}" = 1 ] && { say "LRGD_SKIP_APT=1: not checking Debian packages"; return; }
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
  done
  # npm may come from a Node.js install outside Debian: only ask apt for it when absent.
  command -v npm >/dev/null 2>&1 || missing+=(npm)
  # pip fetches the real models' package files (`lrgd model pull`); any python3 with pip will do.
  python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
  if [ ${#missing[@]} -eq 0 ]; then say "Debian packages: all ${#APT_PACKAGES[@]} present"; return; fi
  say "Debian packages missing: ${missing[*]}"
  local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# CMake options of the llama.cpp build; changing them (or a patch) changes the cache key.
# The library build (what lrgd links). The tools (llama-server for the OpenAI-backend
# tests, llama-bench for bench/) are built on request in the same tree: see build_tools.
LLAMA_CMAKE_FLAGS=(-DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF
  -DGGML_NATIVE=ON -DGGML_OPENMP=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF
  -DLLAMA_OPENSSL=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DCMAKE_POSITION_INDEPENDENT_CODE=ON
  -DGGML_BLAS=ON -DGGML_BLAS_VENDOR=OpenBLAS)
# ggml's BLAS backend (Debian's OpenBLAS, the OpenMP build: it shares ggml's OpenMP threads
# instead of spinning its own) runs training's matrix products as GEMMs
# (docs/train.md); lrgd's inference contexts leave it out and keep ggml's own kernels.
# Intel AMX: with GGML_NATIVE=ON on a CPU that has AMX, ggml compiles its AMX buffer type in
# and puts every quantised weight there, and its mul_mat segfaults (upstream llama.cpp issue
# 20824). Turning the AMX ISA off at compile time keeps that code out of the binary on every
# CPU (an explicit -mno-* wins over -march=native in GCC and Clang whatever the order); on a
# CPU without AMX the flags change nothing. The flags are part of the cache key below.
if [ "$(uname -m)" = x86_64 ]; then
  LLAMA_NO_AMX='-mno-amx-tile -mno-amx-int8 -mno-amx-bf16'
  LLAMA_CMAKE_FLAGS+=("-DCMAKE_C_FLAGS=$LLAMA_NO_AMX" "-DCMAKE_CXX_FLAGS=$LLAMA_NO_AMX")
fi
LLAMA_LIB_ONLY=(-DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_COMMON=OFF -DLLAMA_BUILD_APP=OFF)
LLAMA_WITH_TOOLS=(-DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_COMMON=ON)

build_key() {
  local cpu opts
  cpu=$(grep -m1 '^flags' /proc/cpuinfo | sha256sum | cut -c1-8)
  # The library's objects depend on these flags, not on whether the tools are built; the
  # order is the one of the first cache layout, so existing caches stay valid.
  opts=$( { printf '%s\n' "${LLAMA_CMAKE_FLAGS[@]:0:6}" "${LLAMA_WITH_TOOLS[@]}" "${LLAMA_CMAKE_FLAGS[@]:6}"; cat "$root"/third_party/patches/*.patch 2>/dev/null || true; } | sha256sum | cut -c1-8)
  echo "llama-ncpp${NODE_LLAMA_CPP_VERSION}-${cpu}-${opts}"
}

fetch_source() {
  local src="$1" dl="$cache/download"
  if [ -f "$src/.lrgd-source-ok" ]; then say "llama.cpp source: cached at $src"; return; fi
  mkdir -p "$dl"; rm -rf "$src"
  local tgz="$dl/node-llama-cpp-${NODE_LLAMA_CPP_VERSION}.tgz"
  if [ ! -f "$tgz" ]; then
    say "npm pack node-llama-cpp@${NODE_LLAMA_CPP_VERSION}"
    (cd "$dl" && npm pack --silent "node-llama-cpp@${NODE_LLAMA_CPP_VERSION}" >/dev/null)
  fi
  local got="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
  if [ "$got" != "$NODE_LLAMA_CPP_INTEGRITY" ]; then
    rm -f "$tgz"
    die "integrity mismatch for $tgz: expected $NODE_LLAMA_CPP_INTEGRITY, got $got (file removed)"
  fi
  say "tarball integrity ok ($NODE_LLAMA_CPP_INTEGRITY)"
  local tmp; tmp=$(mktemp -d)
  tar -xzf "$tgz" -C "$tmp" package/llama/gitRelease.bundle
  git -c advice.detachedHead=false clone -q "$tmp/package/llama/gitRelease.bundle" "$src"
  rm -rf "$tmp"
  for p in "$root"/third_party/patches/*.patch; do
    [ -f "$p" ] || continue
    say "applying $(basename "$p")"
    git -C "$src" apply "$p"
  done
  touch "$src/.lrgd-source-ok"
}

build_llama() {
  local key dir
  key=$(build_key); dir="$cache/$key"
  local src="$dir/src" bld="$dir/build" inst="$dir/install"
  if [ -f "$inst/.lrgd-install-ok" ] && [ -f "$inst/lib/cmake/llama/llama-config.cmake" ]; then
    say "llama.cpp library: cached at $inst"
    echo "$inst"; return
  fi
  say "llama.cpp library: not cached (or broken), building into $dir (about 5 min on 2 cores)"
  mkdir -p "$dir"
  fetch_source "$src"
  rm -rf "$inst"
  cmake -S "$src" -B "$bld" "${LLAMA_CMAKE_FLAGS[@]}" "${LLAMA_LIB_ONLY[@]}" -DCMAKE_INSTALL_PREFIX="$inst" \
    >"$dir/configure.log" 2>&1 \
    || { tail -30 "$dir/configure.log" >&2; die "llama.cpp configure failed (log: $dir/configure.log)"; }
  cmake --build "$bld" -j "$jobs" >"$dir/build.log" 2>&1 \
    || { tail -30 "$dir/build.log" >&2; die "llama.cpp build failed (log: $dir/build.log)"; }
  cmake --install "$bld" >"$dir/install.log" 2>&1 \
    || { tail -30 "$dir/install.log" >&2; die "llama.cpp install failed (log: $dir/install.log)"; }
  mkdir -p "$inst/bin" "$inst/share/lrgd"
  cp "$src"/models/ggml-vocab-*.gguf "$inst/share/lrgd/" 2>/dev/null || true
  [ -f "$inst/lib/cmake/llama/llama-config.cmake" ] || die "llama.cpp install incomplete: no llama-config.cmake in $inst"
  touch "$inst/.lrgd-install-ok"
  say "llama.cpp library built and installed at $inst"
  echo "$inst"
}

# llama-server and llama-bench, built in the library's tree (the library objects are reused).
build_tools() {
  local inst="$1" dir; dir="$(dirname "$1")"
  local src="$dir/src" bld="$dir/build"
  if [ -x "$inst/bin/llama-server" ] && [ -x "$inst/bin/llama-bench" ]; then
    say "llama.cpp tools: cached in $inst/bin"; return
  fi
  say "llama.cpp tools: building llama-server and llama-bench (a few minutes on 2 cores)"
  fetch_source "$src"
  cmake -S "$src" -B "$bld" "${LLAMA_CMAKE_FLAGS[@]}" "${LLAMA_WITH_TOOLS[@]}" -DCMAKE_INSTALL_PREFIX="$inst" \
    >"$dir/configure-tools.log" 2>&1 \
    || { tail -30 "$dir/configure-tools.log" >&2; die "llama.cpp tools configure failed (log: $dir/configure-tools.log)"; }
  cmake --build "$bld" -j "$jobs" --target llama-server llama-bench >"$dir/build-tools.log" 2>&1 \
    || { tail -30 "$dir/build-tools.log" >&2; die "llama.cpp tools build failed (log: $dir/build-tools.log)"; }
  mkdir -p "$inst/bin"
  cp "$bld/bin/llama-server" "$bld/bin/llama-bench" "$inst/bin/"
  say "llama.cpp tools installed in $inst/bin"
}

install_apt
prefix=$(build_llama)
if [ "${1:-}" = "--tools" ] || [ "${LRGD_LLAMA_TOOLS:-0}" = 1 ]; then build_tools "$prefix"; fi
ln -sfn "$prefix" "$cache/current"
echo "LLAMA_PREFIX=$prefix"
