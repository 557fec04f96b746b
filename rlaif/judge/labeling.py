"""Running judges over pairs: requests, both-order protocol, mapping back to a/b, label lines.

Every model call goes through rlaif.calls.complete_all (cache, retries, usage and cost), so a
re-run or a resumed run repeats no call. `Replay` serves stored raw outputs instead (--reparse).
Pairwise LLM judges make one call per pair and order shown; pointwise, binary, rule and reward-model
judges score each response once and their pair labels follow from the two scores.
"""
from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from rlaif.backends.base import Completion, Request
from rlaif.calls.options import CallOptions
from rlaif.calls.reward_model import ModelReward
from rlaif.calls.stats import CallStats
from rlaif.errors import ConfigError, RlaifError
from rlaif.judge.jury import winner_of
from rlaif.judge.pairing import Pair, response_key
from rlaif.judge.parsers import PARSERS, Score, Verdict
from rlaif.judge.spec import Judge
from rlaif.judge.templates import render_prompt
from rlaif.records import Label, Record, Response, Usage, stable_id
from rlaif.scoring import RewardBatch, rule_checker

Orders = Literal["both", "random", "ab"]
ORDERS = ("both", "random", "ab")


class ScoreRecord(Record):
    """One pointwise verdict (scores.jsonl): one call of a pointwise/binary judge on one response."""

    key: str
    rater: str
    prompt_id: str
    policy: str
    sample: int = 0
    score: float | None = None
    aspects: dict[str, float] | None = None
    raw: str | None = None
    error: str | None = None
    usage: Usage | None = None
    cached: bool | None = None
    call_failed: bool | None = None  # the call failed: `raw` is no reply, --reparse must not read it
    WRITTEN_WHEN_SET: ClassVar[frozenset[str]] = frozenset({"call_failed"})


@dataclass
class LabelRun:
    judges: list[Judge]
    pairs: list[Pair]
    labels: list[Label] = field(default_factory=list)
    scores: list[ScoreRecord] = field(default_factory=list)
    stats: dict[str, CallStats] = field(default_factory=dict)


# ---- where completions come from ----------------------------------------------------------------

class LiveCalls:
    """Completions from the judges' backends through the call layer (cached, retried, counted).

    A request that fails for good after retries comes back as an invalid label (`error` starts
    with "call failed"), not a crash; it is not cached, so the next run tries it again. Errors
    that would fail every request (bad key, unknown model) still stop the run.
    """

    def __init__(self, *, concurrency: int = 8, cache: bool = True, progress: bool | None = False,
                 base_urls: list[str] | None = None, api_key_env: str | None = None, timeout_s: float | None = None):
        self.concurrency, self.cache, self.progress = concurrency, cache, progress
        self.base_urls, self.api_key_env = base_urls, api_key_env
        self.timeout_s = timeout_s  # per call, for the backends made here (None: the backends' default)
        self._backends: dict[str, Any] = {}
        self._reward_models: dict[tuple, ModelReward] = {}

    @classmethod
    def of(cls, o: CallOptions) -> LiveCalls:
        return cls(concurrency=o.concurrency, cache=o.cache, progress=o.progress,
                   base_urls=None if o.base_urls is None else list(o.base_urls), api_key_env=o.api_key_env,
                   timeout_s=o.timeout_s)

    def backend(self, judge: Judge):
        if judge.backend is not None:
            return judge.backend
        if judge.model not in self._backends:
            from rlaif.backends import get_backend

            timeout = {} if self.timeout_s is None else {"timeout_s": self.timeout_s}
            self._backends[judge.model] = get_backend(judge.model, base_urls=self.base_urls,
                                                      api_key_env=self.api_key_env, drop_http_opts=True, **timeout)
        return self._backends[judge.model]

    def run(self, judge: Judge, keys: list[str], requests: list[Request], stats: CallStats,
            what: str = "") -> list[Completion]:
        from rlaif.calls import complete_all

        if not requests:
            return []
        backend = self.backend(judge)
        res = complete_all(backend, requests, concurrency=self.concurrency, cache=self.cache,
                           progress=self.progress, on_error="record", description=what or judge.rater)
        stats.add(res.stats)  # the call layer counts local calls as free, a billed model without a price unknown
        return list(res.completions)

    def reward_model(self, judge: Judge) -> ModelReward:
        """The judge's reward model, loaded once for every split and pair of this run; its scores go through
        the call cache like any call (a response scored before costs no forward)."""
        key = (judge.spec.scorer, judge.model)
        if key not in self._reward_models:
            self._reward_models[key] = ModelReward(judge.model, scorer=judge.spec.scorer, cache=self.cache)
        return self._reward_models[key]

    def close(self) -> None:
        # complete_all closes network clients after each run; a loaded local model is freed with the object.
        self._backends.clear()
        for rm in self._reward_models.values():
            rm.close()
        self._reward_models.clear()


