#!/usr/bin/env python3
"""What transformers' generation does, for the tests of hf/generate and hf/llama.

Writes JSON to stdout: greedy generation from the tiny Llama fixture
(testdata/hf/llama-tiny) with and without its KV cache, and the tokens transformers'
logits warpers (temperature, then top-k, then top-p) keep, with their probabilities,
on a hand-made logits vector and on a random one. Run from the repository root with
transformers 5.x and torch 2.x (CPU):

    python3 testdata/generate/reference.py > testdata/generate/hf_reference.json
"""
import json
import math

import torch
import transformers
from transformers import AutoModelForCausalLM
from transformers.generation.logits_process import (
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

torch.set_num_threads(1)
out = {"versions": {"transformers": transformers.__version__, "torch": torch.__version__}}

model = AutoModelForCausalLM.from_pretrained("testdata/hf/llama-tiny", dtype=torch.float32).eval()
prompts = [[1], [1, 50, 60, 70], [1, 900, 3, 17, 256, 511, 1000, 2, 9, 400, 401, 402]]
greedy = []
for ids in prompts:
    x = torch.tensor([ids])
    mask = torch.ones_like(x)
    with torch.no_grad():
        a = model.generate(x, attention_mask=mask, max_new_tokens=60, do_sample=False, use_cache=True, pad_token_id=2)
        b = model.generate(x, attention_mask=mask, max_new_tokens=60, do_sample=False, use_cache=False, pad_token_id=2)
    greedy.append({"prompt": ids, "cache": a[0, len(ids):].tolist(), "no_cache": b[0, len(ids):].tolist()})
out["greedy"] = {"model": "testdata/hf/llama-tiny", "eos_token_id": model.generation_config.eos_token_id,
                 "max_new_tokens": 60, "cases": greedy}


def warp(logits, temperature, top_k, top_p):
    x = torch.tensor([logits], dtype=torch.float32)
    if temperature != 1.0:
        x = TemperatureLogitsWarper(temperature)(None, x)
    if top_k:
        x = TopKLogitsWarper(top_k)(None, x)
    if top_p < 1.0:
        x = TopPLogitsWarper(top_p)(None, x)
    kept = torch.isfinite(x[0]).nonzero().flatten().tolist()
    p = torch.softmax(x[0].double(), -1)
    return {"temperature": temperature, "top_k": top_k, "top_p": top_p, "kept": kept, "probs": [p[i].item() for i in kept]}


hand = [1.0, 3.0, 2.0, 0.0, 3.0]
g = torch.Generator().manual_seed(0)
rand = (torch.randn(1000, generator=g) * 3).tolist()  # float32 values, exact in JSON
# (no case cuts between the two equal logits of hand: which one torch keeps is not specified)
hand_cases = [(1.0, 0, 1.0), (1.0, 2, 1.0), (1.0, 3, 1.0), (1.0, 0, 0.5), (1.0, 0, 0.9), (0.5, 0, 0.9),
              (1.0, 3, 0.9), (1.0, 3, 0.8), (2.0, 0, 1.0)]
rand_cases = [(1.0, 50, 1.0), (0.7, 0, 0.9), (1.3, 0, 0.95), (1.0, 100, 0.5), (0.2, 0, 0.999), (1.0, 0, 0.3)]
out["warpers"] = [
    {"name": "hand", "logits": hand, "cases": [warp(hand, *c) for c in hand_cases]},
    {"name": "random", "logits": rand, "cases": [warp(rand, *c) for c in rand_cases]},
]
print(json.dumps(out, indent=1))
