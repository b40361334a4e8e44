#!/usr/bin/env bash
# Installs what blockllm-go needs to build and test on Debian/Ubuntu, then reports the
# libtorch it will use. Needs root for apt-get; without root it prints the command to run.
#   libtorch-dev          libtorch 1.13 (CPU) headers and libraries, unless $LIBTORCH or a
#                         Python torch is used instead
#   libopenblas0-pthread  a fast BLAS behind Debian's libtorch (the generic libblas is ~30x slower)
#   g++ make              to build the shim
#   libsvm-tools          LIBSVM's svm-train/svm-predict, used by the SVM comparison tests
#   libgloo-dev           Gloo's headers, which c10d's ProcessGroupGloo.hpp includes (torch/dist's
#                         CPU collectives; the library itself comes with libtorch)
#   python3-torch         Debian's PyTorch for /usr/bin/python3: torch/dist's test hosts the agent
#                         store with torch.distributed.TCPStore (wire-format check, always run in CI)
#   (where Debian's CUDA build of Gloo is installed, as with libtorch-cuda-dev from contrib, their
#   CUDA variants libgloo-cuda-dev and python3-torch-cuda instead: the CPU ones would replace it)
#
#   scripts/install-deps.sh --print-packages   lists the packages it requires here, one per
#                                               line, and changes nothing
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/python-torch.sh"

pkgs=(g++ make libopenblas0-pthread libsvm-tools)
if dpkg-query -W -f='${Status}' libgloo-cuda-0 2>/dev/null | grep -q "install ok installed"; then
  pkgs+=(libgloo-cuda-dev python3-torch-cuda)
else
  pkgs+=(libgloo-dev python3-torch)
fi
# libtorch-dev unless $LIBTORCH or a real Python torch (headers and libraries) will be used
if [ -z "${LIBTORCH:-}" ] && ! python_torch >/dev/null; then pkgs+=(libtorch-dev); fi

if [ "${1:-}" = --print-packages ]; then printf '%s\n' "${pkgs[@]}"; exit 0; fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-deps: missing ${missing[*]} and no apt-get here; install them with your package manager or set LIBTORCH" >&2
    exit 1
  fi
  if [ "$(id -u)" != 0 ]; then
    echo "install-deps: missing ${missing[*]}; run as root: apt-get update && apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

"$here/find-libtorch.sh" >/dev/null
if command -v update-alternatives >/dev/null 2>&1; then
  blas=$(update-alternatives --query "libblas.so.3-$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)" 2>/dev/null | sed -n 's/^Value: //p')
  [ -n "$blas" ] && echo "install-deps: BLAS in use: $blas" >&2
fi
echo "install-deps: ok" >&2
