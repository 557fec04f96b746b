"""Retest reliability (`rlaif probe --retest N`): the same judge calls made N times, the call cache bypassed,
at the judge's configured sampling (temperature, seed), and how often the verdict changes.

An item is one call: a (probe pair, order shown) for a pairwise judge, a probe answer (the correct and the
wrong one of each probe item) for a pointwise or binary judge. Its verdict is the winner (a, b, tie) or the
score; an output that gives no verdict counts as the verdict "invalid" (a judge that sometimes fails to
answer is not reproducible either). Two rates, with Wilson intervals over items:

- flip rate: the share of items whose N verdicts are not all equal;
- disagreement rate: per item the share of the N(N-1)/2 pairs of repetitions with different verdicts,
  averaged over items (its interval takes the item count as the sample size, an approximation: the
  repetitions of one item are not independent of each other).
"""
from __future__ import annotations

from dataclasses import replace
from itertools import combinations
from typing import Any

from rlaif.calls.options import CallOptions
from rlaif.calls.stats import CallStats
from rlaif.errors import ConfigError
from rlaif.judge.labeling import LiveCalls, judge_pairs, score_responses
from rlaif.judge.pairing import Pair, response_key
from rlaif.judge.spec import Judge
from rlaif.records import Response
from rlaif.stats.intervals import wilson_interval

INVALID = "invalid"


def item_row(item: str, verdicts: list) -> dict:
    """One item's N verdicts, whether they are not all equal, and the share of repetition pairs that differ."""
    pairs = list(combinations(verdicts, 2))
    return {"item": item, "verdicts": verdicts, "flipped": len(set(map(repr, verdicts))) > 1,
            "disagreement": sum(repr(x) != repr(y) for x, y in pairs) / len(pairs)}


def retest_summary(rows: list[dict], repeats: int, alpha: float = 0.05) -> dict:
    n = len(rows)
    out: dict[str, Any] = {"repeats": repeats, "n_items": n}
    for name, values in (("flip_rate", [float(r["flipped"]) for r in rows]),
                         ("disagreement_rate", [r["disagreement"] for r in rows])):
        p = sum(values) / n if n else None
        lo, hi = wilson_interval(p, n, 1 - alpha) if n else (None, None)
        out[name] = {"value": p, "ci_low": lo, "ci_high": hi}
    out["n_flipped"] = sum(r["flipped"] for r in rows)
    out["definition"] = ("flip_rate: share of items whose verdicts over the repeats are not all equal; "
                         "disagreement_rate: mean over items of the share of repeat pairs with different verdicts")
    return out


def check_retest(judge: Judge, repeats: int) -> None:
    if repeats < 2:
        raise ConfigError(f"--retest {repeats}: a retest needs at least 2 repetitions. Fix: pass --retest 2 or more "
                          "(e.g. --retest 5), or leave it out")
    if judge.kind != "llm":
        raise ConfigError(f"--retest: judge '{judge.name}' is a {judge.kind.replace('_', ' ')}, which makes no model "
                          "calls to repeat. Fix: retest an LLM judge")


def _once(judge: Judge, pairs: list[Pair], answers: list[Response], calls: Any, stats: CallStats) -> dict:
    """item -> verdict for one repetition."""
    if judge.mode == "pairwise":
        return {f"{lab.item}|{lab.order}": INVALID if lab.error is not None or lab.winner is None else lab.winner
                for lab in judge_pairs(judge, pairs, calls, orders="both", stats=stats)}
    recs = score_responses(judge, answers, calls, stats=stats)
    return {rec.key: INVALID if rec.score is None else rec.score for rec in recs}


def run_retest(judge: Judge, pairs: list[Pair], repeats: int, options: CallOptions, stats: CallStats, *,
               calls: Any = None, alpha: float = 0.05) -> tuple[dict, list[dict]]:
    """(the summary, one row per item) of `repeats` uncached repetitions of the judge on `pairs` (pairwise:
    each pair in both orders; pointwise: each pair's two answers scored)."""
    check_retest(judge, repeats)
    answers = list({response_key(r): r for p in pairs for r in (p.a, p.b)}.values())
    own = calls is None
    calls = calls or LiveCalls.of(replace(options, cache=False))  # the cache would answer every repeat the same
    try:
        runs = [_once(judge, pairs, answers, calls, stats) for _ in range(repeats)]
    finally:
        if own:
            calls.close()
    rows = [item_row(item, [run.get(item, INVALID) for run in runs]) for item in runs[0]]
    s = judge.spec.sampling
    summary = {**retest_summary(rows, repeats, alpha), "temperature": s.temperature, "seed": s.seed}
    return summary, rows
