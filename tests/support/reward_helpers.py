"""User reward functions that `python:reward_helpers:NAME` specs name in tests/rewards/test_rewards.py
(pytest puts tests/ on sys.path), written as TRL reward functions: keyword arguments `prompts`, `completions`,
and the prompt-file fields."""
from __future__ import annotations

import asyncio

SEEN: list[dict] = []


def marker(prompts, completions, **kwargs):
    """1 for a response carrying the marker "OK!", 0 otherwise; None for an empty response."""
    SEEN.append({"prompts": prompts, "completions": completions, **kwargs})
    texts = [c if isinstance(c, str) else c[0]["content"] for c in completions]  # plain or conversational
    return [None if not t.strip() else float("OK!" in t) for t in texts]


async def marker_async(prompts, completions, **kwargs):
    """`marker` as an `async def` (TRL runs such reward functions concurrently)."""
    await asyncio.sleep(0)
    return marker(prompts, completions, **kwargs)


def constrained_length(completions, constraints):
    """No **kwargs: given only the fields it names. Words per completion over the item's word target (the
    first constraint's n), None for an item without constraints."""
    texts = [c if isinstance(c, str) else c[0]["content"] for c in completions]
    return [None if not c else len(t.split()) / c[0]["n"] for t, c in zip(texts, constraints, strict=True)]


def old_convention(prompts, responses, metadata):
    """The calling convention rlaif used before TRL's: refused when the reward is built."""
    return [0.0] * len(responses)


def broken(prompts, completions, **kwargs):
    raise RuntimeError("the reward service is down")


def too_few(prompts, completions, **kwargs):
    return [1.0]


def odd_values(prompts, completions, **kwargs):
    return [float("nan"), "high", 2][: len(completions)]


NOT_A_FUNCTION = 3


def shorter(prompts, completions, **kwargs):
    """A gold that prefers the shorter response: minus its length in characters."""
    return [-float(len(c if isinstance(c, str) else c[0]["content"])) for c in completions]


def record_prompt_ids(prompts, completions, prompt_id, **kwargs):
    """Appends each scored item's prompt_id to the file $RLAIF_TEST_RECORD (which prompts a run trained on)."""
    import os

    with open(os.environ["RLAIF_TEST_RECORD"], "a", encoding="utf-8") as f:
        f.writelines(f"{p}\n" for p in prompt_id)
    return [0.0] * len(completions)
