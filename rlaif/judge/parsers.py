"""Verdict parsers: raw judge output (text and first-token log-probs) -> a verdict or a score.

A parser never raises on model output: what it cannot read comes back with `error` set,
and the label keeps the raw text (invalid output is data). Pairwise verdicts are in terms
of the positions shown (first/second); rlaif.judge.labeling maps them back to a/b.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal

Position = Literal["first", "second", "tie"]


@dataclass
class Verdict:
    """A pairwise verdict on the answers as shown: which position won, and P(first wins)."""

    choice: Position | None = None
    p_first: float | None = None
    error: str | None = None
    method: str = "text"  # "logprob" when p_first came from token probabilities


@dataclass
class Score:
    """A pointwise verdict on one response: a number (binary: 1 good, 0 bad), per-aspect grades."""

    value: float | None = None
    aspects: dict[str, float] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True)
class ParserInfo:
    mode: str
    func: Any


_VERDICT = re.compile(r"\[\[\s*(A|B|C|tie)\s*\]\]", re.IGNORECASE)
_BARE = re.compile(r"^\W*(A|B|C|tie)\W*$", re.IGNORECASE)
_POS = {"a": "first", "b": "second", "c": "tie", "tie": "tie"}


def _choice_p(choice: Position) -> float:
    return {"first": 1.0, "second": 0.0, "tie": 0.5}[choice]


def verdict_text(text: str, top_logprobs=None, **_) -> Verdict:
    """`[[A]]`, `[[B]]`, `[[C]]` (tie); the LAST one counts, so a rationale may quote the format
    before the final verdict. An output that is only the letter (e.g. "A" or " B.") also counts."""
    hits = _VERDICT.findall(text or "")
    if hits:
        choice = _POS[hits[-1].lower()]
        return Verdict(choice, _choice_p(choice))
    m = _BARE.match(text or "")
    if m:
        choice = _POS[m.group(1).lower()]
        return Verdict(choice, _choice_p(choice))
    return Verdict(error="no verdict found: expected [[A]], [[B]] or [[C]]")


_STRIP = " \t\n\r\u2581\u0120\u010a[]()*\"'.:"  # spaces, SentencePiece/byte-BPE space marks, brackets


def normalize_token(tok: str) -> str:
    return tok.strip(_STRIP)


def _logsumexp(xs: list[float]) -> float:
    m = max(xs)
    return m + math.log(sum(math.exp(x - m) for x in xs))


def ab_probability(position: dict[str, float], first: str = "A", second: str = "B") -> float | None:
    """P(first) = softmax over the two verdict tokens' log-probs, summing every variant
    of each token ("A", " A", "▁A", ...). None when neither token is among the alternatives."""
    lp_first = [lp for tok, lp in position.items() if normalize_token(tok) == first]
    lp_second = [lp for tok, lp in position.items() if normalize_token(tok) == second]
    if not lp_first and not lp_second:
        return None
    if not lp_second:
        return 1.0
    if not lp_first:
        return 0.0
    a, b = _logsumexp(lp_first), _logsumexp(lp_second)
    return 1.0 / (1.0 + math.exp(b - a))


def logprob_ab(text: str, top_logprobs: list[dict[str, float]] | None = None, *, first: str = "A",
               second: str = "B", **_) -> Verdict:
    """The RLAIF one-token verdict (Lee et al. 2023): p_first from the top log-probabilities of the
    A and B tokens at the first reported position where either appears; the text when there are none."""
    for position in top_logprobs or []:
        if not position:
            continue
        p = ab_probability(position, first, second)
        if p is not None:
            choice: Position = "first" if p > 0.5 else "second" if p < 0.5 else "tie"
            return Verdict(choice, p, method="logprob")
    v = verdict_text(text)
    if v.error is None:
        return v
    m = re.match(rf"^\W*({re.escape(first)}|{re.escape(second)})\b", text or "")
    if m:
        choice = "first" if m.group(1) == first else "second"
        return Verdict(choice, _choice_p(choice))
    why = "no A/B token among the top log-probabilities and " if top_logprobs else "no log-probabilities and "
    return Verdict(error=why + f"no verdict in the text (expected {first} or {second})")


_RATING = re.compile(r"\[\[\s*(-?\d+(?:\.\d+)?)\s*\]\]")
_RATING_WORD = re.compile(r"(?:rating|score|grade)\s*[:=]?\s*(-?\d+(?:\.\d+)?)", re.IGNORECASE)


def _in_range(v: float, score_range) -> str | None:
    if score_range is None:
        return None
    lo, hi = score_range
    if not lo <= v <= hi:
        return f"score {v:g} outside {lo:g}..{hi:g}"
    return None


def score(text: str, top_logprobs=None, *, score_range=None, **_) -> Score:
    """`Rating: [[N]]` (the last `[[N]]`), or `Rating: N` / `Score: N`."""
    hits = _RATING.findall(text or "") or _RATING_WORD.findall(text or "")
    if not hits:
        return Score(error="no grade found: expected Rating: [[N]]")
    v = float(hits[-1])
    err = _in_range(v, score_range)
    return Score(error=err) if err else Score(value=v)


def aspects(text: str, top_logprobs=None, *, aspects: list[str] | None = None, score_range=None, **_) -> Score:
    """One `aspect: N` line per aspect (UltraFeedback style); the score is their mean."""
    found: dict[str, float] = {}
    missing = []
    for a in aspects or []:
        pat = re.compile(rf"{re.escape(a).replace('_', '[ _]')}\s*[:=\-]\s*\[*\s*(\d+(?:\.\d+)?)", re.IGNORECASE)
        hits = pat.findall(text or "")
        if not hits:
            missing.append(a)
            continue
        v = float(hits[-1])
        err = _in_range(v, score_range)
        if err:
            return Score(error=f"{a}: {err}")
        found[a] = v
    if missing:
        return Score(aspects=found, error=f"no grade for {', '.join(missing)}")
    return Score(value=sum(found.values()) / len(found), aspects=found)


_BINARY = re.compile(r"\[\[\s*(GOOD|BAD)\s*\]\]", re.IGNORECASE)
_BINARY_BARE = re.compile(r"^\W*(good|bad)\W*$", re.IGNORECASE)


def binary(text: str, top_logprobs=None, **_) -> Score:
    """`[[GOOD]]` / `[[BAD]]` (the last one), or an output that is only the word."""
    hits = _BINARY.findall(text or "")
    word = hits[-1] if hits else (m.group(1) if (m := _BINARY_BARE.match(text or "")) else None)
    if word is None:
        return Score(error="no verdict found: expected [[GOOD]] or [[BAD]]")
    return Score(value=1.0 if word.lower() == "good" else 0.0)


PARSERS: dict[str, ParserInfo] = {
    "verdict_text": ParserInfo("pairwise", verdict_text),
    "logprob_ab": ParserInfo("pairwise", logprob_ab),
    "score": ParserInfo("pointwise", score),
    "aspects": ParserInfo("pointwise", aspects),
    "binary": ParserInfo("binary", binary),
}