class Replay:
    """Stored raw outputs served as completions: --reparse re-reads them with the current parser
    and calls no backend. A missing output is an error (nothing is invented)."""

    def __init__(self, labels: list[Label], scores: list[ScoreRecord]):
        self._store: dict[tuple[str, str], Completion] = {}
        for lab in labels:
            if lab.order is not None and lab.raw is not None and not lab.call_failed:
                self._store[(lab.rater, f"{lab.item}|{lab.order}")] = _stored(lab)
        for s in scores:
            if s.raw is not None and not s.call_failed:
                self._store[(s.rater, s.key)] = _stored(s)

    def has(self, rater: str, key: str) -> bool:
        return (rater, key) in self._store

    def get(self, rater: str, key: str) -> Completion:
        try:
            return self._store[(rater, key)]
        except KeyError:
            raise RlaifError(f"--reparse: no stored output of {rater} for {key}. "
                             "Fix: run without --reparse to make the missing calls") from None

    def run(self, judge: Judge, keys: list[str], requests: list[Request], stats: CallStats,
            what: str = "") -> list[Completion]:
        return [self.get(judge.rater, k) for k in keys]

    def close(self) -> None:
        pass


def _stored(rec: Label | ScoreRecord) -> Completion:
    usage = rec.usage
    return Completion(text=rec.raw or "", top_logprobs=rec.top_logprobs if isinstance(rec, Label) else None,
                      input_tokens=usage.input_tokens if usage else 0,
                      output_tokens=usage.output_tokens if usage else 0, cached=True)


# ---- requests and parsing --------------------------------------------------------------------------

def _request(judge: Judge, messages: list[dict]) -> Request:
    s = judge.spec.sampling
    return Request(messages=messages, max_tokens=s.max_tokens, temperature=s.temperature, top_p=s.top_p,
                   seed=s.seed, stop=tuple(s.stop), top_logprobs=s.top_logprobs,
                   logprob_positions=s.logprob_positions)


def pair_request(judge: Judge, pair: Pair, order: str) -> Request:
    first, second = (pair.a, pair.b) if order == "ab" else (pair.b, pair.a)
    msgs = judge.template.render(prompt=render_prompt(pair.prompt), answer_a=first.response,
                                 answer_b=second.response)
    return _request(judge, msgs)


def point_request(judge: Judge, r: Response) -> Request:
    msgs = judge.template.render(prompt=render_prompt(r.prompt), response=r.response,
                                 aspects=judge.spec.aspects or [])
    return _request(judge, msgs)


def parse_pair(judge: Judge, c: Completion) -> Verdict:
    spec = judge.spec
    return PARSERS[spec.parser].func(c.text, c.top_logprobs, first=spec.choices.first, second=spec.choices.second)


def parse_point(judge: Judge, c: Completion) -> Score:
    spec = judge.spec
    return PARSERS[spec.parser].func(c.text, c.top_logprobs, score_range=spec.score_range, aspects=spec.aspects)


_BACK = {"ab": {"first": "a", "second": "b", "tie": "tie"}, "ba": {"first": "b", "second": "a", "tie": "tie"}}


def verdict_to_ab(v: Verdict, order: str) -> tuple[str | None, float | None]:
    """A verdict on the shown order -> (winner, p_a) in terms of the original a/b."""
    if v.error is not None or v.choice is None or v.p_first is None:
        return None, None
    p_a = v.p_first if order == "ab" else 1.0 - v.p_first
    return _BACK[order][v.choice], p_a


def pair_orders(pairs: list[Pair], orders: Orders, seed: int = 0) -> list[tuple[Pair, str]]:
    """The (pair, order) calls to make: both orders, one random order per pair (seeded, stable
    per item), or the original order only."""
    if orders not in ORDERS:
        raise ConfigError(f"unknown --orders '{orders}'. Fix: use one of {', '.join(ORDERS)}")
    out = []
    for p in pairs:
        if orders == "both":
            out += [(p, "ab"), (p, "ba")]
        elif orders == "ab":
            out.append((p, "ab"))
        else:
            rng = random.Random(int(stable_id([seed, p.item]), 16))
            out.append((p, rng.choice(("ab", "ba"))))
    return out


