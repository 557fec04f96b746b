"""The reward contract of the online trainers: what they hand a reward function and what it returns.

`rlaif.rewards` turns `--reward` specs into such a function; `train` only sees this contract, so it never
imports judges, backends or the call layer.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class RewardBatch:
    """What the trainer hands the reward function, one entry per sampled response."""

    prompts: list[list[dict]]  # chat messages of each prompt (what the policy saw)
    responses: list[str]  # decoded response text (special tokens stripped)
    metadata: list[dict]  # the prompt record's fields: prompt_id, constraints, reference, category, ...


@dataclass
class RewardResult:
    rewards: list[float | None]  # None = this item could not be scored (the trainer skips it, never 0)
    by_source: dict[str, list[float | None]]  # per reward source (for metrics: reward mean/std per source)
    errors: list[str | None]  # why an item is None


RewardFn = Callable[[RewardBatch], RewardResult]
