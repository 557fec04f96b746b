"""Every model call goes through here: bounded concurrency, retries, the SQLite cache, usage and cost.

`complete_all(backend, requests)` (sync) and `acomplete_all` (async) return a
`CallResult` whose `.completions` follow the request order. A request already in the
cache ($RLAIF_CACHE/calls.sqlite, WAL) costs no call, so a re-run or a resumed run
repeats no finished work. Misses are grouped into batches of `backend.max_batch`
(local engines batch; HTTP backends take one request per call) and served by
`concurrency` workers. Transient failures (429, 5xx, timeouts, dropped connections)
are retried with exponential backoff and jitter, honouring Retry-After; other
failures stop the run with the server's message (or, with on_error="record", come
back as completions with `.error` set). Results are cached and handed to
`on_result(index, completion)` as they arrive, so callers can append output
incrementally.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import queue
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from rlaif.backends.base import Backend, Completion, Request, TransientError
from rlaif.errors import BackendError
from rlaif.localmodel import cache_root

__all__ = ["CallCache", "CallResult", "CallStats", "RetryPolicy", "TransientError", "acomplete_all", "cache_key",
           "complete_all", "price_per_mtok"]

# USD per million tokens (input, output), matched by longest model-name prefix.
# Only consulted for backends that bill (OpenAI/Anthropic APIs, not local servers).
PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-3.5-turbo": (0.50, 1.50),
    "o4-mini": (1.10, 4.40),
    "claude-3-haiku": (0.25, 1.25),
    "claude-3-5-haiku": (0.80, 4.00),
    "claude-haiku-4-5": (1.00, 5.00),
    "claude-3-5-sonnet": (3.00, 15.00),
    "claude-3-7-sonnet": (3.00, 15.00),
    "claude-sonnet-4": (3.00, 15.00),
    "claude-opus-4": (15.00, 75.00),
}


_deadline = getattr(asyncio, "timeout", None)


def price_per_mtok(model: str | None) -> tuple[float, float] | None:
    if not model:
        return None
    best = max((p for p in PRICES if model.startswith(p)), key=len, default=None)
    return PRICES[best] if best else None


@dataclass
class RetryPolicy:
    max_attempts: int = 6  # first try included
    initial_s: float = 1.0  # first backoff; doubles each retry, plus up to initial_s of jitter
    max_wait_s: float = 60.0  # cap on one wait, Retry-After included


@dataclass
class CallStats:
    requests: int = 0  # requests asked for
    cache_hits: int = 0  # served from the cache (or a duplicate of another request in the same run)
    calls: int = 0  # requests the backend served successfully in this run
    failed: int = 0  # requests that failed for good
    attempts: int = 0  # backend.complete invocations, retries included
    retries: int = 0
    input_tokens: int = 0  # tokens of the calls made in this run (cache hits cost nothing)
    output_tokens: int = 0
    cost_usd: float | None = None  # None: the price table does not know this model
    wall_s: float = 0.0

    def summary(self) -> str:
        cost = f"${self.cost_usd:.4f}" if self.cost_usd is not None else "cost unknown"
        return (f"{self.requests} requests: {self.calls} calls, {self.cache_hits} cached, {self.failed} failed, "
                f"{self.retries} retries; tokens in {self.input_tokens}, out {self.output_tokens}; {cost}; "
                f"{self.wall_s:.1f}s")


@dataclass
class CallResult:
    completions: list[Completion]
    stats: CallStats = field(default_factory=CallStats)


def cache_key(backend: Backend, request: Request) -> str:
    """Hash of backend kind, model, messages, sampling parameters and sample index.

    The base URL is not part of it: a run spread over several servers of the same
    model, or moved to another one, stays cached.
    """
    blob = json.dumps({"backend": backend.spec.split(":", 1)[0], "model": backend.model,
                       "request": request.cache_fields()}, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    key TEXT PRIMARY KEY,
    backend TEXT NOT NULL,
    model TEXT NOT NULL,
    request TEXT NOT NULL,
    completion TEXT NOT NULL,
    created REAL NOT NULL
)
"""


