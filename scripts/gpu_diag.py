#!/usr/bin/env python3
"""GPU diagnostics for issue 7's bench (run by scripts/gpu-check.sh where python3 has
torch and transformers): where a Llama training step's GPU time goes, measured on the
Hugging Face model that the reference figures come from.

1. bf16 matrix products of llama-1b's MLP shapes, with the intermediate size as the
   preset has it (5461: rows of 10922 bytes, not a multiple of 16) and padded to 5504,
   to see what the misalignment costs.
2. torch.profiler over one forward+backward of LlamaForCausalLM (llama-1b, batch 16,
   seq 256, bf16, SDPA): GPU time by kernel class (matrix products, attention,
   everything else) and the top kernels.
"""
import statistics
import sys

import torch


def timed(fn, reps=20, warm=3):
    for _ in range(warm):
        fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        ts.append(a.elapsed_time(b))
    return statistics.median(ts)


def gemms():
    print("# bf16 products, llama-1b MLP at batch 16 x seq 256 (M=4096): median of 20, ms and TFLOP/s")
    M, H = 4096, 2048
    for inter in (5461, 5504):
        x = torch.randn(M, H, device="cuda", dtype=torch.bfloat16)
        w = torch.randn(inter, H, device="cuda", dtype=torch.bfloat16)  # gate/up [I, H]
        wd = torch.randn(H, inter, device="cuda", dtype=torch.bfloat16)  # down [H, I]
        h = torch.randn(M, inter, device="cuda", dtype=torch.bfloat16)
        gy = torch.randn(M, H, device="cuda", dtype=torch.bfloat16)
        rows = [("gate/up x @ W^T", lambda: torch.nn.functional.linear(x, w)),
                ("down h @ Wd^T", lambda: torch.nn.functional.linear(h, wd)),
                ("down grad_h = gy @ Wd", lambda: gy @ wd),
                ("down grad_Wd = gy^T @ h", lambda: gy.t() @ h)]
        for name, fn in rows:
            ms = timed(fn)
            print(f"I={inter:5d} {name:26s} {ms:8.3f} ms {2 * M * H * inter / ms / 1e9:8.1f} TFLOP/s")


def profile():
    import transformers
    from torch.profiler import ProfilerActivity, profile as prof
    cfg = transformers.LlamaConfig(vocab_size=32000, hidden_size=2048, intermediate_size=5461, num_hidden_layers=24,
                                   num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=1024,
                                   rms_norm_eps=1e-6, tie_word_embeddings=False, use_cache=False,
                                   attn_implementation="sdpa")
    torch.set_default_dtype(torch.bfloat16)
    with torch.device("cuda"):
        model = transformers.LlamaForCausalLM(cfg)
    torch.set_default_dtype(torch.float32)
    x = torch.randint(0, 32000, (16, 256), device="cuda")

    def step():
        model(input_ids=x, labels=x).loss.backward()
        model.zero_grad(set_to_none=True)

    for _ in range(2):
        step()
    torch.cuda.synchronize()
    with prof(activities=[ProfilerActivity.CUDA]) as p:
        step()
        torch.cuda.synchronize()
    classes = {"matmul": 0.0, "attention": 0.0, "other": 0.0}
    kernels = {}
    for e in p.events():
        if e.device_type != torch.autograd.DeviceType.CUDA:
            continue
        name, us = e.name, e.time_range.elapsed_us()
        low = name.lower()
        if "flash" in low or "fmha" in low or "attention" in low:
            c = "attention"
        elif any(k in low for k in ("gemm", "nvjet", "cutlass", "sm90_xmma", "cublas", "ampere_bf16", "sm80_xmma")):
            c = "matmul"
        else:
            c = "other"
        classes[c] += us
        k = kernels.setdefault(name[:90], [0.0, 0])
        k[0] += us
        k[1] += 1
    total = sum(classes.values())
    print(f"# HF llama-1b b16 forward+backward (no optimizer): {total / 1000:.1f} ms of GPU kernels")
    for c, us in classes.items():
        print(f"{c:10s} {us / 1000:8.1f} ms {100 * us / total:5.1f}%")
    print("# top kernels: ms, calls, name")
    for name, (us, n) in sorted(kernels.items(), key=lambda kv: -kv[1][0])[:15]:
        print(f"{us / 1000:8.2f} {n:5d}  {name}")


if __name__ == "__main__":
    if not torch.cuda.is_available():
        sys.exit("gpu_diag: no CUDA device")
    gemms()
    try:
        profile()
    except Exception as e:  # the profiler's event API differs between torch versions
        print(f"gpu_diag: profile failed: {e!r}")
