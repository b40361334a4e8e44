#!/usr/bin/env bash
# GPU checks (docs/DESIGN.md, "GPU"). Rebuilds the shim against this machine's CUDA libtorch
# (found by scripts/find-libtorch.sh: $LIBTORCH, a Python torch, or Debian's), runs the
# torch, hf and blockllm tests with BLOCKLLM_DEVICE=cuda, then cmd/bench per model and
# method, and prints the ratios against the authors' H100 figures (issue 7).
#
# Works without Go: test binaries and the bench binary can be built elsewhere with
#   make gpu-binaries        (go test -c / go build into build/gpu/)
# and carried here with cgo/ and scripts/. With Go present, they are built first.
# Where the libtorch has no CUDA, the same steps run on the CPU at small sizes (a dry run
# of this script). Results go to ${OUT:-build/gpu-out}.
# Knobs: GPU_BIN (where the binaries are, default build/gpu), CMDS=1 (also run the
# pretrain, eval and finetune commands' demos on the device, from $GPU_BIN),
# BENCH_MODELS ("model:batch ..."), BENCH_RECOMPUTE (rows also run with --recompute),
# BENCH_7B=1 (adds llama-7b, batch 4, s=0.95), BENCH_BEST and BENCH_MEM (the flags of the
# two tuned BlockLLM rows: for speed, and for memory; empty skips the row), BENCH_FLAGS
# (added to every bench run), SKIP_TESTS=1,
# TEST_TIMEOUT_S (per test package, default 240), BUDGET_S (skip the remaining bench rows
# once the script has run this long; 0 = no limit), TORCH_REF=0 (skip the same-machine
# torch AdamW reference, scripts/torch_reference.py, run where python3 has torch and
# transformers), TORCH_REF_ROWS (its rows), BENCH_EXTRA ("model:batch:method:sparsity:
# flags;..." more bench rows), GPU_DIAG=1 (scripts/gpu_diag.py: matrix
# products at llama-1b's MLP shapes, and a profile of the Hugging Face model's step).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-build/gpu-out}
mkdir -p "$out" build/lib
out=$(cd "$out" && pwd) # absolute: the tests run from their package directories
GPU_BIN=${GPU_BIN:-build/gpu}
log() { echo "gpu-check: $(date +%T) $*" | tee -a "$out/summary.txt"; }

# 1. the shim against this machine's libtorch
bash scripts/find-libtorch.sh > "$out/libtorch.env" 2> "$out/find-libtorch.txt" ||
  { cat "$out/find-libtorch.txt"; log "no libtorch found"; exit 1; }
while IFS='=' read -r k v; do printf -v "$k" '%s' "$v"; done < "$out/libtorch.env"
log "$(cat "$out/find-libtorch.txt")"
dev=cpu
if [ "$TORCH_CUDA" = 1 ]; then dev=cuda; else log "this libtorch has no CUDA: dry run on the CPU"; fi
start=$SECONDS
rm -f build/lib/libblockllm_torch.so
bash scripts/build-shim.sh "$out/libtorch.env" build/lib/libblockllm_torch.so > "$out/shim-build.txt" 2>&1 ||
  { cat "$out/shim-build.txt"; log "shim build failed"; exit 1; }
log "shim built against libtorch $TORCH_VERSION in $((SECONDS - start)) s"
export LD_LIBRARY_PATH="$PWD/build/lib:$TORCH_LIBDIR:${LD_LIBRARY_PATH:-}"
export BLOCKLLM_SHIM="$PWD/build/lib/libblockllm_torch.so"
export BLOCKLLM_DEVICE=${BLOCKLLM_DEVICE:-$dev}
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >> "$out/summary.txt"

# 2. binaries (only when Go is here)
if command -v go >/dev/null 2>&1; then
  make --no-print-directory gpu-binaries > "$out/go-build.txt" 2>&1 || { log "building test binaries failed"; exit 1; }
fi

# 3. tests, each run from its package directory (fixtures are found relative to it)
status=0
if [ "${SKIP_TESTS:-0}" != 1 ]; then
  for pkg in torch hf hf/llama hf/roberta blockllm; do
    bin=$GPU_BIN/$(echo "$pkg" | tr / _).test
    f=$out/test-$(echo "$pkg" | tr / _).txt
    if [ ! -x "$bin" ]; then log "SKIP $pkg: $bin not built"; continue; fi
    start=$SECONDS
    if (cd "$pkg" && timeout "${TEST_TIMEOUT_S:-240}" "$OLDPWD/$bin" -test.count=1 -test.v > "$f" 2>&1); then
      log "PASS $pkg ($((SECONDS - start)) s, $(grep -c -- '--- PASS' "$f") passed, $(grep -c -- '--- SKIP' "$f") skipped)"
    else
      log "FAIL $pkg (see $f)"; grep -- '--- FAIL' "$f" | head -20 | tee -a "$out/summary.txt"; status=1
    fi
  done
