#!/usr/bin/env bash
# Checks the README's two commands the way a new user meets them: a clean clone on a fresh
# Debian 12 (bookworm) machine that has python3 but neither torch nor libtorch-dev.
#   scripts/fresh-debian-check.sh            # `make test` (the default)
#   scripts/fresh-debian-check.sh demo       # `make demo` as well
# As root: debootstraps a minimal bookworm chroot (once, under
# ${FRESH_ROOT:-/var/tmp/blockllm-fresh}) with python3, git, make and ca-certificates
# only, copies this machine's Go toolchain into it (the README's requirement), clones the
# committed HEAD of this repository, and runs the command there as root: install-deps.sh
# must install libtorch-dev, OpenBLAS, g++ and LIBSVM by itself. The mirror is read from
# this machine's apt sources; the Go module proxy from `go env GOPROXY`. Logs:
# build/fresh-debian/.
set -uo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "fresh-debian-check: needs root (debootstrap, chroot, mount)" >&2; exit 1; }
. scripts/lib/debian-mirror.sh
mirror=$(debian_mirror) || exit 1
root=${FRESH_ROOT:-/var/tmp/blockllm-fresh}
out=$PWD/build/fresh-debian
mkdir -p "$out"
log() { echo "fresh-debian-check: $*" | tee -a "$out/summary.txt"; }
goroot=$(go env GOROOT) || { log "no Go here to copy into the chroot"; exit 1; }
proxy=$(go env GOPROXY)

# 1. a pristine chroot, kept as a tarball so that every check starts from the same state
base=$root.tar
if [ ! -f "$base" ]; then
  command -v debootstrap >/dev/null || apt-get install -y -q debootstrap >/dev/null
  rm -rf "$root" && mkdir -p "$root"
  debootstrap --variant=minbase --include=python3,git,make,ca-certificates bookworm "$root" "$mirror" > "$out/debootstrap.txt" 2>&1 ||
    { log "debootstrap failed (see $out/debootstrap.txt)"; exit 1; }
  tar -C "$root" -cf "$base" . || exit 1
fi
rm -rf "$root" && mkdir -p "$root" && tar -C "$root" -xf "$base" || exit 1
cp /etc/resolv.conf "$root/etc/resolv.conf"
# this machine's own certificate authorities (a network that inspects TLS has one): the
# same configuration as resolv.conf, not part of what the check is about
if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
  chroot "$root" update-ca-certificates >/dev/null 2>&1 || { log "update-ca-certificates failed in the chroot"; exit 1; }
fi
mkdir -p "$root/usr/local" && cp -a "$goroot" "$root/usr/local/go"

# 2. a clean clone of the committed tree
git clone -q "$PWD" "$root/src" || { log "git clone failed"; exit 1; }
log "commit $(git rev-parse --short HEAD), mirror $mirror, Go $(go env GOVERSION)"
if chroot "$root" python3 -c 'import torch' 2>/dev/null; then log "the chroot has a Python torch: not a fresh machine"; exit 1; fi
if chroot "$root" dpkg -s libtorch-dev >/dev/null 2>&1; then log "the chroot has libtorch-dev: not a fresh machine"; exit 1; fi

# 3. the README's commands
mount -t proc proc "$root/proc" 2>/dev/null
mount -t devpts devpts "$root/dev/pts" 2>/dev/null
trap 'umount "$root/dev/pts" "$root/proc" 2>/dev/null' EXIT
status=0
for target in test ${1:-}; do
  start=$(date +%s)
  if chroot "$root" env -i HOME=/root PATH=/usr/local/go/bin:/usr/sbin:/usr/bin:/sbin:/bin GOPROXY="$proxy" \
      GOFLAGS=-count=1 bash -c "cd /src && make $target" > "$out/make-$target.txt" 2>&1; then
    log "make $target: PASS in $(( $(date +%s) - start )) s"
  else
    log "make $target: FAIL after $(( $(date +%s) - start )) s (see $out/make-$target.txt)"; status=1
  fi
done
exit $status
