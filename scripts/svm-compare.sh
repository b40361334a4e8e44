#!/usr/bin/env bash
# svm-compare.sh — run LIBSVM's svm-train and ours side by side (same flags,
# same data), print wall times and Go/LIBSVM ratios single-threaded and with
# 2 threads, compare obj/rho/nSV, and check model interoperability both ways
# with LIBSVM's svm-predict.
#
# Usage: DATA_DIR=dir scripts/svm-compare.sh [sets...]   (default: a8a w8a)
#        scripts/svm-compare.sh                          (no DATA_DIR: the bundled heart_scale)
# Environment: DATA_DIR (directory of LIBSVM data sets; unset: testdata/svm),
#   REPEAT (runs per configuration, the fastest is reported; default 1),
#   FLAGS (extra svm-train flags for both, default none = LIBSVM defaults),
#   LIBSVM_TRAIN / LIBSVM_PREDICT (default svm-train / svm-predict on PATH).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
data=${DATA_DIR:-$root/testdata/svm}
repeat=${REPEAT:-1}
flags=${FLAGS:-}
ltrain=${LIBSVM_TRAIN:-svm-train}
lpredict=${LIBSVM_PREDICT:-svm-predict}
sets=("$@")
if [ ${#sets[@]} -eq 0 ]; then
  if [ -n "${DATA_DIR:-}" ]; then sets=(a8a w8a); else sets=(heart_scale); fi
fi

for tool in "$ltrain" "$lpredict"; do
  command -v "$tool" >/dev/null || { echo "svm-compare: $tool not found (apt-get install libsvm-tools)" >&2; exit 1; }
done
if [ ! -d "$data" ]; then
  echo "svm-compare: data directory $data not found; skipping" >&2
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$root" && go build -o "$work/go-svm-train" ./cmd/svm-train && go build -o "$work/go-svm-predict" ./cmd/svm-predict)

now() { date +%s.%N; }
# timed <outfile> cmd... : runs cmd, stdout to outfile, prints "wall cpu"
# seconds (cpu = user + system, from /usr/bin/time when present).
timed() {
  local out=$1; shift
  local t0 t1 cpu=nan
  t0=$(now)
  if [ -x /usr/bin/time ]; then
    /usr/bin/time -f "%U %S" -o "$work/time.txt" "$@" >"$out"
    cpu=$(awk '{printf "%.2f", $1+$2}' "$work/time.txt")
  else
    "$@" >"$out"
  fi
  t1=$(now)
  echo "$t0 $t1" | awk -v c="$cpu" '{printf "%.3f %s", $2-$1, c}'
}
# minof "wall cpu"... : the run with the smallest wall time
minof() { printf '%s\n' "$@" | sort -g | head -1; }
wall() { echo "${1% *}"; }
cpu() { echo "${1#* }"; }
summary() { grep -E '^(optimization finished|obj =|nSV =|Total nSV)' "$1" | tr '\n' ' '; }
field() { # field <file> <regex-with-one-group>
  sed -nE "s/$2/\1/p" "$1" | head -1
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", a/b}'; }
relerr() { awk -v a="$1" -v b="$2" 'BEGIN{d=a-b; if(d<0)d=-d; m=b<0?-b:b; if(m<1e-12)m=1e-12; printf "%.2e", d/m}'; }

echo "machine: $(nproc) cores; LIBSVM: $(dpkg-query -W -f='${Version}' libsvm-tools 2>/dev/null || echo unknown); flags: ${flags:-defaults}; repeat: $repeat"
status=0
for set in "${sets[@]}"; do
  f=$data/$set
  if [ ! -f "$f" ]; then echo "skipping $set: $f not found"; continue; fi
  echo "== $set"
  tl=(); t1=(); t2=()
  for ((r = 0; r < repeat; r++)); do
    tl+=("$(timed "$work/l.out" "$ltrain" $flags "$f" "$work/l.model")")
    t1+=("$(timed "$work/g1.out" "$work/go-svm-train" $flags -threads 1 "$f" "$work/g1.model")")
    t2+=("$(timed "$work/g2.out" "$work/go-svm-train" $flags -threads 2 "$f" "$work/g2.model")")
  done
  L=$(minof "${tl[@]}"); G1=$(minof "${t1[@]}"); G2=$(minof "${t2[@]}")
  echo "LIBSVM   : $(summary "$work/l.out")"
  echo "Go (1 th): $(summary "$work/g1.out")"
  echo "Go (2 th): $(summary "$work/g2.out")"
  lobj=$(field "$work/l.out" '^obj = ([^,]+), rho.*'); gobj=$(field "$work/g1.out" '^obj = ([^,]+), rho.*')
  lrho=$(field "$work/l.out" '.*rho = (.*)$'); grho=$(field "$work/g1.out" '.*rho = (.*)$')
  lsv=$(field "$work/l.out" '^Total nSV = (.*)$'); gsv=$(field "$work/g1.out" '^Total nSV = (.*)$')
  echo "obj rel diff $(relerr "$gobj" "$lobj"), rho rel diff $(relerr "$grho" "$lrho"), nSV $gsv vs $lsv"
  if cmp -s "$work/l.model" "$work/g1.model"; then echo "model files: byte-identical"; else echo "model files: differ"; fi
  echo "wall time (fastest of $repeat; cpu seconds in brackets): LIBSVM $(wall "$L")s [$(cpu "$L")], Go 1 thread $(wall "$G1")s [$(cpu "$G1")] (ratio $(ratio "$(wall "$G1")" "$(wall "$L")")), Go 2 threads $(wall "$G2")s [$(cpu "$G2")] (ratio $(ratio "$(wall "$G2")" "$(wall "$L")"))"
  echo "load average now: $(cut -d' ' -f1-3 /proc/loadavg) (other processes share these $(nproc) cores)"
  # Interop: LIBSVM's svm-predict on our model vs on its own; ours on LIBSVM's model.
  test=$f
  [ "$set" = a8a ] && [ -f "$data/a9a.t" ] && test=$data/a9a.t
  la=$("$lpredict" "$test" "$work/l.model" "$work/l.pred" | grep Accuracy)
  lg=$("$lpredict" "$test" "$work/g1.model" "$work/lg.pred" | grep Accuracy)
  gl=$("$work/go-svm-predict" -threads 2 "$test" "$work/l.model" "$work/gl.pred" | grep Accuracy)
  echo "predict on $(basename "$test"):"
  echo "  LIBSVM svm-predict, LIBSVM model: $la"
  echo "  LIBSVM svm-predict, Go model    : $lg"
  echo "  Go svm-predict,     LIBSVM model: $gl"
  agree=$(paste "$work/l.pred" "$work/lg.pred" | awk '$1==$2{a++} END{printf "%.4f%% (%d/%d)", 100*a/NR, a, NR}')
  echo "  prediction agreement, LIBSVM svm-predict with LIBSVM model vs Go model: $agree"
  agree=$(paste "$work/l.pred" "$work/gl.pred" | awk '$1==$2{a++} END{printf "%.4f%% (%d/%d)", 100*a/NR, a, NR}')
  echo "  prediction agreement, LIBSVM model with LIBSVM svm-predict vs Go svm-predict: $agree"
  [ "$la" = "$lg" ] && [ "$la" = "$gl" ] || { echo "  accuracy lines differ"; status=1; }
done
exit $status