fi

# 4. bench: the reference settings (seq 256, bf16 weights, median of 10 steps after 2
# warm-ups); for BlockLLM also two tuned rows: BENCH_BEST (fused loss in chunks, fused
# AdamW, MLP padded to 64) and BENCH_MEM (the same, and the MLPs recomputed).
if [ -x "$GPU_BIN/bench" ]; then
  if [ "$dev" = cuda ]; then
    models=${BENCH_MODELS:-llama-60m:64 llama-350m:32 llama-1b:16}
    recompute=${BENCH_RECOMPUTE:-llama-1b:16}
    steps=(--steps 10 --warmup 2)
  else
    models=${BENCH_MODELS:-llama-20m:2}
    recompute=${BENCH_RECOMPUTE:-llama-20m:2}
    steps=(--steps 2 --warmup 1)
  fi
  best=${BENCH_BEST---loss-chunk 32 --fused-adamw --pad-mlp 64}
  mem=${BENCH_MEM---loss-chunk 32 --fused-adamw --recompute-mlp --pad-mlp 64}
  budget=${BUDGET_S:-0}
  bench() { # model batch method sparsity flags...
    local m=$1 b=$2 meth=$3 sp=$4; shift 4
    if [ "$budget" -gt 0 ] && [ "$SECONDS" -ge "$budget" ]; then
      log "SKIP bench $m b=$b $meth $*: over BUDGET_S=$budget"; return
    fi
    local start=$SECONDS
    "$GPU_BIN/bench" --model "$m" --method "$meth" --batch-size "$b" --seq-len 256 --dtype bf16 --device "$dev" \
      "${steps[@]}" --sparsity "$sp" "$@" ${BENCH_FLAGS:-} >> "$out/bench.jsonl" 2>> "$out/bench-stderr.txt" ||
      log "bench $m b=$b $meth $* failed (see $out/bench-stderr.txt)"
    log "bench $m b=$b $meth s=$sp $* ($((SECONDS - start)) s)"
  }
  for spec in $models; do
    m=${spec%%:*} b=${spec##*:}
    bench "$m" "$b" adamw 0.9
    bench "$m" "$b" blockllm 0.9
    [ -n "$best" ] && bench "$m" "$b" blockllm 0.9 $best
    [ -n "$mem" ] && bench "$m" "$b" blockllm 0.9 $mem
  done
  for spec in $recompute; do
    m=${spec%%:*} b=${spec##*:}
    bench "$m" "$b" adamw 0.9 --recompute
    bench "$m" "$b" blockllm 0.9 --recompute
    [ -n "$best" ] && bench "$m" "$b" blockllm 0.9 --recompute $best
  done
  # the torch AdamW rows of the issue's table on this machine (card calibration)
  ref=testdata/bench/reference-h100.jsonl
  if [ "${TORCH_REF:-1}" = 1 ] && [ "$dev" = cuda ] && (cd / && python3 -c 'import torch, transformers') 2>/dev/null; then
    start=$SECONDS
    python3 scripts/torch_reference.py --device cuda ${TORCH_REF_ROWS:+--rows "$TORCH_REF_ROWS"} \
      > "$out/torch-ref.jsonl" 2> "$out/torch-ref-stderr.txt" || log "torch reference failed (see $out/torch-ref-stderr.txt)"
    log "torch reference: $(wc -l < "$out/torch-ref.jsonl") rows ($((SECONDS - start)) s)"
  fi
  if [ "${BENCH_7B:-0}" = 1 ]; then
    bench llama-7b 4 blockllm 0.95
    [ -n "$best" ] && bench llama-7b 4 blockllm 0.95 $best
    [ -n "$mem" ] && bench llama-7b 4 blockllm 0.95 $mem
    [ -n "$best" ] && bench llama-7b 4 blockllm 0.95 --recompute $best
    bench llama-7b 4 adamw 0.95 --recompute
  fi
  # extra rows: BENCH_EXTRA="model:batch:method:sparsity:flags;..."
  if [ -n "${BENCH_EXTRA:-}" ]; then
    IFS=';' read -ra extra <<< "$BENCH_EXTRA"
    for row in "${extra[@]}"; do
      IFS=: read -r m b meth sp flags <<< "$row"
      bench "$m" "$b" "$meth" "$sp" $flags
    done
  fi
  if [ "${GPU_DIAG:-0}" = 1 ] && [ "$dev" = cuda ] && { [ "$budget" = 0 ] || [ "$SECONDS" -lt "$budget" ]; }; then
    start=$SECONDS
    (cd / && python3 "$OLDPWD/scripts/gpu_diag.py") > "$out/diag.txt" 2>&1 || log "gpu_diag failed (see $out/diag.txt)"
    log "diagnostics ($((SECONDS - start)) s): $out/diag.txt"
  fi
  log "bench lines: $(wc -l < "$out/bench.jsonl" 2>/dev/null || echo 0)"
  # ratios against the authors' PyTorch figures on an H100 (issue 7's table)
  "$GPU_BIN/bench" compare "$ref" "$out/bench.jsonl" > "$out/compare.txt" 2>&1
  cat "$out/compare.txt"
  if [ -s "$out/torch-ref.jsonl" ]; then
    { echo "# torch AdamW on this machine against the issue's H100 figures (the card's factor)"
      "$GPU_BIN/bench" compare "$ref" "$out/torch-ref.jsonl"
      echo "# this project against torch AdamW on this machine"
      "$GPU_BIN/bench" compare "$out/torch-ref.jsonl" "$out/bench.jsonl"; } > "$out/compare-same-card.txt" 2>&1
    cat "$out/compare-same-card.txt"
  fi
fi
# 5. the commands on the device: the pretrain demo in bf16 (BlockLLM and AdamW), the
# perplexity of its BlockLLM model with eval, and the fine-tuning demo
if [ "${CMDS:-0}" = 1 ]; then
  for c in pretrain eval finetune; do [ -x "$GPU_BIN/$c" ] || { log "SKIP commands: $GPU_BIN/$c not built"; CMDS=0; }; done
fi
if [ "${CMDS:-0}" = 1 ]; then
  start=$SECONDS
  if "$GPU_BIN/pretrain" --device "$dev" --dtype bf16 --out "$out/pretrain-run" --progress=false --json \
      > "$out/pretrain.jsonl" 2> "$out/pretrain-stderr.txt"; then
    res=$(grep '"event":"result"' "$out/pretrain.jsonl" | while read -r l; do
      m=$(echo "$l" | grep -o '"method":"[^"]*"' | cut -d'"' -f4)
      b=$(echo "$l" | grep -o '"val_ppl_before":[0-9.]*' | cut -d: -f2)
      a=$(echo "$l" | grep -o '"val_ppl_after":[0-9.]*' | cut -d: -f2)
      printf '%s: validation perplexity %.2f -> %.2f; ' "$m" "$b" "$a"
    done)
    log "PASS pretrain demo on $dev, bf16 ($((SECONDS - start)) s): $res"
  else
    log "FAIL pretrain demo on $dev (see $out/pretrain-stderr.txt)"; tail -5 "$out/pretrain-stderr.txt" | tee -a "$out/summary.txt"; status=1
  fi
  start=$SECONDS
  if "$GPU_BIN/eval" --device "$dev" --model "$out/pretrain-run/blockllm/final" --ppl data/fortunes/c4-validation.00000-of-00001.json.gz \
      --seq-len 64 > "$out/eval.txt" 2>&1; then
    log "PASS eval --ppl on $dev ($((SECONDS - start)) s): $(grep -m1 'c4-validation' "$out/eval.txt" | tr -s ' │|' ' ')"
  else
    log "FAIL eval on $dev (see $out/eval.txt)"; tail -5 "$out/eval.txt" | tee -a "$out/summary.txt"; status=1
  fi
  start=$SECONDS
  if "$GPU_BIN/finetune" --device "$dev" --progress=false > "$out/finetune.txt" 2> "$out/finetune-stderr.txt"; then
    log "PASS finetune demo on $dev ($((SECONDS - start)) s)"; tail -8 "$out/finetune.txt" | tee -a "$out/summary.txt"
  else
    log "FAIL finetune demo on $dev (see $out/finetune-stderr.txt)"; tail -5 "$out/finetune-stderr.txt" | tee -a "$out/summary.txt"; status=1
  fi
fi
exit $status
