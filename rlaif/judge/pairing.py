"""Forming pairs from a responses file: all pairs per prompt, best vs worst, or against a reference.

Within a pair, `a` is the response that sorts first by (policy, sample) — or, for reference
pairing, the candidate policy, so p_a is that policy's win probability against the reference.
Item ids are readable and stable across runs: `PROMPT_ID:POLICY_A#SAMPLE~POLICY_B#SAMPLE`.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations
from typing import Literal

from rlaif.errors import ConfigError
from rlaif.records import Response, Text

PairingMode = Literal["all", "best-worst", "reference"]


def response_key(r: Response) -> str:
    return f"{r.prompt_id}:{r.policy}#{r.sample}"


@dataclass(frozen=True)
class Pair:
    item: str
    prompt_id: str
    prompt: Text
    a: Response
    b: Response


def make_pair(a: Response, b: Response) -> Pair:
    return Pair(item=f"{a.prompt_id}:{a.policy}#{a.sample}~{b.policy}#{b.sample}",
                prompt_id=a.prompt_id, prompt=a.prompt, a=a, b=b)


def group_by_prompt(responses: list[Response]) -> dict[str, list[Response]]:
    groups: dict[str, list[Response]] = defaultdict(list)
    seen: set[str] = set()
    for r in responses:
        k = response_key(r)
        if k in seen:
            raise ConfigError(f"two responses share prompt_id/policy/sample '{k}'. "
                              "Fix: give repeated samples distinct 'sample' numbers")
        seen.add(k)
        groups[r.prompt_id].append(r)
    return {pid: sorted(rs, key=lambda r: (r.policy, r.sample)) for pid, rs in groups.items()}


def _keep(a: Response, b: Response, skip_identical: bool) -> bool:
    return not (skip_identical and a.response.strip() == b.response.strip())


def all_pairs(responses: list[Response], skip_identical: bool = True) -> list[Pair]:
    """Every pair of responses to the same prompt (identical texts carry no preference)."""
    out = []
    for rs in group_by_prompt(responses).values():
        out += [make_pair(a, b) for a, b in combinations(rs, 2) if _keep(a, b, skip_identical)]
    return out


def reference_pairs(responses: list[Response], reference: str, skip_identical: bool = False) -> list[Pair]:
    """Each other policy's response against the reference policy's response to the same prompt
    (the reference sample with the same number, else its first sample)."""
    if not any(r.policy == reference for r in responses):
        policies = sorted({r.policy for r in responses})
        raise ConfigError(f"no responses of the reference policy '{reference}'. "
                          f"Fix: pass --reference with one of: {', '.join(policies)}")
    out = []
    for rs in group_by_prompt(responses).values():
        refs = {r.sample: r for r in rs if r.policy == reference}
        if not refs:
            continue
        for r in rs:
            if r.policy == reference:
                continue
            ref = refs.get(r.sample) or refs[min(refs)]
            if _keep(r, ref, skip_identical):
                out.append(make_pair(r, ref))
    return out


def best_worst_pairs(responses: list[Response], score_of: Callable[[Response], float | None]) -> list[Pair]:
    """Per prompt, the highest-scored response against the lowest-scored one (responses without a
    valid score are left out; prompts where all scores are equal give no pair)."""
    out = []
    for rs in group_by_prompt(responses).values():
        scored = [(s, i, r) for i, r in enumerate(rs) if (s := score_of(r)) is not None]
        if len(scored) < 2:
            continue
        # Equal scores break by (policy, sample) order, so the same file always gives the same pairs.
        best = max(scored, key=lambda t: (t[0], -t[1]))
        worst = min(scored, key=lambda t: (t[0], t[1]))
        if best[0] == worst[0]:
            continue
        out.append(make_pair(best[2], worst[2]))
    return out
