"""A remote reward server speaking OpenRLHF's `/get_reward` contract, over httpx.

Request (POST JSON, many items per request, `batch_size` at most):

    {"query": [prompt text + response, ...], "prompts": [prompt text, ...], "labels": [label or null, ...]}

- prompt text: the prompt's chat messages through the policy tokenizer's chat template with the generation
  prompt (`apply_chat_template(messages, tokenize=False, add_generation_prompt=True)`), as OpenRLHF's prompt
  datasets render them; without a tokenizer, the user turn's text (a "User: ..." transcript for several
  turns) followed by a blank line.
- query: prompt text immediately followed by the response text. No EOS is appended (the response text has
  special tokens stripped); OpenRLHF's `serve_rm` strips and re-adds the EOS itself.
- labels: metadata["label"], else metadata["reference"], else null (OpenRLHF's dataset `label_key`).

With `RLAIF_SERVE_TOKEN` set, every request carries `Authorization: Bearer $RLAIF_SERVE_TOKEN` (what a
token-protected `rlaif serve` asks for).

Answer: `{"rewards": [...], "scores": [...], "extra_logs": {...}}` (a bare list of rewards is accepted
too); `rewards` is used, one per item, and a null reward takes its reason from `errors[i]` when the server
sends one (`rlaif serve` does). Timeouts, dropped connections, 429 and 5xx are retried with
exponential backoff; anything else, or retries exhausted, makes that request's items None with the reason.
"""
from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from rlaif.judge.templates import render_prompt
from rlaif.redact import remember_secret
from rlaif.rewards.spec import RewardSource, ScorerSettings
from rlaif.scoring import RewardBatch, SourceScores, checked_list

DEFAULT_TIMEOUT_S = 180.0  # OpenRLHF's client timeout
TOKEN_ENV = "RLAIF_SERVE_TOKEN"  # sent as `Authorization: Bearer ...` when set


class HttpReward:
    def __init__(self, url: str, *, name: str, tokenizer: Any = None, timeout: float | None = None,
                 batch_size: int = 32, concurrency: int = 8, retries: int = 3, backoff_s: float = 1.0):
        import httpx

        self.url, self.name, self.tokenizer = url, name, tokenizer
        self.timeout = timeout or DEFAULT_TIMEOUT_S
        self.batch_size, self.concurrency = max(1, batch_size), max(1, concurrency)
        self.retries, self.backoff_s = max(0, retries), backoff_s
        token = os.environ.get(TOKEN_ENV)  # a token-protected `rlaif serve`: the same variable on both sides
        if token:
            remember_secret(token)
        self.client = httpx.Client(timeout=self.timeout, headers={"authorization": f"Bearer {token}"} if token else {})
        self.extra_logs: list[dict] = []  # the server's extra_logs of the last batch, one dict per request

    def prompt_text(self, messages: list[dict]) -> str:
        if self.tokenizer is not None and getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return render_prompt(messages) + "\n\n"

    def payload(self, batch: RewardBatch, lo: int, hi: int) -> dict:
        prompts = [self.prompt_text(p) for p in batch.prompts[lo:hi]]
        labels = [m.get("label", m.get("reference")) for m in batch.metadata[lo:hi]]
        return {"query": [p + r for p, r in zip(prompts, batch.responses[lo:hi], strict=True)],
                "prompts": prompts, "labels": labels}

    def score(self, batch: RewardBatch) -> SourceScores:
        n = len(batch.responses)
        bounds = [(lo, min(lo + self.batch_size, n)) for lo in range(0, n, self.batch_size)]
        payloads = [self.payload(batch, lo, hi) for lo, hi in bounds]  # tokenizers stay on this thread
        with ThreadPoolExecutor(min(self.concurrency, max(1, len(bounds)))) as pool:
            parts = list(pool.map(lambda p: self._request(p, len(p["query"])), payloads))
        self.extra_logs = [p[1] for p in parts if p[1]]
        return SourceScores([v for p in parts for v in p[0].values], [e for p in parts for e in p[0].errors])

    def _request(self, payload: dict, n: int) -> tuple[SourceScores, dict]:
        import httpx

        problem = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                r = self.client.post(self.url, json=payload)
            except httpx.TimeoutException:
                problem = f"no answer within {self.timeout:g}s"
                continue
            except httpx.TransportError as e:
                problem = f"connection failed ({type(e).__name__}: {e})"
                continue
            if r.status_code == 429 or r.status_code >= 500:
                problem = f"HTTP {r.status_code}: {r.text[:200]}"
                continue
            if r.status_code >= 400:
                return SourceScores.failed(n, f"{self.name}: HTTP {r.status_code}: {r.text[:200]}"), {}
            return self._parse(r, n)
        tries = self.retries + 1
        return SourceScores.failed(n, f"{self.name}: {problem} (after {tries} attempt{'s' * (tries > 1)})"), {}

    def _parse(self, r: Any, n: int) -> tuple[SourceScores, dict]:
        try:
            body = r.json()
        except ValueError:
            return SourceScores.failed(n, f"{self.name}: the answer is not JSON: {r.text[:200]!r}"), {}
        if isinstance(body, list):
            return checked_list(body, n, self.name), {}
        if not isinstance(body, dict) or "rewards" not in body:
            keys = sorted(body) if isinstance(body, dict) else type(body).__name__
            return SourceScores.failed(n, f"{self.name}: the answer has no 'rewards' (got {keys})"), {}
        logs = body.get("extra_logs")
        out = checked_list(body["rewards"], n, self.name)
        reasons = body.get("errors")  # `rlaif serve` says why an item has no reward
        if isinstance(reasons, list) and len(reasons) == n:
            out.errors = [f"{self.name}: {why}" if v is None and isinstance(why, str) and why else e
                          for v, e, why in zip(out.values, out.errors, reasons, strict=True)]
        return out, logs if isinstance(logs, dict) else {}

    def close(self) -> None:
        self.client.close()


def http_scorer(src: RewardSource, settings: ScorerSettings) -> HttpReward:
    """The registry's factory of the http kind (`rlaif.scoring.KINDS`)."""
    return HttpReward(src.arg, name=src.name, tokenizer=settings.tokenizer, timeout=settings.timeout,
                      batch_size=settings.http_batch_size, concurrency=settings.concurrency,
                      retries=settings.http_retries, backoff_s=settings.http_backoff_s)
