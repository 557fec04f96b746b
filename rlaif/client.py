"""A small client of `rlaif serve` (httpx only), and a reward function for TRL's `GRPOTrainer`.

    from rlaif.client import RewardClient, reward_func

    with RewardClient("http://127.0.0.1:8000", token=os.environ.get("RLAIF_SERVE_TOKEN")) as rc:
        rc.score(["Name a colour."], ["Blue."])  # [ScoreResult(scores={'rm': 0.83}, ...)]
        rc.compare(["Name a colour."], ["Blue."], ["No."])  # [{'p_a': 0.9, 'winner': 'a', 'flipped': False, ...}]

    trainer = GRPOTrainer(model=..., reward_funcs=[reward_func("http://127.0.0.1:8000", scorer="rm")], ...)
    trainer = GRPOTrainer(model=..., reward_funcs=[async_reward_func(URL, weights={"rm": 1, "rule": 0.5})], ...)

The reward function takes TRL 1.16's arguments `(prompts, completions, **kwargs)` in both dataset formats
(plain strings, or conversational message lists) and returns one float per completion, or None for an item
the service could not score (TRL turns None into NaN and leaves it out of the reward sum: never a silent 0).
Dataset columns `constraints` and `reference` travel with each item (the rule scorer reads `constraints`).
`weights={scorer: weight}` makes the reward the weighted sum of several scorers (None when a scorer with a
non-zero weight gave None). When TRL passes `log_metric` / `log_extra`, each scorer's mean and unscored count
go to the trainer's metrics (`NAME/SCORER`, `NAME/SCORER/unscored`, `NAME/unscored`) and each item's values and
error to its completions table. `async_reward_func` is the same as an `async def`, which TRL runs
concurrently with the other async reward functions (its requests go out concurrently too).
429 and 5xx answers and dropped connections are retried (honouring Retry-After); other refusals raise
`ServiceError` with the service's message. rlaif's own trainers reach the service through
`--reward http://HOST:PORT/get_reward` instead (`rlaif.rewards.remote`).
"""
from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from rlaif.errors import RlaifError

DEFAULT_TIMEOUT_S = 180.0
CHUNK = 256  # items per request (the service's default --max-items is 1024)


class ServiceError(RlaifError):
    """The service refused a request or could not be reached (after retries)."""


@dataclass
class ScoreResult:
    """One item of `/v1/score`: per scorer, the score (None when it failed), the raw output and the error."""

    scores: dict[str, float | None]
    raw: dict[str, str | None] = field(default_factory=dict)
    errors: dict[str, str | None] = field(default_factory=dict)
    id: str | None = None


def _base(url: str) -> str:
    url = url.rstrip("/")
    for suffix in ("/get_reward", "/v1/score", "/v1/compare"):
        url = url.removesuffix(suffix)
    return url


