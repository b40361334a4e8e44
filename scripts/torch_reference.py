#!/usr/bin/env python3
"""Same-machine reference for cmd/bench: Hugging Face LlamaForCausalLM with torch AdamW.

Issue 7's reference figures were measured on an H100 with PyTorch 2.11 and transformers
5.17 (SDPA attention, weights created in bf16, pure bf16 training, seq_len 256, seeded
random tokens, median of 10 steps after 2 warm-ups, peak = max_memory_allocated after
the weights exist). This script repeats the torch AdamW rows of that table on whatever
GPU it runs on, so that cmd/bench's figures on another card (an H200, say) can be read
against a reference measured on the same card, and so that the card itself can be
compared with the issue's H100 (`bench compare testdata/bench/reference-h100.jsonl
THIS_OUTPUT`). It prints one JSON line per row in cmd/bench's own format.

  python3 scripts/torch_reference.py [--rows "llama-60m:64 llama-1b:16:gc"] [--device cuda]

A row is MODEL:BATCH, with ":gc" for gradient checkpointing (written as the option
"recompute", as cmd/bench writes --recompute). The model sizes are those of
hf/config/presets.go (a Go test checks that the two tables agree).
"""
import argparse
import gc
import json
import statistics
import sys
import time

# name: (hidden, intermediate, heads, layers, max_position_embeddings), vocab 32000
PRESETS = {
    "llama-tiny": (64, 172, 4, 2, 1024),
    "llama-20m": (256, 688, 4, 4, 1024),
    "llama-60m": (512, 1376, 8, 8, 1024),
    "llama-130m": (768, 2048, 12, 12, 1024),
    "llama-350m": (1024, 2736, 16, 24, 1024),
    "llama-1b": (2048, 5461, 32, 24, 1024),
    "llama-7b": (4096, 11008, 32, 32, 2048),
}

DEFAULT_ROWS = "llama-60m:64 llama-350m:32 llama-1b:16 llama-1b:16:gc"


def parse_rows(spec):
    rows = []
    for item in spec.split():
        parts = item.split(":")
        if len(parts) not in (2, 3) or parts[0] not in PRESETS or (len(parts) == 3 and parts[2] != "gc"):
            raise SystemExit(f"torch_reference: bad row {item!r}: want MODEL:BATCH[:gc] with MODEL one of {', '.join(PRESETS)}")
        try:
            batch = int(parts[1])
        except ValueError:
            raise SystemExit(f"torch_reference: bad batch size in row {item!r}")
        rows.append((parts[0], batch, len(parts) == 3))
    return rows


def run_row(torch, transformers, name, batch, gc_on, args):
    hidden, inter, heads, layers, max_pos = PRESETS[name]
    dev = torch.device(args.device)
    cuda = dev.type == "cuda"
    config = transformers.LlamaConfig(
        vocab_size=32000, hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers,
        num_attention_heads=heads, num_key_value_heads=heads, max_position_embeddings=max_pos,
        rms_norm_eps=1e-6, rope_theta=10000.0, hidden_act="silu", initializer_range=0.02,
        tie_word_embeddings=False, bos_token_id=0, eos_token_id=1, use_cache=False,
        attn_implementation="sdpa")
    torch.manual_seed(args.seed)
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)  # weights created in bf16 (pure bf16 training)
    try:
        with dev:
            model = transformers.LlamaForCausalLM(config)
    finally:
        torch.set_default_dtype(old)
    model.train()
    if gc_on:
        model.gradient_checkpointing_enable()
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr)
    g = torch.Generator(device="cpu").manual_seed(args.seed)
    x = torch.randint(0, 32000, (batch, args.seq_len), generator=g).to(dev)
    if cuda:
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
    ms = []
    loss = None
    for i in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        loss = model(input_ids=x, labels=x).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize(dev)
        el = (time.perf_counter() - t0) * 1000
        if i >= args.warmup:
            ms.append(el)
    peak = torch.cuda.max_memory_allocated(dev) if cuda else 0
    med = statistics.median(ms)
    gpu = torch.cuda.get_device_name(dev) if cuda else "cpu"
    line = {
        "method": "adamw", "model": name, "params": params, "trainable_params": params,
        "batch_size": batch, "seq_len": args.seq_len, "dtype": "bfloat16",
        "device": f"cuda:{dev.index or 0}" if cuda else "cpu", "steps": args.steps,
        "ms_per_step": round(med, 3), "tokens_per_s": round(batch * args.seq_len / (med / 1000), 1),
        "peak_memory_bytes": peak, "weights_bytes": weights, "loss": float(loss.detach()),
        "torch": torch.__version__,
        "source": f"torch AdamW + transformers {transformers.__version__} "
                  f"({model.config._attn_implementation} attention) on {gpu}, scripts/torch_reference.py",
    }
    if gc_on:
        line["options"] = "recompute"
    del model, opt, x, loss
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
    return line


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", default=DEFAULT_ROWS, help="MODEL:BATCH[:gc] ... (default %(default)r)")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rows = parse_rows(args.rows)
    try:
        import torch
        import transformers
    except ImportError as e:
        raise SystemExit(f"torch_reference: needs torch and transformers: {e}")
    for name, batch, gc_on in rows:
        try:
            line = run_row(torch, transformers, name, batch, gc_on, args)
        except torch.cuda.OutOfMemoryError as e:
            print(f"torch_reference: {name} batch {batch}: out of memory: {e}", file=sys.stderr)
            gc.collect()
            torch.cuda.empty_cache()
            continue
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
