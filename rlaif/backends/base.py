"""The one backend protocol: requests in; text, first-token log-probs, usage, latency out.

Batch-first: `complete` takes a list so local engines (hf, vllm) can batch;
HTTP backends serve a batch of one per call and get their parallelism from the
call layer (rlaif.calls), which also caches, retries and counts every call.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

from rlaif.records import Message


@dataclass(frozen=True)
class Request:
    messages: list[Message]
    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    top_logprobs: int = 0  # >0: return this many alternatives for the first generated tokens
    logprob_positions: int = 1  # how many leading generated positions to report
    sample: int = 0  # sample index: part of the cache key, so n samples are n distinct calls

    def cache_fields(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Completion:
    text: str
    # One dict per leading generated position: token string -> log-probability.
    top_logprobs: list[dict[str, float]] | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    latency_s: float = 0.0
    finish_reason: str | None = None
    cached: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Backend(Protocol):
    spec: str  # e.g. "openai:gpt-4o-mini", "local"
    model: str  # the model name used in cache keys and records
    max_batch: int  # how many requests one `complete` call takes well (1 for HTTP)

    async def complete(self, requests: list[Request]) -> list[Completion]:
        """Serve a batch. Raise rlaif.calls' retryable/fatal errors on failure."""
        ...

    async def aclose(self) -> None: ...
