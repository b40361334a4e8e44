#!/usr/bin/env bash
# Runs the test suite against another Debian release's libtorch (CPU), to check the
# shim's version guards (docs/DESIGN.md: 1.13 through 2.x) without a GPU:
#   scripts/libtorch-compat.sh trixie     # libtorch 2.6
#   scripts/libtorch-compat.sh sid        # the newest Debian has (2.14 on 2026-11-27)
#   scripts/libtorch-compat.sh trixie cuda # build only: the shim against Debian's CUDA libtorch
#                                          # (contrib/non-free: libtorch-cuda-dev, NCCL, Gloo-CUDA),
#                                          # -DBT_CUDA with ProcessGroupNCCL; nothing runs (no GPU)
# As root: debootstraps a minimal chroot of that release (once) under
# ${COMPAT_ROOT:-/var/tmp/blockllm-compat} from this machine's apt mirror ($COMPAT_MIRROR
# overrides it), installs libtorch-dev, the Gloo headers, g++ and OpenBLAS there,
# builds the test binaries here with Go (`go test -c`, as for the GPU checks), copies the
# tree into the chroot, rebuilds the shim against the chroot's libtorch and runs every
# binary from its package directory. The chroot has no Go: this is the same flow as
# scripts/gpu-check.sh on a device machine. Logs: build/compat-<release>/.
# COMPAT_PKGS overrides the package list; COMPAT_RUN passes extra -test.run patterns.
set -uo pipefail
cd "$(dirname "$0")/.."
rel=${1:?usage: scripts/libtorch-compat.sh <debian release, e.g. trixie or sid> [cuda]}
variant=${2:-cpu}
case $variant in cpu) name=$rel ;; cuda) name=$rel-cuda ;; *) echo "libtorch-compat: variant $variant is not cpu or cuda" >&2; exit 2 ;; esac
root=${COMPAT_ROOT:-/var/tmp/blockllm-compat}/$name
out=$PWD/build/compat-$name
mkdir -p "$out"
log() { echo "libtorch-compat($name): $*" | tee -a "$out/summary.txt"; }
[ "$(id -u)" = 0 ] || { echo "libtorch-compat: needs root (debootstrap, chroot, mount)" >&2; exit 1; }

# The Debian mirror: $COMPAT_MIRROR, else this machine's apt sources (scripts/lib).
. scripts/lib/debian-mirror.sh
mirror() { DEBIAN_MIRROR=${COMPAT_MIRROR:-${DEBIAN_MIRROR:-}} debian_mirror; }

# 1. the chroot (libgloo-dev: the Gloo headers that c10d's ProcessGroupGloo.hpp includes;
# python3-torch: torch/dist's agent-store test hosts the store with that release's PyTorch).
# The CUDA variant (contrib and non-free) has Gloo's CUDA build, NCCL and the CUDA runtime
# headers; its nvidia-cudnn fails to configure (its postinst downloads cuDNN), which does
# not matter for compiling: the headers and libraries are unpacked.
if [ "$variant" = cuda ]; then
  components=main,contrib,non-free,non-free-firmware
  chroot_pkgs="libtorch-cuda-dev libgloo-cuda-dev libnccl-dev nvidia-cuda-dev libopenblas0-pthread g++ make binutils ca-certificates"
  need=(usr/bin/g++ usr/include/torch/csrc/api/include/torch/version.h usr/include/gloo/config.h usr/include/nccl.h
    usr/include/cuda_runtime_api.h usr/lib/x86_64-linux-gnu/libtorch_cuda.so)
else
  components=main
  chroot_pkgs="libtorch-dev libgloo-dev python3-torch libopenblas0-pthread g++ make binutils ca-certificates"
  need=(usr/bin/g++ usr/include/torch/csrc/api/include/torch/version.h usr/include/gloo/config.h usr/lib/python3/dist-packages/torch)
