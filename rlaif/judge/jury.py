"""From label lines to one verdict per judge per pair (both orders averaged), then a jury consensus.

Per judge and pair, `rlaif.stats.verdicts`' `mean_p_a` rule: p_a is the mean of the valid labels' p_a
(one per order shown); the winner is a if p_a > 0.5, b if < 0.5, tie at 0.5 (`winner_of`). A pair
*flips* when both orders gave a valid verdict and the winners differ. Invalid labels (error set) are
left out everywhere.

Jury methods over the judges with a valid verdict on a pair:
- `majority`: the most common winner (a tie between a and b votes is a tie); p_a = mean p_a.
- `mean`: the winner of the mean p_a.
- `dawid-skene`: p_a = the Dawid–Skene posterior, which weights each judge by its estimated
  confusion matrix over all pairs (a judge that always says the same thing gets no weight).
`agreement` is the share of the pair's judges whose verdict equals the consensus winner.

`checker_led` is the demo's jury: a rule checker decides, one judge only softens p_a by its weight.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Literal

from rlaif.errors import ConfigError
from rlaif.judge.dawid_skene import dawid_skene
from rlaif.records import Label
from rlaif.stats.verdicts import mean_p_a, winner_of

JuryMethod = Literal["majority", "mean", "dawid-skene"]
JURY_METHODS = ("majority", "mean", "dawid-skene")


@dataclass
class JudgeVerdict:
    """One judge's verdict on one pair, both orders combined."""

    item: str
    rater: str
    p_a: float | None
    winner: str | None
    n_labels: int
    n_valid: int
    n_ties: int
    flipped: bool | None  # None unless both orders were judged validly


def judge_verdicts(labels: list[Label]) -> dict[str, dict[str, JudgeVerdict]]:
    """item -> rater -> JudgeVerdict (insertion order of first appearance is kept)."""
    groups: dict[tuple[str, str], list[Label]] = defaultdict(list)
    for lab in labels:
        groups[(lab.item, lab.rater)].append(lab)
    out: dict[str, dict[str, JudgeVerdict]] = defaultdict(dict)
    for (item, rater), labs in groups.items():
        valid = [x for x in labs if x.error is None and x.p_a is not None]
        p = mean_p_a([x.p_a for x in valid])
        by_order = {x.order: x.winner for x in valid if x.order}
        flipped = (by_order["ab"] != by_order["ba"]) if {"ab", "ba"} <= by_order.keys() else None
        out[item][rater] = JudgeVerdict(item, rater, p, winner_of(p), len(labs), len(valid),
                                        sum(x.winner == "tie" for x in valid), flipped)
    return dict(out)


@dataclass
class Consensus:
    item: str
    p_a: float | None
    winner: str | None
    agreement: float | None
    raters: list[str] = field(default_factory=list)  # judges with a valid verdict on this pair


def consensus(verdicts: dict[str, dict[str, JudgeVerdict]], method: JuryMethod = "majority") -> dict[str, Consensus]:
    if method not in JURY_METHODS:
        raise ConfigError(f"unknown jury method '{method}'. Fix: use one of {', '.join(JURY_METHODS)}")
    posterior = None
    if method == "dawid-skene":
        votes = [(item, r, v.winner) for item, per in verdicts.items() for r, v in per.items() if v.winner]
        posterior = dawid_skene(votes).posterior_a
    out = {}
    for item, per in verdicts.items():
        valid = [v for v in per.values() if v.winner is not None]
        if not valid:
            out[item] = Consensus(item, None, None, None, [])
            continue
        mean_p = sum(v.p_a for v in valid) / len(valid)
        if method == "majority":
            votes = Counter(v.winner for v in valid)
            top = max(votes.values())
            leaders = [w for w, c in votes.items() if c == top]
            win = leaders[0] if len(leaders) == 1 else "tie"
            p = mean_p
        elif method == "mean":
            p = mean_p
            win = winner_of(p)
        else:
            p = posterior[item]
            win = winner_of(p)
        agree = sum(v.winner == win for v in valid) / len(valid)
        out[item] = Consensus(item, p, win, agree, [v.rater for v in valid])
    return out


def checker_led(verdicts: dict[str, dict[str, JudgeVerdict]], checker: str, judge: str,
                weight: float) -> dict[str, Consensus]:
    """The checker's decisive verdicts (a or b) are the winners; the judge only softens p_a:
    p_a = (p_checker + weight · p_judge) / (1 + weight) where the judge has a verdict and weight > 0.
    `agreement` is whether the judge's p_a sides with the checker's winner (None without a judge verdict);
    `raters` are the checker, and the judge when it has a weight."""
    out = {}
    for item, per in verdicts.items():
        c = per.get(checker)
        if c is None or c.winner not in ("a", "b"):
            continue
        v = per.get(judge)
        p_judge = None if v is None else v.p_a
        p_a = c.p_a if p_judge is None or weight == 0 else (c.p_a + weight * p_judge) / (1.0 + weight)
        agreement = None if p_judge is None else float((p_judge > 0.5) == (c.winner == "a"))
        out[item] = Consensus(item, p_a, c.winner, agreement, [checker] + ([judge] if weight > 0 else []))
    return out
