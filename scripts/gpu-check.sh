#!/usr/bin/env bash
# GPU checks (DESIGN.md, "GPU"). Rebuilds the shim against this machine's CUDA libtorch
# (a Python torch with CUDA, or $LIBTORCH), runs the torch, hf and blockllm tests with
# BLOCKLLM_DEVICE=cuda, then a short cmd/bench run per model.
#
# Works without Go: test binaries and the bench binary can be built elsewhere with
#   make gpu-binaries        (go test -c / go build into build/gpu/)
# and carried here with cgo/ and scripts/. With Go present, they are built first.
# Results go to ${OUT:-build/gpu-out}. BENCH_MODELS overrides the bench list.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-build/gpu-out}
mkdir -p "$out" build/lib
log() { echo "gpu-check: $*" | tee -a "$out/summary.txt"; }

# 1. the shim against the CUDA libtorch
if [ -n "${LIBTORCH:-}" ]; then
  T=$LIBTORCH; abi=$( (nm -D --defined-only "$T/lib/libc10.so" | grep -c __cxx11) 2>/dev/null || echo 0); [ "$abi" -gt 0 ] && abi=1
else
  T=$(python3 -c 'import os, torch; print(os.path.dirname(torch.__file__))') || { log "no Python torch and no LIBTORCH"; exit 1; }
  abi=$(python3 -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))')
fi
log "libtorch at $T (C++11 ABI $abi)"
g++ -O2 -std=c++17 -shared -fPIC -DBT_CUDA -D_GLIBCXX_USE_CXX11_ABI="$abi" \
  -I"$T/include" -I"$T/include/torch/csrc/api/include" cgo/csrc/shim.cpp -o build/lib/libblockllm_torch.so \
  -L"$T/lib" -Wl,--no-as-needed -ltorch -ltorch_cpu -ltorch_cuda -lc10 -lc10_cuda -Wl,--as-needed \
  -Wl,-rpath,"$T/lib" 2>&1 | tee "$out/shim-build.txt"
[ -f build/lib/libblockllm_torch.so ] || { log "shim build failed"; exit 1; }
export LD_LIBRARY_PATH="$PWD/build/lib:$T/lib:${LD_LIBRARY_PATH:-}"
export BLOCKLLM_SHIM="$PWD/build/lib/libblockllm_torch.so"
export BLOCKLLM_DEVICE=${BLOCKLLM_DEVICE:-cuda}

# 2. binaries (only when Go is here)
if command -v go >/dev/null 2>&1; then
  make --no-print-directory gpu-binaries || { log "building test binaries failed"; exit 1; }
fi

# 3. tests, each run from its package directory (fixtures are found relative to it)
status=0
for pkg in torch hf hf/llama hf/roberta blockllm; do
  bin=build/gpu/$(echo "$pkg" | tr / _).test
  if [ ! -x "$bin" ]; then log "SKIP $pkg: $bin not built"; continue; fi
  if (cd "$pkg" && "$OLDPWD/$bin" -test.count=1 -test.timeout=10m > "$OLDPWD/$out/test-$(echo "$pkg" | tr / _).txt" 2>&1); then
    log "PASS $pkg"
  else
    log "FAIL $pkg (see $out/test-$(echo "$pkg" | tr / _).txt)"; status=1
  fi
done

# 4. bench: a few steps per model and method (reference settings: seq 256, bf16)
if [ -x build/gpu/bench ]; then
  for spec in ${BENCH_MODELS:-llama-60m:64 llama-350m:32 llama-1b:16}; do
    model=${spec%%:*}; bs=${spec##*:}
    for method in adamw blockllm; do
      build/gpu/bench --model "$model" --method "$method" --batch-size "$bs" --seq-len 256 --dtype bf16 \
        --device cuda --steps 10 --warmup 2 --sparsity 0.9 ${BENCH_FLAGS:-} >> "$out/bench.jsonl" 2>> "$out/bench-stderr.txt" ||
        log "bench $model $method failed"
    done
  done
  log "bench lines: $(wc -l < "$out/bench.jsonl" 2>/dev/null || echo 0)"
  # ratios against the authors' PyTorch figures on an H100 (issue 7's table)
  build/gpu/bench compare testdata/bench/reference-h100.jsonl "$out/bench.jsonl" 2>&1 | tee "$out/compare.txt" || true
fi
exit $status
