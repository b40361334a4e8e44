#!/usr/bin/env bash
# Builds and runs seqnr_repro.cpp against the libtorch that `make shim` found
# (build/libtorch.env, written by scripts/find-libtorch.sh). Exit status 0: the
# reproduction showed the thread-dependent gradient order. Usage: scripts/determinism/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
env=build/libtorch.env
[ -f "$env" ] || { echo "run.sh: $env is missing: run \`make shim\` first" >&2; exit 2; }
while IFS='=' read -r k v; do
  case $k in TORCH_*) printf -v "$k" '%s' "$v" ;; esac
done < "$env"
incs=()
for d in $TORCH_INCLUDES; do incs+=(-I"$d"); done
out=build/determinism
mkdir -p "$out"
"${CXX:-g++}" -O2 -std="$TORCH_CXXSTD" -D_GLIBCXX_USE_CXX11_ABI="$TORCH_ABI" "${incs[@]}" -pthread \
  scripts/determinism/seqnr_repro.cpp -o "$out/seqnr_repro" -L"$TORCH_LIBDIR" \
  -Wl,--no-as-needed -ltorch -ltorch_cpu -lc10 -Wl,--as-needed -Wl,-rpath,"$TORCH_LIBDIR"
"$out/seqnr_repro"
