"""The worker pool behind `acomplete_all`: cache lookup, batching, bounded concurrency,
retries with backoff, and the usage/cost count of one run."""
from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    wait_exponential,
    wait_random,
)

from rlaif.backends.base import UNREACHABLE, Backend, Completion, Request, TransientError
from rlaif.calls.cache import CallCache, cache_key
from rlaif.calls.pricing import price_per_mtok
from rlaif.calls.stats import CallStats
from rlaif.errors import BackendError
from rlaif.progress import ProgressBar
from rlaif.redact import redact

__all__ = ["CallResult", "RetryPolicy", "acomplete_all", "complete_all"]

_deadline = getattr(asyncio, "timeout", None)  # Python 3.11+
_FAILS_EVERYTHING = (401, 403, 404)  # a bad key, a forbidden or unknown model: every other request fails too

# One work item: (cache key, indices of the requests it serves) per distinct request.
Batch = list[tuple[str, list[int]]]


@dataclass
class RetryPolicy:
    max_attempts: int = 6  # first try included
    initial_s: float = 1.0  # first backoff; doubles each retry, plus up to initial_s of jitter
    max_wait_s: float = 60.0  # cap on one wait, Retry-After included
    # A refused connection, a failed DNS lookup or TLS handshake: a server that is not there rarely
    # appears within the full backoff, so these get a few quick tries, and then the run stops calling.
    unreachable_attempts: int = 3
    unreachable_wait_s: float = 0.25  # doubles each retry


@dataclass
class CallResult:
    completions: list[Completion]
    stats: CallStats = field(default_factory=CallStats)


def _unreachable(exc: BaseException | None) -> bool:
    return getattr(exc, "kind", None) in UNREACHABLE


def _wait(policy: RetryPolicy) -> Callable[[RetryCallState], float]:
    backoff = wait_exponential(multiplier=policy.initial_s, max=policy.max_wait_s) + wait_random(0, policy.initial_s)

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if _unreachable(exc):
            return min(policy.unreachable_wait_s * 2 ** (state.attempt_number - 1), policy.max_wait_s)
        after = exc.retry_after if isinstance(exc, TransientError) else None
        if after is not None:  # the server said when: honour it, within our cap
            return min(float(after), policy.max_wait_s)
        return backoff(state)

    return wait


