#!/usr/bin/env bash
# Finds a libtorch to build the shim against, in this order:
#   1. $LIBTORCH (a libtorch distribution: $LIBTORCH/include, $LIBTORCH/lib)
#   2. a Python `torch` install with its C++ headers and libraries (scripts/lib/python-torch.sh),
#      unless BLOCKLLM_NO_PYTHON_TORCH=1
#   3. Debian's libtorch-dev (/usr/include/torch, /usr/lib/<multiarch>/libtorch.so)
# Prints what it found on stderr and KEY=VALUE lines for make on stdout:
#   TORCH_ROOT TORCH_INCLUDES TORCH_LIBDIR TORCH_VERSION TORCH_CUDA TORCH_ABI TORCH_CXXSTD TORCH_SOURCE TORCH_STAMP
# Supported libtorch versions: 1.13 to 2.x. BLOCKLLM_SKIP_TORCH_VERSION_CHECK=1 bypasses the check.
set -euo pipefail

say() { echo "find-libtorch: $*" >&2; }
fail() { echo "find-libtorch: error: $*" >&2; exit 1; }
. "$(dirname "$0")/lib/python-torch.sh"

root="" incs="" libdir="" abi="" source=""

if [ -n "${LIBTORCH:-}" ]; then
  [ -d "$LIBTORCH/include" ] && [ -d "$LIBTORCH/lib" ] ||
    fail "LIBTORCH=$LIBTORCH has no include/ and lib/ directories; point it at an unpacked libtorch (the folder holding include/ and lib/)"
  root="$LIBTORCH"; incs="$LIBTORCH/include $LIBTORCH/include/torch/csrc/api/include"; libdir="$LIBTORCH/lib"
  source="LIBTORCH"
elif py=$(python_torch); then
  root=$(echo "$py" | sed -n 1p); abi=$(echo "$py" | sed -n 3p)
  incs="$root/include $root/include/torch/csrc/api/include"; libdir="$root/lib"
  source="python torch"
elif [ -f /usr/include/torch/csrc/api/include/torch/version.h ]; then
  arch=$(gcc -print-multiarch 2>/dev/null || dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
  root=/usr; incs="/usr/include /usr/include/torch/csrc/api/include"; libdir="/usr/lib/$arch"
  [ -e "$libdir/libtorch.so" ] || fail "Debian headers found but $libdir/libtorch.so is missing: apt-get install libtorch-dev"
  source="debian libtorch-dev"
else
  fail "no libtorch found. Fix one of: run 'make deps' as root on Debian/Ubuntu (installs libtorch-dev), set LIBTORCH=/path/to/libtorch (unpacked C++ distribution), or install a Python torch (pip install torch)"
fi

# torch/version.h holds the version up to 2.9; from 2.10 it includes torch/headeronly/version.h.
vh=""
for d in $incs; do
  for f in "$d/torch/version.h" "$d/torch/headeronly/version.h"; do
    [ -z "$vh" ] && [ -f "$f" ] && grep -q '^#define TORCH_VERSION_MAJOR' "$f" && vh="$f"
  done
done
[ -n "$vh" ] || fail "no torch/version.h (or torch/headeronly/version.h) defining TORCH_VERSION_MAJOR under: $incs"
major=$(sed -n 's/^#define TORCH_VERSION_MAJOR \([0-9]*\).*/\1/p' "$vh")
minor=$(sed -n 's/^#define TORCH_VERSION_MINOR \([0-9]*\).*/\1/p' "$vh")
patch=$(sed -n 's/^#define TORCH_VERSION_PATCH \([0-9]*\).*/\1/p' "$vh")
version="$major.$minor.$patch"
if [ "${BLOCKLLM_SKIP_TORCH_VERSION_CHECK:-0}" != 1 ]; then
  if ! { [ "$major" = 1 ] && [ "$minor" -ge 13 ]; } && [ "$major" != 2 ]; then
    fail "libtorch $version is outside the supported range 1.13 to 2.x (set BLOCKLLM_SKIP_TORCH_VERSION_CHECK=1 to try anyway)"
  fi
fi

cuda=0
[ -e "$libdir/libtorch_cuda.so" ] && cuda=1
# The shim's CUDA parts include c10/cuda headers, which include the CUDA runtime's
# cuda_runtime_api.h: a pip torch does not ship it. Look in $CUDA_HOME, next to nvcc,
# /usr/local/cuda, and the nvidia-* pip packages beside torch.
if [ "$cuda" = 1 ]; then
  have=""
  for d in $incs; do [ -f "$d/cuda_runtime_api.h" ] && have=$d; done
  if [ -z "$have" ]; then
    cands=()
    [ -n "${CUDA_HOME:-}" ] && cands+=("$CUDA_HOME/include")
    [ -n "${CUDA_PATH:-}" ] && cands+=("$CUDA_PATH/include")
    nvcc=$(command -v nvcc 2>/dev/null || true)
    [ -n "$nvcc" ] && cands+=("$(dirname "$(dirname "$(readlink -f "$nvcc")")")/include")
    cands+=(/usr/local/cuda/include /usr/include)
    [ -d "$root/../nvidia" ] && while IFS= read -r f; do cands+=("$(dirname "$f")"); done < \
      <(find -L "$root/../nvidia" -maxdepth 4 -name cuda_runtime_api.h 2>/dev/null | sort)
    for d in "${cands[@]}"; do
      if [ -f "$d/cuda_runtime_api.h" ]; then have=$d; break; fi
    done
    [ -n "$have" ] || fail "libtorch at $root has CUDA but no cuda_runtime_api.h was found (tried: ${cands[*]}); set CUDA_HOME to a CUDA toolkit"
    incs="$incs $have"
    say "CUDA runtime headers from $have"
  fi
fi
if [ -z "$abi" ]; then
  abi=0
  n=$(nm -D --defined-only "$libdir/libc10.so" 2>/dev/null | grep -c '__cxx11' || true)
  [ "${n:-0}" -gt 0 ] && abi=1
fi
# libtorch's headers require C++20 from 2.14 (they accept it from 2.13); C++17 before.
cxxstd=c++17
if [ "$major" -gt 2 ] || { [ "$major" = 2 ] && [ "$minor" -ge 13 ]; }; then cxxstd=c++20; fi
stamp="$version:$(stat -c %Y "$libdir/libtorch_cpu.so" 2>/dev/null || echo 0)"

say "libtorch $version from $source at $root (lib $libdir), CUDA=$cuda, C++11 ABI=$abi"
echo "TORCH_ROOT=$root"
echo "TORCH_INCLUDES=$incs"
echo "TORCH_LIBDIR=$libdir"
echo "TORCH_VERSION=$version"
echo "TORCH_CUDA=$cuda"
echo "TORCH_ABI=$abi"
echo "TORCH_CXXSTD=$cxxstd"
echo "TORCH_SOURCE=$source"
echo "TORCH_STAMP=$stamp"
