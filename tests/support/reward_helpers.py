"""User reward functions that `python:reward_helpers:NAME` specs name in tests/test_rewards.py
(pytest puts tests/ on sys.path)."""
from __future__ import annotations

SEEN: list[tuple] = []


def marker(prompts, responses, metadata):
    """1 for a response carrying the marker "OK!", 0 otherwise; None for an empty response."""
    SEEN.append((prompts, responses, metadata))
    return [None if not r.strip() else float("OK!" in r) for r in responses]


def broken(prompts, responses, metadata):
    raise RuntimeError("the reward service is down")


def too_few(prompts, responses, metadata):
    return [1.0]


def odd_values(prompts, responses, metadata):
    return [float("nan"), "high", 2][: len(responses)]


NOT_A_FUNCTION = 3


def shorter(prompts, responses, metadata):
    """A gold that prefers the shorter response: minus its length in characters."""
    return [-float(len(r)) for r in responses]


def record_prompt_ids(prompts, responses, metadata):
    """Appends each scored item's prompt_id to the file $RLAIF_TEST_RECORD (which prompts a run trained on)."""
    import os

    with open(os.environ["RLAIF_TEST_RECORD"], "a", encoding="utf-8") as f:
        f.writelines(f"{m['prompt_id']}\n" for m in metadata)
    return [0.0] * len(responses)