fi
have() { local f; for f in "${need[@]}"; do [ -e "$root/$f" ] || return 1; done; }
if ! have; then
  command -v debootstrap >/dev/null || apt-get install -y -q debootstrap >/dev/null
  mkdir -p "$root"
  if [ ! -x "$root/bin/bash" ]; then
    url=$(mirror) || { log "no Debian mirror in /etc/apt/sources* (set COMPAT_MIRROR=http://host/debian)"; exit 1; }
    log "debootstrap $rel ($components) from $url"
    debootstrap --variant=minbase --components="$components" "$rel" "$root" "$url" > "$out/debootstrap.txt" 2>&1 ||
      { log "debootstrap failed (see $out/debootstrap.txt)"; exit 1; }
  fi
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  # a mirror snapshot older than its Release file's Valid-Until (seen for sid) is still what we want
  chroot "$root" bash -c "apt-get -o Acquire::Check-Valid-Until=false update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    $chroot_pkgs" > "$out/apt.txt" 2>&1 || [ "$variant" = cuda ] ||
    { log "apt-get in the chroot failed (see $out/apt.txt)"; exit 1; }
  have || { log "the chroot lacks ${need[*]} after apt-get (see $out/apt.txt)"; exit 1; }
fi

# 2. test binaries, built here (none for the CUDA variant: it only compiles the shim)
pkgs=${COMPAT_PKGS:-torch cgo hf hf/llama hf/roberta blockllm eval cmd/bench cmd/eval cmd/finetune cmd/pretrain torch/dist cmd/internal/launch}
[ "$variant" = cuda ] && pkgs=""
mkdir -p build/compat
for p in $pkgs; do
  go test -c -o "build/compat/$(echo "$p" | tr / _).test" "./$p" || { log "go test -c ./$p failed"; exit 1; }
done

# 3. a copy of the tree (tracked files and the binaries), the shim rebuilt there
src=$root/src
rm -rf "$src" && mkdir -p "$src"
git ls-files -z | xargs -0 cp --parents -t "$src"
cp -r build/compat "$src/build-compat"
mount -t proc proc "$root/proc" 2>/dev/null
trap 'umount "$root/proc" 2>/dev/null' EXIT
if ! chroot "$root" bash -c "cd /src && make --no-print-directory env && make --no-print-directory build/lib/libblockllm_torch.so" > "$out/shim-build.txt" 2>&1; then
  log "shim build failed (see $out/shim-build.txt)"; exit 1
fi
log "$(grep -o 'libtorch [0-9.]* from [^,]*' "$out/shim-build.txt" | head -1)"
if [ "$variant" = cuda ]; then
  # every c10d symbol the shim needs (ProcessGroupNCCL included) is in the CUDA libtorch
  lib=$root/usr/lib/x86_64-linux-gnu
  nm -DC --undefined-only "$root/src/build/lib/libblockllm_torch.so" | sed -n 's/^ *U \(c10d::.*\)/\1/p' | sort -u > "$out/c10d-needed.txt"
  nm -DC --defined-only "$lib/libtorch_cpu.so" "$lib/libtorch_cuda.so" 2>/dev/null | sed 's/^[0-9a-f]* [A-Za-z] //' | sort -u > "$out/c10d-defined.txt"
  missing=$(comm -23 "$out/c10d-needed.txt" "$out/c10d-defined.txt")
  [ -z "$missing" ] || { log "unresolved c10d symbols: $missing"; exit 1; }
  grep -q 'ProcessGroupNCCL::ProcessGroupNCCL' "$out/c10d-needed.txt" || { log "the shim was built without NCCL"; exit 1; }
  log "shim built with -DBT_CUDA: $(wc -l < "$out/c10d-needed.txt") c10d symbols, ProcessGroupNCCL and ProcessGroupGloo among them, all in libtorch_cpu/libtorch_cuda"
  exit 0
fi

# 4. tests, each from its package directory (fixtures are found relative to it)
status=0
for p in $pkgs; do
  bin=/src/build-compat/$(echo "$p" | tr / _).test
  f=$out/test-$(echo "$p" | tr / _).txt
  if chroot "$root" bash -c "cd /src/$p && BLOCKLLM_SHIM=/src/build/lib/libblockllm_torch.so $bin -test.count=1 -test.timeout=20m ${COMPAT_RUN:+-test.run '$COMPAT_RUN'}" > "$f" 2>&1; then
    log "PASS $p"
  else
    log "FAIL $p (see $f)"; status=1
  fi
done
exit $status
