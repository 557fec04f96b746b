"""Two settings of the local path, each against its alternative in the same process on the same model:

1. AdamW fused (what rlaif's training engine uses on the CPU and on CUDA) against foreach, one optimizer step of
   SmolLM2-135M's parameters with random gradients. Target: fused at least 3x faster, with the same weights after
   the steps (max difference printed).
2. Sampling 48 tokens for `--answers` prompts from the embedded model through `HFBackend`, `batch_size` 64 (the
   default) against 32. Target: at least 1.1x the answers per second.

Each row is the best of `--repeats` runs (the machine may be shared).

    python benchmarks/bench_local.py [--repeats 3] [--answers 64] [--threads 2]
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def best_time(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def optimizer_rows(model_dir: Path, repeats: int) -> tuple[float, float, float]:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    def make(kind: str):
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(model_dir))
        params = [p for p in model.parameters() if p.requires_grad]
        for p in params:
            p.grad = torch.randn_like(p) * 1e-3
        opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.01, **{kind: True})
        opt.step()  # the first step allocates the moments: not what a training step costs
        return params, opt

    times, weights = {}, {}
    for kind in ("foreach", "fused"):
        params, opt = make(kind)
        times[kind] = best_time(opt.step, repeats)
        weights[kind] = params
    diff = max(float((a - b).detach().abs().max()) for a, b in zip(weights["foreach"], weights["fused"], strict=True))
    return times["foreach"], times["fused"], diff


def sample_all(backend, requests) -> None:
    for s in range(0, len(requests), backend.max_batch):  # as the call pool hands them over: max_batch a call
        asyncio.run(backend.complete(requests[s:s + backend.max_batch]))


def generation_rows(answers: int, repeats: int) -> dict[int, float]:
    from functools import partial

    from rlaif.backends.base import Request
    from rlaif.backends.hf_backend import local_backend

    requests = [Request(messages=[{"role": "user", "content": f"Write a short note about topic {i} in all "
                                                              "lowercase letters."}],
                        max_tokens=48, temperature=0.7, seed=0, sample=i) for i in range(answers)]
    rates = {}
    for batch in (32, 64):
        run = partial(sample_all, local_backend(batch_size=batch, precision="fp32"), requests)
        run()  # load the model and warm up
        rates[batch] = answers / best_time(run, repeats)
    return rates


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--answers", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import torch

    from rlaif.localmodel import local_model_dir

    torch.set_num_threads(args.threads)
    foreach, fused, diff = optimizer_rows(local_model_dir(), args.repeats)
    print(f"AdamW step, SmolLM2-135M: foreach {foreach:.3f} s, fused {fused:.3f} s: {foreach / fused:.1f}x "
          f"(target >= 3x); max weight difference {diff:.1e}")
    rates = generation_rows(args.answers, args.repeats)
    ratio = rates[64] / rates[32]
    print(f"sampling {args.answers} x 48 tokens: batch 32 {rates[32]:.2f} answers/s, batch 64 {rates[64]:.2f} "
          f"answers/s: {ratio:.2f}x (target >= 1.1x)")
    ok = foreach / fused >= 3 and ratio >= 1.1
    print("targets met" if ok else "TARGET MISSED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
