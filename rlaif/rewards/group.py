"""Group-relative AI feedback for GRPO (`--reward group:NAME[,pairs=M]`): a pairwise judge compares the samples
of one prompt with each other, in both orders, and each sample's reward is its mean win probability.

A group is the batch's items that share the prompt (its `prompt_id` and messages); GRPO hands the reward
function whole groups of k samples. For a pair (i, j) the judge is asked with i first and with j first; i's
win probability is the order-averaged P(i wins) (a tie is 0.5; a judge that always picks one position
gives 0.5), j's is one minus it. A sample's reward is the mean over the pairs it was in; a pair with either
order unparsed is left out (one order alone would bring the position bias back), and a sample left with no
pair is None, with the reason.

Pairs: every pair of the group (k(k-1)/2), or with `pairs=M` (M < k-1) a round-robin subset: sample i meets
i±1, i±2, ... (mod k) and, for odd M with even k, the opposite sample i+k/2, so each sample meets exactly M
others (M+1 for odd M with odd k, where M exactly is impossible). The judge calls per group are twice the
pairs; `describe_cost` says what a run will make before it starts.
"""
from __future__ import annotations

import json
import math
from collections.abc import Sequence
from itertools import combinations
from typing import Any

from rlaif.calls.stats import CallStats
from rlaif.judge.labeling import judge_pairs
from rlaif.judge.pairing import make_pair
from rlaif.judge.spec import Judge
from rlaif.records import Response
from rlaif.scoring import RewardBatch, SourceScores


def group_pairs(k: int, pairs: int | None = None) -> list[tuple[int, int]]:
    """The (i, j), i < j, judged in a group of k: all of them, or the round-robin subset of `pairs` per sample."""
    if pairs is None or pairs >= k - 1:
        return list(combinations(range(k), 2))
    offsets = list(range(1, pairs // 2 + 1))
    if pairs % 2:
        offsets.append(k // 2 if k % 2 == 0 else pairs // 2 + 1)
    return sorted({(min(i, (i + d) % k), max(i, (i + d) % k)) for d in offsets for i in range(k)})


def calls_per_group(k: int, pairs: int | None = None) -> int:
    return 2 * len(group_pairs(k, pairs))


def describe_cost(spec: str, k: int, pairs: int | None, prompts_per_step: int, steps: int) -> str:
    """One line: the judge calls a run with this group reward makes (before cache hits)."""
    per_group = calls_per_group(k, pairs)
    per_step = per_group * prompts_per_step
    which = "all pairs" if pairs is None or pairs >= k - 1 else f"{pairs} opponents each"
    return (f"{spec}: k={k} samples per prompt, {len(group_pairs(k, pairs))} pairs ({which}) in both orders = "
            f"{per_group} judge calls per prompt, {per_step} per step, {per_step * steps} for {steps} steps "
            "(calls the cache already holds cost nothing)")


def group_keys(prompts: Sequence[Any], metadata: Sequence[dict]) -> list[str]:
    """The group each item belongs to: its prompt_id (when given) and its prompt messages."""
    return [json.dumps([m.get("prompt_id"), p], sort_keys=True, ensure_ascii=False, default=str)
            for p, m in zip(prompts, metadata, strict=True)]


def mean_wins(n: int, judged: Sequence[tuple[int, int, float | None]], unpaired: str) -> SourceScores:
    """Each item's mean win probability over its judged pairs (i, j, P(i beats j) or None = no verdict)."""
    wins, seen, failed = [0.0] * n, [0] * n, [0] * n
    for i, j, p in judged:
        if p is None or not math.isfinite(p):
            failed[i] += 1
            failed[j] += 1
            continue
        wins[i] += p
        wins[j] += 1.0 - p
        seen[i] += 1
        seen[j] += 1
    values = [wins[i] / seen[i] if seen[i] else None for i in range(n)]
    errors = [None if seen[i] else (f"{failed[i]} pairs without a verdict in both orders" if failed[i] else unpaired)
              for i in range(n)]
    return SourceScores(values, errors)


def schedule(keys: list[str], pairs: int | None) -> list[tuple[int, int]]:
    """The (i, j) batch indices to judge: each group's pairs, groups of one sample left out."""
    by_group: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        by_group.setdefault(key, []).append(i)
    return [(members[a], members[b]) for members in by_group.values() if len(members) > 1
            for a, b in group_pairs(len(members), pairs)]


def _sample(batch: RewardBatch, i: int) -> Response:
    meta = batch.metadata[i]
    return Response(prompt_id=str(meta.get("prompt_id", "group")), prompt=batch.prompts[i], policy=f"s{i}",
                    sample=i, response=batch.responses[i])


LONE = "the only sample of its prompt in the batch: a group reward compares a prompt's samples with each other"


class GroupReward:
    """`group:NAME[,pairs=M]`: see the module docstring."""

    def __init__(self, judge: Judge, calls: Any, pairs: int | None = None):
        self.judge, self.calls, self.pairs = judge, calls, pairs
        self.stats = CallStats()

    def score(self, batch: RewardBatch) -> SourceScores:
        todo = schedule(group_keys(batch.prompts, batch.metadata), self.pairs)
        pairs = [make_pair(_sample(batch, i), _sample(batch, j)) for i, j in todo]
        by_item: dict[str, dict[str, float | None]] = {}
        for lab in judge_pairs(self.judge, pairs, self.calls, orders="both", stats=self.stats):
            by_item.setdefault(lab.item, {})[lab.order] = lab.p_a
        judged = []
        for (i, j), pair in zip(todo, pairs, strict=True):
            got = by_item.get(pair.item, {})
            both = got.get("ab") is not None and got.get("ba") is not None
            judged.append((i, j, (got["ab"] + got["ba"]) / 2 if both else None))
        return mean_wins(len(batch.responses), judged, LONE)

    def close(self) -> None:
        pass
