"""A small client of `rlaif serve` (httpx only), and a reward function for TRL's `GRPOTrainer`.

    from rlaif.client import RewardClient, reward_func

    with RewardClient("http://127.0.0.1:8000", token=os.environ.get("RLAIF_SERVE_TOKEN")) as rc:
        rc.score(["Name a colour."], ["Blue."])  # [ScoreResult(scores={'rm': 0.83}, ...)]
        rc.compare(["Name a colour."], ["Blue."], ["No."])  # [{'p_a': 0.9, 'winner': 'a', 'flipped': False, ...}]

    trainer = GRPOTrainer(model=..., reward_funcs=[reward_func("http://127.0.0.1:8000", scorer="rm")], ...)

The reward function takes TRL 1.16's arguments `(prompts, completions, **kwargs)` in both dataset formats
(plain strings, or conversational message lists) and returns one float per completion, or None for an item
the service could not score (TRL turns None into NaN and leaves it out of the reward sum: never a silent 0).
Dataset columns `constraints` and `reference` travel with each item (the rule scorer reads `constraints`).
429 and 5xx answers and dropped connections are retried (honouring Retry-After); other refusals raise
`ServiceError` with the service's message. rlaif's own trainers reach the service through
`--reward http://HOST:PORT/get_reward` instead (`rlaif.rewards.remote`).
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
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

    def _wait(self, attempt: int, response: httpx.Response | None) -> float:
        after = response.headers.get("retry-after") if response is not None else None
        if after is not None:
            try:
                return min(float(after), 60.0)
            except ValueError:
                pass
        return self.backoff_s * 2 ** attempt

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
                if response.status_code < 400:
                    return response.json()
                problem = _message(response)
                if response.status_code != 429 and response.status_code < 500:
                    raise ServiceError(f"{self.url}{path}: HTTP {response.status_code}: {problem}")
            if attempt < self.retries:
                time.sleep(self._wait(attempt, response))
        raise ServiceError(f"{self.url}{path}: {problem} (after {self.retries + 1} attempts). Fix: check that "
                           "`rlaif serve` runs there and is not overloaded")

    def judges(self) -> dict:
        return self.request("GET", "/v1/judges")

    def score(self, prompts: Sequence[Any], responses: Sequence[str], *, scorers: list[str] | None = None,
              constraints: Sequence[Any] | None = None, references: Sequence[Any] | None = None) -> list[ScoreResult]:
        """Pointwise scores; prompts are strings or chat message lists."""
        items = []
        for i, (p, r) in enumerate(zip(prompts, responses, strict=True)):
            item: dict[str, Any] = {"prompt": p, "response": r}
            if constraints is not None and constraints[i]:
                item["constraints"] = constraints[i]
            if references is not None and isinstance(references[i], str) and references[i]:
                item["reference"] = references[i]
            items.append(item)
        out: list[ScoreResult] = []
        for lo in range(0, len(items), CHUNK):
            body: dict[str, Any] = {"items": items[lo:lo + CHUNK]}
            if scorers is not None:
                body["scorers"] = scorers
            for r in self.request("POST", "/v1/score", body)["results"]:
                out.append(ScoreResult(r["scores"], r.get("raw") or {}, r.get("errors") or {}, r.get("id")))
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


def reward_func(url: str, token: str | None = None, *, scorer: str | None = None, timeout: float = DEFAULT_TIMEOUT_S,
                retries: int = 3) -> Callable[..., list[float | None]]:
    """A reward function for `GRPOTrainer(reward_funcs=[...])` backed by the service's `scorer` (default: the
    one /get_reward uses). Its `__name__` (what TRL logs) is `rlaif_<scorer>`."""
    client = RewardClient(url, token, timeout=timeout, retries=retries)
    name = scorer or client.judges()["reward"]

    def reward(prompts: list, completions: list, **kwargs: Any) -> list[float | None]:
        results = client.score(list(prompts), [_text(c) for c in completions], scorers=[name],
                               constraints=kwargs.get("constraints"), references=kwargs.get("reference"))
        return [r.scores.get(name) for r in results]

    reward.__name__ = reward.__qualname__ = f"rlaif_{name}"
    reward.client = client  # type: ignore[attr-defined]  (to close it, or to call score/compare directly)
    return reward