class RewardClient:
    def __init__(self, url: str, token: str | None = None, *, timeout: float = DEFAULT_TIMEOUT_S, retries: int = 3,
                 backoff_s: float = 0.5):
        self.url = _base(url)
        self.retries, self.backoff_s = max(0, retries), backoff_s
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(timeout=timeout, headers=headers)

    def request(self, method: str, path: str, body: dict | None = None) -> Any:
        """One call, retried on 429/5xx/transport errors; the JSON answer, or ServiceError."""
        problem = ""
        for attempt in range(self.retries + 1):
            response = None
            try:
                response = self._http.request(method, self.url + path, json=body)
            except httpx.TransportError as e:
                problem = f"{type(e).__name__}: {e}"
            else:
                problem = _answer_or_problem(response, self.url + path)
                if problem is None:
                    return response.json()
            if attempt < self.retries:
                time.sleep(_wait(self.backoff_s, attempt, response))
        raise _gave_up(self.url + path, problem, self.retries)

    def judges(self) -> dict:
        return self.request("GET", "/v1/judges")

    def score(self, prompts: Sequence[Any], responses: Sequence[str], *, scorers: list[str] | None = None,
              constraints: Sequence[Any] | None = None, references: Sequence[Any] | None = None) -> list[ScoreResult]:
        """Pointwise scores; prompts are strings or chat message lists."""
        out: list[ScoreResult] = []
        for body in _score_bodies(prompts, responses, scorers, constraints, references):
            out += _score_results(self.request("POST", "/v1/score", body))
        return out

    def compare(self, prompts: Sequence[Any], responses_a: Sequence[str], responses_b: Sequence[str], *,
                judge: str | None = None) -> list[dict]:
        """A pairwise judge in both orders: per item p_a, winner, flipped, and each order's verdict."""
        items = [{"prompt": p, "response_a": a, "response_b": b}
                 for p, a, b in zip(prompts, responses_a, responses_b, strict=True)]
        out: list[dict] = []
        for lo in range(0, len(items), CHUNK):
            body: dict[str, Any] = {"items": items[lo:lo + CHUNK], **({"judge": judge} if judge else {})}
            out += self.request("POST", "/v1/compare", body)["results"]
        return out

    def get_reward(self, query: list[str], prompts: list[str] | None = None, labels: list | None = None) -> dict:
        """OpenRLHF's /get_reward, as its trainers call it."""
        return self.request("POST", "/get_reward", {"query": query, "prompts": prompts, "labels": labels})

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RewardClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class AsyncRewardClient:
    """`RewardClient.score` as a coroutine (httpx's async client), for reward functions that TRL awaits; chunks
    go out concurrently. One client per event loop: httpx's connections belong to the loop that opened them."""

    def __init__(self, url: str, token: str | None = None, *, timeout: float = DEFAULT_TIMEOUT_S, retries: int = 3,
                 backoff_s: float = 0.5):
        self.url = _base(url)
        self.retries, self.backoff_s, self.timeout = max(0, retries), backoff_s, timeout
        self.headers = {"authorization": f"Bearer {token}"} if token else {}

    async def request(self, http: httpx.AsyncClient, method: str, path: str, body: dict | None = None) -> Any:
        problem = ""
        for attempt in range(self.retries + 1):
            response = None
            try:
                response = await http.request(method, self.url + path, json=body)
            except httpx.TransportError as e:
                problem = f"{type(e).__name__}: {e}"
            else:
                problem = _answer_or_problem(response, self.url + path)
                if problem is None:
                    return response.json()
            if attempt < self.retries:
                await asyncio.sleep(_wait(self.backoff_s, attempt, response))
        raise _gave_up(self.url + path, problem, self.retries)

    async def score(self, prompts: Sequence[Any], responses: Sequence[str], *, scorers: list[str] | None = None,
                    constraints: Sequence[Any] | None = None,
                    references: Sequence[Any] | None = None) -> list[ScoreResult]:
        bodies = _score_bodies(prompts, responses, scorers, constraints, references)
        async with httpx.AsyncClient(timeout=self.timeout, headers=self.headers) as http:
            answers = await asyncio.gather(*(self.request(http, "POST", "/v1/score", b) for b in bodies))
        return [r for answer in answers for r in _score_results(answer)]


def _wait(backoff_s: float, attempt: int, response: httpx.Response | None) -> float:
    after = response.headers.get("retry-after") if response is not None else None
    if after is not None:
        try:
            return min(float(after), 60.0)
        except ValueError:
            pass
    return backoff_s * 2 ** attempt


def _answer_or_problem(response: httpx.Response, where: str) -> str | None:
    """None for an answer to use; the problem of a retryable refusal (429, 5xx); ServiceError for the others."""
    if response.status_code < 400:
        return None
    problem = _message(response)
    if response.status_code != 429 and response.status_code < 500:
        raise ServiceError(f"{where}: HTTP {response.status_code}: {problem}")
    return problem


def _gave_up(where: str, problem: str, retries: int) -> ServiceError:
    return ServiceError(f"{where}: {problem} (after {retries + 1} attempts). Fix: check that `rlaif serve` runs there "
                        "and is not overloaded")


def _score_bodies(prompts: Sequence[Any], responses: Sequence[str], scorers: list[str] | None,
                  constraints: Sequence[Any] | None, references: Sequence[Any] | None) -> list[dict]:
    """The /v1/score request bodies of these items, CHUNK items each."""
    items = []
    for i, (p, r) in enumerate(zip(prompts, responses, strict=True)):
        item: dict[str, Any] = {"prompt": p, "response": r}
        if constraints is not None and constraints[i]:
            item["constraints"] = constraints[i]
        if references is not None and isinstance(references[i], str) and references[i]:
            item["reference"] = references[i]
        items.append(item)
    return [{"items": items[lo:lo + CHUNK], **({"scorers": scorers} if scorers is not None else {})}
            for lo in range(0, len(items), CHUNK)]


def _score_results(answer: dict) -> list[ScoreResult]:
    return [ScoreResult(r["scores"], r.get("raw") or {}, r.get("errors") or {}, r.get("id"))
            for r in answer["results"]]


def _message(response: httpx.Response) -> str:
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return response.text[:300]
    if isinstance(error, dict):
        message = str(error.get("message", ""))
        fix = f"{'' if message.endswith('.') else '.'} Fix: {error['fix']}" if error.get("fix") else ""
        return f"{message}{fix}"
    return response.text[:300]