def _connect(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(path, timeout=60, check_same_thread=False)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a crash loses at most the last commits, never corrupts
    con.execute(_SCHEMA)
    con.commit()
    return con


class CallCache:
    """The persistent call cache. Reads are bulk lookups; writes go through one writer
    thread that commits whatever has queued up, so the event loop never waits on disk."""

    HANDOFF_S = 0.1

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else cache_root() / "calls.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._read = _connect(self.path)
        self._queue: queue.Queue = queue.Queue()
        self._pending: list[tuple] = []
        self._handed = time.monotonic()
        self._writer = threading.Thread(target=self._write_loop, name="rlaif-cache-writer", daemon=True)
        self._writer.start()

    def get_many(self, keys: Sequence[str]) -> dict[str, Completion]:
        found: dict[str, Completion] = {}
        keys = list(dict.fromkeys(keys))
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            marks = ",".join("?" * len(chunk))
            for key, blob in self._read.execute(f"SELECT key, completion FROM calls WHERE key IN ({marks})", chunk):
                found[key] = Completion(**json.loads(blob))
        return found

    def put(self, key: str, backend: Backend, request: Request, completion: Completion) -> None:
        record = {**completion.__dict__, "cached": False}
        self._pending.append((key, backend.spec, backend.model, json.dumps(request.cache_fields(), ensure_ascii=False),
                              json.dumps(record, ensure_ascii=False), time.time()))
        # Hand rows to the writer in small batches: one thread wake-up per row cost more CPU
        # than the JSON. A killed run loses at most HANDOFF_S of cache rows (its output keeps them).
        now = time.monotonic()
        if len(self._pending) >= 64 or now - self._handed >= self.HANDOFF_S:
            self._handoff(now)

    def _handoff(self, now: float | None = None) -> None:
        if self._pending:
            self._queue.put(self._pending)
            self._pending = []
        self._handed = time.monotonic() if now is None else now

    def _write_loop(self) -> None:
        con = _connect(self.path)
        try:
            while True:
                item = self._queue.get()
                rows, done, flushes = [], False, []
                while True:
                    if item is None:
                        done = True
                    elif isinstance(item, threading.Event):
                        flushes.append(item)
                    else:
                        rows.extend(item)
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                if rows:
                    con.executemany("INSERT OR REPLACE INTO calls VALUES (?, ?, ?, ?, ?, ?)", rows)
                    con.commit()
                for ev in flushes:
                    ev.set()
                if done:
                    return
        finally:
            con.close()

    def flush(self) -> None:
        """Block until everything put so far is committed."""
        self._handoff()
        ev = threading.Event()
        self._queue.put(ev)
        ev.wait()

    def close(self) -> None:
        if self._writer.is_alive():
            self._handoff()
            self._queue.put(None)
            self._writer.join()
        self._read.close()

    def __len__(self) -> int:
        return self._read.execute("SELECT COUNT(*) FROM calls").fetchone()[0]


def _wait(policy: RetryPolicy) -> Callable[[RetryCallState], float]:
    backoff = wait_exponential(multiplier=policy.initial_s, max=policy.max_wait_s) + wait_random(0, policy.initial_s)

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        after = getattr(exc, "retry_after", None)
        if after is not None:  # the server said when: honour it, within our cap
            return min(float(after), policy.max_wait_s)
        return backoff(state)

    return wait


class _Progress:
    """A rich progress bar on stderr, or nothing."""

    def __init__(self, enabled: bool, total: int, description: str):
        self._bar = None
        if enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[info]}"), TimeRemainingColumn(),
                                 console=Console(stderr=True), transient=False)
            self._task = self._bar.add_task(description, total=total, info="")
            self._bar.start()

    def advance(self, n: int, info: str) -> None:
        if self._bar is not None and n:
            self._bar.update(self._task, advance=n, info=info)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


