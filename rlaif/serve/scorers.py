"""The scorers a service holds (built by `rlaif.serve.loading` on the same code as `--reward` specs).

- pointwise (`PointScorer`): each `--judge` of a pointwise/binary/rule/reward-model catalog judge
  (`judge:NAME`), each `--reward-model PATH` (`rm:PATH`, in a process of its own: `rlaif.serve.workers`), and
  the constraint checker `rule` (share of the item's constraints met), which is always loaded: it needs no
  model and answers only items that carry constraints.
- pairwise (`PairScorer`): each `--judge` of a pairwise judge, asked in both orders (`judge_pairs`).

Every scorer is a one-source `rlaif.rewards.RewardFunction` (so judge calls go through `rlaif.calls`: the
SQLite cache, retries, `--timeout`), and its batch functions are synchronous: the coalescer runs them in a
thread. Failures are results, never exceptions: each item says what went wrong and of which kind.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rlaif.errors import RlaifError
from rlaif.redact import redact
from rlaif.scoring import RewardBatch


@dataclass
class ScoreInput:
    """One pointwise item: chat messages of the prompt, the response, and what rule scoring reads."""

    prompt: list[dict]
    response: str
    metadata: dict = field(default_factory=dict)  # constraints, reference, label


@dataclass
class PointScore:
    value: float | None
    raw: str | None = None
    error: str | None = None
    kind: str | None = None  # why it failed, for the metrics: upstream | backend | input | scorer | internal


@dataclass
class PairInput:
    prompt: list[dict]
    response_a: str
    response_b: str


@dataclass
class OrderVerdict:
    """One order's verdict, mapped back to the original a/b."""

    winner: str | None
    p_a: float | None
    raw: str | None
    error: str | None


@dataclass
class Comparison:
    p_a: float | None  # P(a wins) averaged over both orders; None unless both orders gave a verdict
    winner: str | None  # a | b | tie, from p_a
    flipped: bool | None  # the two orders named different winners (position bias); None without both
    orders: dict[str, OrderVerdict] = field(default_factory=dict)
    error: str | None = None
    kind: str | None = None


def error_kind(message: str) -> str:
    """A coarse kind of a per-item error, for the backend-errors metric."""
    text = message.lower()
    if "call failed" in text or "gave up after" in text:
        return "upstream"
    if "no constraints" in text or "no reference" in text:
        return "input"
    return "scorer"


def _failed(exc: BaseException) -> tuple[str, str]:
    if isinstance(exc, RlaifError):  # e.g. a bad key: every call of the batch fails the same way
        return redact(str(exc)), "backend"
    return redact(f"internal error: {type(exc).__name__}: {exc}"), "internal"


class PointScorer:
    """A pointwise scorer: `score_batch(items) -> [PointScore]`, one `RewardFunction` source."""

    def __init__(self, name: str, kind: str, rater: str, fn: Any):
        self.name, self.kind, self.rater, self.fn = name, kind, rater, fn

    def failure(self, exc: BaseException) -> PointScore:
        message, kind = _failed(exc)
        return PointScore(None, None, message, kind)

    def score_batch(self, items: list[ScoreInput]) -> list[PointScore]:
        batch = RewardBatch([i.prompt for i in items], [i.response for i in items], [i.metadata for i in items])
        try:
            out = self.fn.score_source(0, batch)
        except Exception as e:  # BackendError (bad key, unknown model) and the unexpected: per item
            return [self.failure(e)] * len(items)
        raw = out.raw or [None] * len(items)
        if self.kind != "judge":  # a checker or a model has no text output: its value is its raw output
            raw = [None if v is None else repr(v) for v in out.values]
        return [PointScore(v, r, e, None if e is None else error_kind(e))
                for v, r, e in zip(out.values, raw, out.errors, strict=True)]

    def usage(self) -> tuple[int, int]:
        """(model calls, cache hits) so far."""
        st = getattr(self.fn.scorers[0], "stats", None)
        return (st.calls, st.cache_hits) if st is not None else (0, 0)

    def close(self) -> None:
        self.fn.close()


class PairScorer:
    """A pairwise judge on (a, b) in both orders: `compare_batch(items) -> [Comparison]`."""

    def __init__(self, name: str, rater: str, fn: Any):
        self.name, self.rater, self.fn = name, rater, fn
        self.source = fn.scorers[0]  # rewards.judged.PairwiseReward: its judge, call layer and stats

    def failure(self, exc: BaseException) -> Comparison:
        message, kind = _failed(exc)
        return Comparison(None, None, None, error=message, kind=kind)

    def compare_batch(self, items: list[PairInput]) -> list[Comparison]:
        from rlaif.judge.labeling import judge_pairs
        from rlaif.judge.pairing import make_pair
        from rlaif.records import Response

        pairs = [make_pair(Response(prompt_id=f"item{i}", prompt=it.prompt, policy="a", sample=i,
                                    response=it.response_a),
                           Response(prompt_id=f"item{i}", prompt=it.prompt, policy="b", sample=i,
                                    response=it.response_b)) for i, it in enumerate(items)]
        labels = judge_pairs(self.source.judge, pairs, self.source.calls, orders="both", stats=self.source.stats)
        by_item: dict[str, dict[str, OrderVerdict]] = {}
        for lab in labels:
            by_item.setdefault(lab.item, {})[lab.order] = OrderVerdict(
                lab.winner, lab.p_a, lab.raw, None if lab.error is None else redact(lab.error))
        return [_comparison(self.rater, by_item.get(p.item, {})) for p in pairs]

    def usage(self) -> tuple[int, int]:
        st = self.source.stats
        return st.calls, st.cache_hits

    def close(self) -> None:
        self.fn.close()


def _comparison(rater: str, orders: dict[str, OrderVerdict]) -> Comparison:
    from rlaif.judge.jury import winner_of

    bad = [f"order {o}: {orders[o].error if o in orders else 'not asked'}" for o in ("ab", "ba")
           if o not in orders or orders[o].p_a is None]
    if bad:
        message = f"{rater} gave no verdict in " + "; ".join(bad)
        return Comparison(None, None, None, orders, message, error_kind(message))
    p_a = (orders["ab"].p_a + orders["ba"].p_a) / 2
    return Comparison(p_a, winner_of(p_a), orders["ab"].winner != orders["ba"].winner, orders)


@dataclass
class Scorers:
    point: dict[str, PointScorer]
    pair: dict[str, PairScorer]
    reward: str  # the pointwise scorer /get_reward uses unless the request names one

    def close(self) -> None:
        for s in [*self.point.values(), *self.pair.values()]:
            s.close()