def _base_label(judge: Judge, pair: Pair) -> dict:
    return dict(item=pair.item, rater=judge.rater, judge=judge.name, model_a=pair.a.policy,
                model_b=pair.b.policy, prompt=pair.prompt, response_a=pair.a.response, response_b=pair.b.response,
                prompt_id=pair.prompt_id, sample_a=pair.a.sample, sample_b=pair.b.sample)


def judge_pairs(judge: Judge, pairs: list[Pair], calls, *, orders: Orders = "both", seed: int = 0,
                stats: CallStats | None = None) -> list[Label]:
    """A pairwise LLM judge on every pair in the chosen orders: one label line per call."""
    stats = stats if stats is not None else CallStats()
    todo = pair_orders(pairs, orders, seed)
    keys = [f"{p.item}|{o}" for p, o in todo]
    requests = [pair_request(judge, p, o) for p, o in todo]
    completions = calls.run(judge, keys, requests, stats)
    labels = []
    for (pair, order), c in zip(todo, completions, strict=True):
        v = Verdict(error=f"call failed: {c.error}") if c.error else parse_pair(judge, c)
        winner, p_a = verdict_to_ab(v, order)
        extra: dict[str, Any] = {"top_logprobs": c.top_logprobs} if c.top_logprobs else {}
        if c.error:
            extra["call_failed"] = True
        labels.append(Label(**_base_label(judge, pair), order=order, winner=winner, p_a=p_a, raw=c.text,
                            error=v.error, parse=v.method if v.error is None else None,
                            usage={"input_tokens": c.input_tokens, "output_tokens": c.output_tokens},
                            cached=c.cached, latency_s=c.latency_s, **extra))
    return labels


# ---- pointwise judges ----------------------------------------------------------------------------------

# What a checker's result may carry, most informative first (rlaif.instructions.constraints' CheckResult has
# `share_passed`; a per-constraint result has `passed`).
_KEYS = ("share_passed", "score", "fraction", "passed", "ok", "followed")


def _passed(x: Any) -> float:
    """One checker result -> a number in [0, 1]."""
    if isinstance(x, bool):
        return float(x)
    if isinstance(x, (int, float)):
        return float(x)
    if isinstance(x, dict):
        for k in _KEYS:
            if k in x:
                return _passed(x[k])
        raise TypeError(f"checker result dict has none of {', '.join(_KEYS)}: {sorted(x)}")
    for k in _KEYS:
        if hasattr(x, k):
            return _passed(getattr(x, k))
    if isinstance(x, Iterable) and not isinstance(x, str):
        parts = [_passed(p) for p in x]
        if not parts:
            raise TypeError("checker returned an empty list")
        return sum(parts) / len(parts)
    raise TypeError(f"checker returned {type(x).__name__}; expected a bool, a number, or a list of results")


def rule_score(checker: Callable, constraints: list[dict] | None, response: str, binary: bool) -> Score:
    """The share of the constraints a response satisfies (binary: 1 only if it satisfies all)."""
    if not constraints:
        return Score(error="the prompt has no constraints to check")
    try:
        frac = _passed(checker(constraints, response))
    except Exception as e:  # a malformed constraint on one prompt is that item's problem, not the run's
        return Score(error=f"checker failed: {type(e).__name__}: {e}")
    if not 0.0 <= frac <= 1.0:
        return Score(error=f"checker returned {frac:g}, outside 0..1")
    return Score(value=(1.0 if frac >= 1.0 else 0.0) if binary else frac)


def sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


@dataclass
class ScoreContext:
    """What rule judges need beyond the response: constraints per prompt, the checkers loaded."""

    constraints: dict[str, list[dict]] = field(default_factory=dict)
    checkers: dict[str, Callable] = field(default_factory=dict)


def _score_record(judge: Judge, r: Response, s: Score, raw: str | None, c: Completion | None) -> ScoreRecord:
    return ScoreRecord(key=response_key(r), rater=judge.rater, prompt_id=r.prompt_id, policy=r.policy,
                       sample=r.sample, score=s.value if s.error is None else None, aspects=s.aspects or None,
                       raw=raw, error=s.error,
                       usage=Usage(input_tokens=c.input_tokens, output_tokens=c.output_tokens) if c else None,
                       cached=c.cached if c else None)