async def acomplete_all(
    backend: Backend,
    requests: Sequence[Request],
    *,
    concurrency: int = 8,
    cache: bool | CallCache = True,
    on_result: Callable[[int, Completion], Any] | None = None,
    progress: bool | None = None,
    retry: RetryPolicy | None = None,
    on_error: Literal["raise", "record"] = "raise",
    summary: bool | None = None,
    description: str | None = None,
) -> CallResult:
    """Serve all requests through the cache and the backend; see the module docstring.

    progress: None shows the bar when stderr is a terminal. summary: print the usage
    line on stderr at the end (None: when the bar is shown).
    """
    if concurrency < 1:
        raise ValueError("concurrency must be >= 1")
    retry = retry or RetryPolicy()
    started = time.perf_counter()
    n = len(requests)
    stats = CallStats(requests=n)
    results: list[Completion | None] = [None] * n
    price = price_per_mtok(getattr(backend, "price_model", None))
    stats.cost_usd = 0.0 if price else None
    store = cache if isinstance(cache, CallCache) else (CallCache() if cache else None)
    show = sys.stderr.isatty() if progress is None else progress
    bar = _Progress(show, n, description or backend.spec)

    def info() -> str:
        retries = f", {stats.retries} retries" if stats.retries else ""
        return f"{stats.calls} calls, {stats.cache_hits} cached{retries}"

    def deliver(index: int, completion: Completion) -> None:
        results[index] = completion
        if on_result is not None:
            on_result(index, completion)

    try:
        keys = [cache_key(backend, r) for r in requests]
        hits = await asyncio.to_thread(store.get_many, keys) if store is not None else {}
        # Identical requests in one run are one call; its result fans out to all of them.
        groups: dict[str, list[int]] = {}
        for i, key in enumerate(keys):
            if key in hits:
                c = hits[key]
                deliver(i, replace(c, cached=True))
                stats.cache_hits += 1
            else:
                groups.setdefault(key, []).append(i)
        bar.advance(stats.cache_hits, info())
        pending = list(groups.items())
        size = max(1, int(getattr(backend, "max_batch", 1) or 1))
        batches = [pending[i:i + size] for i in range(0, len(pending), size)]
        work: asyncio.Queue = asyncio.Queue()
        for b in batches:
            work.put_nowait(b)
        fatal: list[BaseException] = []
        timeout = getattr(backend, "timeout_s", None)

        async def call(batch_requests: list[Request]) -> list[Completion]:
            def count_retry(_state: RetryCallState) -> None:
                stats.retries += 1

            retrying = AsyncRetrying(stop=stop_after_attempt(retry.max_attempts), wait=_wait(retry),
                                     retry=retry_if_exception(lambda e: isinstance(e, TransientError) and not fatal),
                                     before_sleep=count_retry,
                                     reraise=True)
            async for attempt in retrying:
                with attempt:
                    stats.attempts += 1
                    t0 = time.perf_counter()
                    try:
                        if not timeout:
                            out = await backend.complete(batch_requests)
                        elif _deadline is not None:  # 3.11+: no extra task per call, unlike wait_for
                            async with _deadline(timeout):
                                out = await backend.complete(batch_requests)
                        else:
                            out = await asyncio.wait_for(backend.complete(batch_requests), timeout)
                    except asyncio.TimeoutError:
                        raise TransientError(f"{backend.spec}: no answer within {timeout:g}s") from None
                    if len(out) != len(batch_requests):
                        raise BackendError(f"{backend.spec} returned {len(out)} completions for "
                                           f"{len(batch_requests)} requests")
                    for c in out:
                        c.latency_s = c.latency_s or (time.perf_counter() - t0)
                    return out
            raise AssertionError("unreachable")  # pragma: no cover

        async def worker() -> None:
            while not fatal:
                try:
                    batch = work.get_nowait()
                except asyncio.QueueEmpty:
                    return
                batch_requests = [requests[idx[0]] for _, idx in batch]
                try:
                    out = await call(batch_requests)
                except TransientError as e:
                    err: BaseException = BackendError(f"gave up after {retry.max_attempts} attempts: {e}")
                    out = None
                except BackendError as e:
                    err, out = e, None
                if out is None:
                    fails_everything = getattr(err, "status", None) in (401, 403, 404)
                    if on_error == "raise" or fails_everything:
                        fatal.append(err)
                        return
                    for _, idx in batch:
                        stats.failed += len(idx)
                        for i in idx:
                            deliver(i, Completion(text="", error=str(err)))
                    bar.advance(sum(len(idx) for _, idx in batch), info())
                    continue
                for (key, idx), req, comp in zip(batch, batch_requests, out, strict=True):
                    stats.calls += 1
                    stats.input_tokens += comp.input_tokens
                    stats.output_tokens += comp.output_tokens
                    if price:
                        stats.cost_usd += (comp.input_tokens * price[0] + comp.output_tokens * price[1]) / 1e6
                    if store is not None:
                        store.put(key, backend, req, comp)
                    deliver(idx[0], comp)
                    for i in idx[1:]:
                        stats.cache_hits += 1
                        deliver(i, replace(comp, cached=True))
                bar.advance(sum(len(idx) for _, idx in batch), info())

        workers = [asyncio.ensure_future(worker()) for _ in range(min(concurrency, len(batches)))]
        try:
            await asyncio.gather(*workers)
        finally:
            for w in workers:
                w.cancel()
        if fatal:
            raise fatal[0]
    finally:
        bar.close()
        if store is not None:
            if isinstance(cache, CallCache):
                await asyncio.to_thread(store.flush)
            else:
                await asyncio.to_thread(store.close)
        stats.wall_s = time.perf_counter() - started
    if summary or (summary is None and show):
        print(f"{backend.spec}: {stats.summary()}", file=sys.stderr)
    return CallResult(completions=results, stats=stats)  # type: ignore[arg-type]


def complete_all(backend: Backend, requests: Sequence[Request], *, concurrency: int = 8,
                 cache: bool | CallCache = True, on_result: Callable[[int, Completion], Any] | None = None,
                 progress: bool | None = None, **kwargs: Any) -> CallResult:
    """The sync front door of `acomplete_all` (same arguments). Closes the backend's
    network clients at the end (they belong to this call's event loop); a loaded
    local model stays loaded for the next call."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError("complete_all() was called inside a running event loop: await acomplete_all() instead")

    async def run() -> CallResult:
        try:
            return await acomplete_all(backend, requests, concurrency=concurrency, cache=cache,
                                       on_result=on_result, progress=progress, **kwargs)
        finally:
            await backend.aclose()

    return asyncio.run(run())
