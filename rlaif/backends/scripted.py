"""A backend whose completions come from a Python function: judges and policies with known behaviour, for tests.

    backend = ScriptedBackend(lambda req: "A" if "first" in req.messages[-1]["content"] else "B", model="oracle")

The function takes a `Request` and returns a `str` or a `Completion` (or an awaitable of
either); raising `TransientError` exercises the retry path, `BackendError` the fail-fast
one. Every request served is appended to `.calls` (and each batch to `.batches`), so
tests can count calls exactly. Distinct behaviours need distinct `model` names: the
model name is part of the call cache key.
"""
from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

from rlaif.backends.base import Backend, Completion, Request


class ScriptedBackend(Backend):
    def __init__(self, fn: Callable[[Request], Any], *, model: str = "scripted", max_batch: int = 1,
                 latency_s: float = 0.0, timeout_s: float | None = None, price_model: str | None = None):
        self.fn = fn
        self.model = model
        self.spec = f"scripted:{model}"
        self.max_batch = max_batch
        self.latency_s = latency_s
        self.timeout_s = timeout_s
        self.price_model = price_model
        self.calls: list[Request] = []
        self.batches: list[list[Request]] = []

    async def complete(self, requests: list[Request]) -> list[Completion]:
        self.batches.append(list(requests))
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        out = []
        for req in requests:
            self.calls.append(req)
            value = self.fn(req)
            if inspect.isawaitable(value):
                value = await value
            if isinstance(value, str):
                words_in = sum(len(str(m.get("content", "")).split()) for m in req.messages)
                value = Completion(text=value, input_tokens=words_in, output_tokens=len(value.split()),
                                   finish_reason="stop")
            elif not isinstance(value, Completion):
                raise TypeError(f"the scripted function must return str or Completion, not {type(value).__name__}")
            out.append(value)
        return out

    async def aclose(self) -> None:
        return None