def score_responses(judge: Judge, responses: list[Response], calls, *, context: ScoreContext | None = None,
                    stats: CallStats | None = None) -> list[ScoreRecord]:
    """A pointwise or binary judge on each response (one call or check per response), by the judge's kind."""
    stats = stats if stats is not None else CallStats()
    return _POINTWISE[judge.kind](judge, responses, calls, context or ScoreContext(), stats)


def _score_llm(judge: Judge, responses: list[Response], calls, context: ScoreContext,
               stats: CallStats) -> list[ScoreRecord]:
    keys = [response_key(r) for r in responses]
    comps = calls.run(judge, keys, [point_request(judge, r) for r in responses], stats)
    out = []
    for r, c in zip(responses, comps, strict=True):
        if c.error:
            rec = _score_record(judge, r, Score(error=f"call failed: {c.error}"), None, c)
            rec.call_failed = True
        else:
            rec = _score_record(judge, r, parse_point(judge, c), c.text, c)
        out.append(rec)
    return out


def _score_rule(judge: Judge, responses: list[Response], calls, context: ScoreContext,
                stats: CallStats) -> list[ScoreRecord]:
    if judge.spec.checker not in context.checkers:
        context.checkers[judge.spec.checker] = rule_checker(judge.spec.checker)
    check = context.checkers[judge.spec.checker]
    out = []
    for r in responses:
        cons = r.constraints or context.constraints.get(r.prompt_id)
        s = rule_score(check, cons, r.response, binary=judge.mode == "binary")
        out.append(_score_record(judge, r, s, None if s.error else f"{s.value!r}", None))
    return out


def _score_reward_model(judge: Judge, responses: list[Response], calls, context: ScoreContext,
                        stats: CallStats) -> list[ScoreRecord]:
    if isinstance(calls, Replay):  # stored scores are reused under --reparse (the model is not re-run)
        out = []
        for r in responses:
            c = calls.get(judge.rater, response_key(r))
            out.append(_score_record(judge, r, Score(value=float(c.text)), c.text, None))
        return out
    rm = calls.reward_model(judge)
    before = (rm.stats.calls, rm.stats.cache_hits, rm.stats.failed)
    res = rm.score(RewardBatch([r.prompt for r in responses], [r.response for r in responses], [{}] * len(responses)))
    stats.calls += rm.stats.calls - before[0]
    stats.cache_hits += rm.stats.cache_hits - before[1]
    stats.failed += rm.stats.failed - before[2]
    stats.requests += len(responses)
    return [_score_record(judge, r, Score(value=v, error=e), None if v is None else repr(v), None)
            for r, v, e in zip(responses, res.values, res.errors, strict=True)]


# The judge kinds that score single responses (the judge YAML's `kind`); rule checkers and the trained
# reward model come from the registry of `rlaif.scoring`.
_POINTWISE = {"llm": _score_llm, "rule": _score_rule, "reward_model": _score_reward_model}


def labels_from_scores(judge: Judge, pairs: list[Pair], scores: list[ScoreRecord]) -> list[Label]:
    """One label per pair from two pointwise scores: the higher score wins; p_a is 1/0/0.5
    (`soft: hard`) or sigmoid((s_a - s_b) / scale) (`soft: sigmoid`, reward models)."""
    by_key = {s.key: s for s in scores if s.rater == judge.rater}
    out = []
    for pair in pairs:
        sa, sb = by_key.get(response_key(pair.a)), by_key.get(response_key(pair.b))
        base = _base_label(judge, pair)
        missing = [f"{side}: {s.error if s else 'not scored'}" for side, s in (("a", sa), ("b", sb))
                   if s is None or s.score is None]
        if missing:
            out.append(Label(**base, error="no valid score for " + "; ".join(missing),
                             score_a=sa.score if sa else None, score_b=sb.score if sb else None))
            continue
        d = sa.score - sb.score
        if judge.spec.soft == "sigmoid":
            p_a = sigmoid(d / judge.spec.scale)
        else:
            p_a = 1.0 if d > 0 else 0.0 if d < 0 else 0.5
        out.append(Label(**base, winner=winner_of(p_a), p_a=p_a, score_a=sa.score, score_b=sb.score))
    return out


def unique_responses(pairs: list[Pair]) -> list[Response]:
    seen: dict[str, Response] = {}
    for p in pairs:
        for r in (p.a, p.b):
            seen.setdefault(response_key(r), r)
    return list(seen.values())
