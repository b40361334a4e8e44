#!/usr/bin/env bash
# Compiles cgo/csrc/shim.cpp and dist.cpp (c10d) into OUT against the libtorch that ENV describes (the
# KEY=VALUE lines scripts/find-libtorch.sh prints). The one compile line for `make shim`
# and scripts/gpu-check.sh. With a CUDA libtorch the shim gets -DBT_CUDA and links
# torch_cuda/c10_cuda (--no-as-needed keeps the CUDA kernels registered).
#   scripts/build-shim.sh ENV OUT        (CXX overrides g++)
set -euo pipefail
[ $# = 2 ] || { echo "usage: scripts/build-shim.sh ENV OUT" >&2; exit 2; }
cd "$(dirname "$0")/.."
while IFS='=' read -r k v; do
  case $k in TORCH_*) printf -v "$k" '%s' "$v" ;; esac
done < "$1"
incs=()
for d in $TORCH_INCLUDES; do incs+=(-I"$d"); done
libs=(-ltorch -ltorch_cpu -lc10)
defs=()
if [ "$TORCH_CUDA" = 1 ]; then libs+=(-ltorch_cuda -lc10_cuda); defs=(-DBT_CUDA); fi
cmd=("${CXX:-g++}" -O2 -std="$TORCH_CXXSTD" -shared -fPIC -D_GLIBCXX_USE_CXX11_ABI="$TORCH_ABI" "${defs[@]}"
  "${incs[@]}" cgo/csrc/shim.cpp cgo/csrc/dist.cpp -o "$2" -L"$TORCH_LIBDIR" -Wl,--no-as-needed "${libs[@]}" -Wl,--as-needed
  -Wl,-rpath,"$TORCH_LIBDIR")
echo "shim: building $2 against libtorch $TORCH_VERSION ($TORCH_SOURCE)"
echo "${cmd[*]}"
"${cmd[@]}"