def _stop(policy: RetryPolicy) -> Callable[[RetryCallState], bool]:
    def stop(state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        limit = policy.unreachable_attempts if _unreachable(exc) else policy.max_attempts
        return state.attempt_number >= min(limit, policy.max_attempts)

    return stop


def _stored_signal(loop: asyncio.AbstractEventLoop, fut: asyncio.Future) -> Callable[[], None]:
    """For the cache's writer thread: resolve `fut` on its loop once the row is committed."""
    def resolve() -> None:
        if not fut.done():
            fut.set_result(None)

    def signal() -> None:
        try:
            loop.call_soon_threadsafe(resolve)
        except RuntimeError:  # the loop is closed: nobody waits any more
            pass

    return signal


class _CallRun:
    """The state of one `acomplete_all` run, shared by its workers."""

    def __init__(self, backend: Backend, requests: Sequence[Request], *, store: CallCache | None,
                 on_result: Callable[[int, Completion], Any] | None, retry: RetryPolicy,
                 on_error: Literal["raise", "record"], bar: ProgressBar):
        self.backend, self.requests, self.store, self.bar = backend, requests, store, bar
        self.on_result, self.retry, self.on_error = on_result, retry, on_error
        self.stats = CallStats(requests=len(requests))
        self.results: list[Completion | None] = [None] * len(requests)
        self.price = price_per_mtok(backend.price_model)
        # a local engine or server (no price_model) costs nothing; a billed model without a price: unknown
        self.stats.billed = backend.price_model is not None
        self.stats.cost_usd = 0.0 if self.price or not self.stats.billed else None
        self.fatal: list[BaseException] = []
        self.down: BackendError | None = None  # the server could not be reached: the rest fail without a call
        self.work: asyncio.Queue[Batch] = asyncio.Queue()

    def info(self) -> str:
        s = self.stats
        retries = f", {s.retries} retries" if s.retries else ""
        return f"{s.calls} calls, {s.cache_hits} cached{retries}"

    def deliver(self, index: int, completion: Completion) -> None:
        self.results[index] = completion
        if self.on_result is not None:
            self.on_result(index, completion)

    async def lookup(self) -> int:
        """Deliver what the cache holds; queue the rest in batches of max_batch. Returns the batch count."""
        keys = [cache_key(self.backend, r) for r in self.requests]
        hits = await asyncio.to_thread(self.store.get_many, keys) if self.store is not None else {}
        # Identical requests in one run are one call; its result fans out to all of them.
        groups: dict[str, list[int]] = {}
        for i, key in enumerate(keys):
            if key in hits:
                self.deliver(i, replace(hits[key], cached=True))
                self.stats.cache_hits += 1
            else:
                groups.setdefault(key, []).append(i)
        if self.store is not None and self.stats.cache_hits:
            self.store.count_hits(self.backend, self.stats.cache_hits)
        self.bar.advance(self.stats.cache_hits, self.info())
        pending = list(groups.items())
        size = max(1, int(self.backend.max_batch or 1))
        batches = [pending[i:i + size] for i in range(0, len(pending), size)]
        for b in batches:
            self.work.put_nowait(b)
        return len(batches)

    async def complete_once(self, batch_requests: list[Request]) -> list[Completion]:
        """One backend call under the backend's deadline, its completions checked and timed."""
        backend, timeout = self.backend, self.backend.timeout_s
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
            raise TransientError(f"{backend.spec}: no answer within {timeout:g}s (raise --timeout for slow models)",
                                 kind="timeout") from None
        if len(out) != len(batch_requests):
            raise BackendError(f"{backend.spec} returned {len(out)} completions for {len(batch_requests)} requests")
        for c in out:
            c.latency_s = c.latency_s or (time.perf_counter() - t0)
        return out

    async def call(self, batch_requests: list[Request]) -> list[Completion]:
        """`complete_once` retried on transient failures, until another worker hit a fatal one."""
        def count_retry(_state: RetryCallState) -> None:
            self.stats.retries += 1

        retrying = AsyncRetrying(stop=_stop(self.retry), wait=_wait(self.retry),
                                 retry=retry_if_exception(lambda e: isinstance(e, TransientError) and not self.fatal),
                                 before_sleep=count_retry, reraise=True)
        tries = 0
        try:
            async for attempt in retrying:
                with attempt:
                    tries += 1
                    self.stats.attempts += 1
                    return await self.complete_once(batch_requests)
        except TransientError as e:
            gave_up = BackendError(f"gave up after {tries} attempt{'s' * (tries != 1)}: {e}")
            gave_up.kind = e.kind  # type: ignore[attr-defined]  (an unreachable server stops the calling)
            raise gave_up from e
        raise AssertionError("unreachable")  # pragma: no cover

    async def worker(self) -> None:
        while not self.fatal:
            try:
                batch = self.work.get_nowait()
            except asyncio.QueueEmpty:
                return
            if self.down is not None:  # asking again would only wait for the same refusal
                self.fail(batch, self.down)
                continue
            batch_requests = [self.requests[idx[0]] for _, idx in batch]
            try:
                out = await self.call(batch_requests)
            except BackendError as e:
                if not self.fail(batch, e):
                    return
            else:
                await self.record(batch, batch_requests, out)

    def fail(self, batch: Batch, err: BackendError) -> bool:
        """A batch failed for good: stop the run (False) or record the failure and go on (True).
        Error text leaves the call layer here (and in `serve`), so it is redacted here."""
        message = redact(err)
        if self.on_error == "raise" or err.status in _FAILS_EVERYTHING:
            self.fatal.append(_redacted(err, message))
            return False
        if _unreachable(err) and self.down is None:
            self.down = err
        n = sum(len(idx) for _, idx in batch)
        self.stats.failed += n
        self.stats.errors[message] += n
        for _, idx in batch:
            for i in idx:
                self.deliver(i, Completion(text="", error=message))
        self.bar.advance(n, self.info())
        return True

    async def record(self, batch: Batch, batch_requests: list[Request], out: list[Completion]) -> None:
        """Count, cache and deliver a served batch, duplicates included.

        Answers are delivered (written to outputs) only once the cache holds them, and this worker
        takes no new call before that: so at any moment at most `concurrency` answered calls are
        not yet safe, and a killed run repays at most the calls in flight."""
        s = self.stats
        stored: asyncio.Future | None = None
        for n, ((key, _idx), req, comp) in enumerate(zip(batch, batch_requests, out, strict=True)):
            s.calls += 1
            s.input_tokens += comp.input_tokens
            s.output_tokens += comp.output_tokens
            if self.price:
                s.cost_usd += (comp.input_tokens * self.price[0] + comp.output_tokens * self.price[1]) / 1e6
            if self.store is not None:
                last = n == len(batch) - 1  # rows commit in order: the last one's commit covers the batch
                if last:
                    stored = asyncio.get_running_loop().create_future()
                self.store.put(key, self.backend, req, comp,
                               on_stored=_stored_signal(asyncio.get_running_loop(), stored) if last else None)
        if stored is not None:
            await stored
        for (_key, idx), comp in zip(batch, out, strict=True):
            self.deliver(idx[0], comp)
            for i in idx[1:]:
                s.cache_hits += 1
                self.deliver(i, replace(comp, cached=True))
        self.bar.advance(sum(len(idx) for _, idx in batch), self.info())

    async def serve(self, concurrency: int) -> None:
        n_batches = await self.lookup()
        workers = [asyncio.ensure_future(self.worker()) for _ in range(min(concurrency, n_batches))]
        try:
            await asyncio.gather(*workers)
        finally:
            for w in workers:
                w.cancel()
        if self.fatal:
            raise self.fatal[0]


def _redacted(err: BackendError, message: str) -> BackendError:
    """err with its message redacted and its cause chain cut: the SDK error below it may hold the server's
    raw body (an echoed key) and would print in a traceback."""
    err.args = (message,)
    err.__cause__ = None
    err.__suppress_context__ = True
    return err


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
    """Serve all requests through the cache and the backend; see the package docstring.

    progress: None shows the bar when stderr is a terminal. summary: print the usage
    line on stderr at the end (None: when the bar is shown).
    """
    if concurrency < 1:
        raise ValueError("concurrency must be >= 1")
    started = time.perf_counter()
    store = cache if isinstance(cache, CallCache) else (CallCache() if cache else None)
    show = sys.stderr.isatty() if progress is None else progress
    bar = ProgressBar(len(requests), description or backend.spec, enabled=show)
    run = _CallRun(backend, requests, store=store, on_result=on_result, retry=retry or RetryPolicy(),
               on_error=on_error, bar=bar)
    try:
        await run.serve(concurrency)
    finally:
        bar.close()
        if store is not None:
            # A cache the caller passed in stays open for its next run; one opened here is closed.
            await asyncio.to_thread(store.flush if isinstance(cache, CallCache) else store.close)
        run.stats.wall_s = time.perf_counter() - started
    if summary or (summary is None and show):
        print(f"{backend.spec}: {run.stats.summary()}", file=sys.stderr)
    return CallResult(completions=run.results, stats=run.stats)  # type: ignore[arg-type]


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
