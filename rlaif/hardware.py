"""Whether bf16 runs faster than fp32 on this machine: measured, not read from the CPU flags.

AVX512-BF16 alone says little. On a 2-core AMD EPYC with it, bf16 ran the demo's sampling and training about
1.8x faster than fp32 (and the MiniLM embedder about 2x); on a 2-core Intel Xeon with it and no AMX, bf16
matrix products ran at 0.55-0.65x fp32's speed, so every bf16 choice made from the flags there was a slowdown.
"""
from __future__ import annotations

import functools
import time

BF16_MIN_SPEEDUP = 1.3  # a close call is not worth bf16's rounding


def bf16_speedup() -> float:
    """fp32 time / bf16 time of a matrix product shaped like a small model's MLP on a batch (~0.1 s), with the
    threads torch uses now. On CUDA, inf (bf16 is the GPU's native format: nothing to time)."""
    import torch

    if torch.cuda.is_available():
        return float("inf")

    def best(dtype: torch.dtype) -> float:
        a, b = torch.ones(256, 576, dtype=dtype), torch.ones(576, 1536, dtype=dtype)
        times = []
        for _ in range(8):
            t = time.perf_counter()
            a @ b
            times.append(time.perf_counter() - t)
        return min(times[2:])  # the first calls pay for kernel selection

    return best(torch.float32) / best(torch.bfloat16)


@functools.cache
def bf16_is_faster() -> bool:
    """bf16 at least `BF16_MIN_SPEEDUP` times faster than fp32 here; measured once per process."""
    return bf16_speedup() >= BF16_MIN_SPEEDUP