def _text(completion: Any) -> str:
    """A TRL completion (a string, or the conversational list of assistant messages) -> its text."""
    if isinstance(completion, str):
        return completion
    return "".join(str(m.get("content", "")) for m in completion if m.get("role", "assistant") == "assistant")


@dataclass(frozen=True)
class _Sources:
    """What a TRL reward function asks the service for: the scorers and their weights, and its name."""

    weights: dict[str, float]
    name: str

    def combine(self, results: list[ScoreResult], kwargs: dict) -> list[float | None]:
        """The weighted sum per item (None when a scorer with a non-zero weight gave None), reported through
        TRL's `log_metric` / `log_extra` when it passes them."""
        per = {s: [r.scores.get(s) for r in results] for s in self.weights}
        rewards: list[float | None] = []
        for i in range(len(results)):
            parts = [(w, per[s][i]) for s, w in self.weights.items() if w != 0]
            rewards.append(None if any(v is None for _, v in parts) else sum(w * v for w, v in parts))
        self.report(per, results, rewards, kwargs)
        return rewards

    def report(self, per: dict[str, list], results: list[ScoreResult], rewards: list, kwargs: dict) -> None:
        log_metric, log_extra = kwargs.get("log_metric"), kwargs.get("log_extra")
        if callable(log_metric):
            for source, values in per.items():
                got = [v for v in values if v is not None]
                if got:
                    log_metric(f"{self.name}/{source}", sum(got) / len(got))
                log_metric(f"{self.name}/{source}/unscored", float(len(values) - len(got)))
            log_metric(f"{self.name}/unscored", float(sum(r is None for r in rewards)))
        if callable(log_extra):
            if len(per) > 1:
                for source, values in per.items():
                    log_extra(f"{self.name}/{source}", [math.nan if v is None else v for v in values])
            errors = ["; ".join(f"{s}: {e}" for s, e in r.errors.items() if e and s in per) or None for r in results]
            if any(errors):
                log_extra(f"{self.name}/error", errors)


def _sources(client: RewardClient, scorer: str | None, weights: dict[str, float] | None) -> _Sources:
    if weights is not None and scorer is not None:
        raise ValueError("give scorer= (one scorer) or weights= ({scorer: weight}), not both")
    if weights is not None:
        if not weights or any(not isinstance(w, (int, float)) or not math.isfinite(w) for w in weights.values()):
            raise ValueError(f"weights={weights!r}: give each scorer a finite weight, e.g. {{'rm': 1.0, 'rule': 0.5}}")
        return _Sources(dict(weights), "rlaif_" + "_".join(weights))
    name = scorer or client.judges()["reward"]
    return _Sources({name: 1.0}, f"rlaif_{name}")


def _named(fn: Any, sources: _Sources, client: Any) -> Any:
    fn.__name__ = fn.__qualname__ = sources.name  # what TRL logs the reward under
    fn.client = client  # to close it, or to call score/compare directly
    return fn


def reward_func(url: str, token: str | None = None, *, scorer: str | None = None,
                weights: dict[str, float] | None = None, timeout: float = DEFAULT_TIMEOUT_S,
                retries: int = 3) -> Callable[..., list[float | None]]:
    """A reward function for `GRPOTrainer(reward_funcs=[...])` backed by the service's `scorer` (default: the
    one /get_reward uses), or the weighted sum of several (`weights`). Its `__name__` (what TRL logs) is
    `rlaif_<scorer>`."""
    client = RewardClient(url, token, timeout=timeout, retries=retries)
    sources = _sources(client, scorer, weights)

    def reward(prompts: list, completions: list, **kwargs: Any) -> list[float | None]:
        results = client.score(list(prompts), [_text(c) for c in completions], scorers=list(sources.weights),
                               constraints=kwargs.get("constraints"), references=kwargs.get("reference"))
        return sources.combine(results, kwargs)

    return _named(reward, sources, client)


def async_reward_func(url: str, token: str | None = None, *, scorer: str | None = None,
                      weights: dict[str, float] | None = None, timeout: float = DEFAULT_TIMEOUT_S,
                      retries: int = 3) -> Callable[..., Awaitable[list[float | None]]]:
    """`reward_func` as an `async def`: TRL awaits it beside its other async reward functions, concurrently."""
    with RewardClient(url, token, timeout=timeout, retries=retries) as sync:
        sources = _sources(sync, scorer, weights)
    client = AsyncRewardClient(url, token, timeout=timeout, retries=retries)

    async def reward(prompts: list, completions: list, **kwargs: Any) -> list[float | None]:
        results = await client.score(list(prompts), [_text(c) for c in completions], scorers=list(sources.weights),
                                     constraints=kwargs.get("constraints"), references=kwargs.get("reference"))
        return sources.combine(results, kwargs)

    return _named(reward, sources, client)
