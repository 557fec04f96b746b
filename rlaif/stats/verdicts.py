"""The rules that turn one rater's labels on one pair (usually its two orders) into one verdict.

Three rules, each deliberate; they differ only when a rater's labels on a pair disagree:

- `unanimous_or_tie` (MT-Bench's conservative rule): the same winner in every valid label gives that
  winner; any difference, even a against tie, gives a tie. Used where a verdict is a category compared
  with other raters' categories: the audit (`rlaif audit`: verdict counts, agreement and kappas,
  consensus, agreement with gold, self-preference, Dawid–Skene) and battles read from labels
  (`rlaif elo`). Valid: a winner is set.
- `mean_p_a`: the mean of the valid labels' p_a, read by `winner_of` (a above 0.5, b below, tie at 0.5).
  Keeps how sure the rater was, for soft labels: the jury of `rlaif label` (preferences' p_chosen,
  flip rates) and the demo's preferences. Valid: no error and a p_a.
- `mean_score`: each label scored from one model's side (win 1, tie ½, loss 0, whichever of a/b it
  was), the scores averaged, read by `verdict_of_score` (win above ½, loss below, tie at ½). Used by
  win rates (`rlaif winrate`, `rlaif eval`), which count a tie as half a win. Valid: a winner is set.

With hard labels in two orders they agree on (a, a) and (a, b); on (a, tie) the first gives a tie and the
other two a win for a.
"""
from __future__ import annotations

from collections.abc import Collection
from typing import Literal, TypeVar

T = TypeVar("T")
Verdict = Literal["win", "loss", "tie"]  # from one model's side
SCORE = {"win": 1.0, "tie": 0.5, "loss": 0.0}
_TOL = 1e-9


def unanimous_or_tie(winners: Collection[T], tie: T) -> T | None:
    """The one winner of all valid labels, `tie` when they differ, None without a valid label."""
    distinct = set(winners)
    if not distinct:
        return None
    return next(iter(distinct)) if len(distinct) == 1 else tie


def mean_p_a(p_values: Collection[float]) -> float | None:
    """The mean p_a of the valid labels (None without one); its verdict is `winner_of`."""
    return sum(p_values) / len(p_values) if p_values else None


def winner_of(p_a: float | None) -> str | None:
    """a above 0.5, b below, tie at 0.5 (within 1e-9); None for no p_a."""
    if p_a is None:
        return None
    if p_a > 0.5 + _TOL:
        return "a"
    if p_a < 0.5 - _TOL:
        return "b"
    return "tie"


def side_score(winner: str, side: str) -> float:
    """One label's score from the side ("a" or "b") of one model: 1 won, ½ tie, 0 lost."""
    return 0.5 if winner == "tie" else float(winner == side)


def verdict_of_score(mean: float) -> Verdict:
    """`mean_score`'s verdict: win above ½, loss below, tie at ½."""
    return "win" if mean > 0.5 else "loss" if mean < 0.5 else "tie"
