"""The reward contract of online RL: the trainer hands a `RewardBatch` to a `RewardFn` and gets a `RewardResult`.

A reward is a float or None; None means "this item could not be scored" (the trainer drops the item and
counts it, never treats it as 0), and `errors` says why. `combine` makes one result of several sources
(a weighted sum); `combine_fns` does the same for the functions themselves. The implementations of the
`--reward` specs (rule checker, reward model, judges, HTTP, Python) live above `train`, in `rlaif/rewards/`.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from rlaif.errors import RlaifError
from rlaif.train.tokenize import Messages


class RewardError(RlaifError):
    """A reward function broke the contract or failed for too much of a batch."""


@dataclass
class RewardBatch:
    """What the trainer hands the reward function: one entry per sampled response."""

    prompts: list[Messages]  # chat messages of each prompt (what the policy saw)
    responses: list[str]  # decoded response text (special tokens stripped)
    metadata: list[dict]  # the prompt record's fields: prompt_id, constraints, reference, category, ...

    def __post_init__(self):
        if not len(self.prompts) == len(self.responses) == len(self.metadata):
            raise ValueError(f"RewardBatch needs one prompt, response and metadata per item (got "
                             f"{len(self.prompts)}, {len(self.responses)}, {len(self.metadata)})")

    def __len__(self) -> int:
        return len(self.responses)


@dataclass
class RewardResult:
    rewards: list[float | None]  # None = this item could not be scored
    by_source: dict[str, list[float | None]] = field(default_factory=dict)  # per source, for metrics
    errors: list[str | None] | None = None  # why an item is None (None: no errors); filled to len(rewards)

    def __post_init__(self):
        if self.errors is None:
            self.errors = [None] * len(self.rewards)
        if len(self.errors) != len(self.rewards):
            raise ValueError(f"RewardResult has {len(self.rewards)} rewards but {len(self.errors)} errors")

    @property
    def skipped(self) -> int:
        return sum(r is None for r in self.rewards)

    @property
    def skipped_share(self) -> float:
        return self.skipped / len(self.rewards) if self.rewards else 0.0


RewardFn = Callable[[RewardBatch], RewardResult]


def _checked(name: str, result: RewardResult | Sequence[float | None], n: int) -> RewardResult:
    """The source's result with its length checked and non-finite rewards turned into errors."""
    if not isinstance(result, RewardResult):
        result = RewardResult(list(result))
    if len(result.rewards) != n:
        raise RewardError(f"reward source {name!r} returned {len(result.rewards)} rewards for {n} items. "
                          "Fix: return one reward (or None) per response")
    rewards, errors = list(result.rewards), list(result.errors)
    for i, r in enumerate(rewards):
        if r is None:
            errors[i] = errors[i] or "no reward and no reason given"
        elif isinstance(r, bool) or not isinstance(r, (int, float)) or not math.isfinite(r):
            rewards[i], errors[i] = None, f"not a finite number: {r!r}"
    return RewardResult([None if r is None else float(r) for r in rewards], result.by_source, errors)


def combine(sources: Mapping[str, RewardResult | Sequence[float | None]],
            weights: Mapping[str, float] | None = None) -> RewardResult:
    """The weighted sum of several sources' results, item by item (weights default to 1).

    An item is None if any source with a non-zero weight gave None (or a non-finite value) for it, and its
    error lists each such source as "name: why". `by_source` holds every source's rewards under its name
    (weight-0 sources too: they are logged, not optimized).
    """
    if not sources:
        raise RewardError("no reward sources. Fix: pass at least one --reward")
    weights = dict(weights or {})
    unknown = sorted(set(weights) - set(sources))
    if unknown:
        raise RewardError(f"weights given for unknown reward sources {unknown}; sources are {sorted(sources)}")
    first = next(iter(sources.values()))
    n = len(first.rewards if isinstance(first, RewardResult) else first)
    checked = {name: _checked(name, res, n) for name, res in sources.items()}
    rewards: list[float | None] = [0.0] * n
    errors: list[str | None] = [None] * n
    for name, res in checked.items():
        w = float(weights.get(name, 1.0))
        if w == 0.0:
            continue
        for i, r in enumerate(res.rewards):
            if r is None:
                rewards[i] = None
                errors[i] = "; ".join(e for e in (errors[i], f"{name}: {res.errors[i]}") if e)
            elif rewards[i] is not None:
                rewards[i] += w * r
    return RewardResult(rewards, {name: res.rewards for name, res in checked.items()}, errors)


def combine_fns(fns: Mapping[str, RewardFn], weights: Mapping[str, float] | None = None) -> RewardFn:
    """One RewardFn calling every source on the batch and combining their results with `combine`."""
    def reward(batch: RewardBatch) -> RewardResult:
        return combine({name: fn(batch) for name, fn in fns.items()}, weights)

    return reward


def check_skipped(result: RewardResult, max_skipped_share: float = 0.5) -> None:
    """Stop the run when more than `max_skipped_share` of a batch could not be scored."""
    if result.rewards and result.skipped_share > max_skipped_share:
        first = next((e for e in result.errors if e), "no reason given")
        raise RewardError(f"{result.skipped} of {len(result.rewards)} responses could not be scored (more than "
                          f"max_skipped_share={max_skipped_share}); first error: {first}. Fix: repair the reward "
                          "source, or raise max_skipped_share")
