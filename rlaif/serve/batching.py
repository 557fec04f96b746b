"""The request coalescer: concurrent requests for one scorer become the backend's batches.

Each scorer has one `Coalescer`: an asyncio queue of pending items and one worker that takes
whatever has queued (up to `max_batch` items; under load, when the last batch held more than one item,
waiting at most `max_wait_s` after the first for the batch to fill) and runs the scorer's synchronous
batch function in its own thread. One batch per scorer is in flight at a time: a reward model gets
whole batches, a judge's calls are spread by the call layer (`-c/--concurrency`), and the next batch
fills while the current one runs.

An item already queued or in flight (same key) is not queued again: its future is shared
(`coalesced`). The queue is bounded: a request that would push it past `max_queue` items is refused
with `QueueFull` (the app answers 429 with Retry-After) instead of waiting without bound.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class QueueFull(Exception):
    """The scorer's queue cannot take the request; `retry_after` is a guess in whole seconds."""

    def __init__(self, scorer: str, depth: int, limit: int, retry_after: int):
        super().__init__(f"scorer '{scorer}' has {depth} items queued (limit {limit})")
        self.scorer, self.depth, self.limit, self.retry_after = scorer, depth, limit, retry_after


@dataclass
class _Pending(Generic[Item, Result]):
    key: str
    item: Item
    future: asyncio.Future


@dataclass
class BatchStats:
    """What the worker reports after each batch (for the metrics)."""

    scorer: str
    size: int
    seconds: float


class Coalescer(Generic[Item, Result]):
    """See the module docstring. `run_batch(items) -> results` (one per item, in order) runs in a
    thread; `on_failure(exc) -> result` turns an exception of a whole batch into each item's result."""

    def __init__(self, name: str, run_batch: Callable[[list[Item]], list[Result]],
                 on_failure: Callable[[BaseException], Result], *, max_batch: int = 64, max_wait_s: float = 0.002,
                 max_queue: int = 4096, on_batch: Callable[[BatchStats], Any] | None = None,
                 on_shared: Callable[[int], Any] | None = None):
        self.name, self.run_batch, self.on_failure = name, run_batch, on_failure
        self.max_batch, self.max_wait_s, self.max_queue = max(1, max_batch), max(0.0, max_wait_s), max(1, max_queue)
        self.on_batch, self.on_shared = on_batch, on_shared
        self.queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self.pending: dict[str, asyncio.Future] = {}  # key -> future, queued or in flight
        self.coalesced = 0  # items answered by another request's computation
        self.batch_seconds = 0.05  # running estimate of one batch's duration, for Retry-After
        self.last_size = 0  # items in the last batch: above 1, the next batch waits up to max_wait_s to fill
        self._worker: asyncio.Task | None = None
        # one thread per scorer, always the same: torch keeps its thread pool warm for it (a new calling
        # thread costs a reward model hundreds of ms), and a scorer's state is never used by two at once
        self._thread = ThreadPoolExecutor(1, thread_name_prefix=f"scorer-{name}")

    @property
    def depth(self) -> int:
        """Items waiting for a batch (not counting the batch in flight)."""
        return self.queue.qsize()

    def start(self) -> None:
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._run(), name=f"coalescer-{self.name}")

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass
            self._worker = None
        self._thread.shutdown(wait=True)

    def _retry_after(self) -> int:
        batches_queued = self.depth / self.max_batch + 1
        return max(1, round(batches_queued * self.batch_seconds + 0.5))

    async def submit(self, keys: Sequence[str], items: Sequence[Item]) -> list[Result]:
        """Queue the items (sharing any identical one already queued or in flight) and wait for them."""
        loop = asyncio.get_running_loop()
        new = {k: it for k, it in zip(keys, items, strict=True) if k not in self.pending}
        if new and self.depth + len(new) > self.max_queue:
            raise QueueFull(self.name, self.depth, self.max_queue, self._retry_after())
        shared = len(keys) - len(new)
        if shared:
            self.coalesced += shared
            if self.on_shared is not None:
                self.on_shared(shared)
        for key, item in new.items():
            fut = loop.create_future()
            self.pending[key] = fut
            fut.add_done_callback(lambda _f, k=key: self.pending.pop(k, None))
            self.queue.put_nowait(_Pending(key, item, fut))
        futures = [self.pending[k] for k in keys]  # no await since the check: all still pending
        # shield: a client that disconnects cancels its wait, never the computation others share
        return list(await asyncio.gather(*(asyncio.shield(f) for f in futures)))

    async def _take(self) -> list[_Pending]:
        batch = [await self.queue.get()]
        # counted from when the batch starts filling, not from when its first item was queued: the pause lets
        # the event loop read the requests that arrived meanwhile (the scorer's thread holds the GIL while it
        # runs), so batches stay large under load instead of shrinking to the one item queued each time.
        # Only under load (the last batch held more than one item): a lone client's request runs at once
        # rather than paying the wait on every call (measured: 2.2 ms instead of 5.2 ms a request at C = 1)
        wait = self.max_wait_s if self.last_size > 1 else 0.0
        deadline = time.monotonic() + wait
        while len(batch) < self.max_batch:
            if not self.queue.empty():
                batch.append(self.queue.get_nowait())
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self.queue.get(), left))
            except asyncio.TimeoutError:
                break
        return batch

    async def _run(self) -> None:
        while True:
            batch = await self._take()
            t0 = time.perf_counter()
            try:
                items = [p.item for p in batch]
                results = await asyncio.get_running_loop().run_in_executor(self._thread, self.run_batch, items)
                if len(results) != len(batch):
                    raise RuntimeError(f"scorer '{self.name}' gave {len(results)} results for {len(batch)} items")
            except Exception as e:  # the whole batch failed: each item carries the reason
                results = [self.on_failure(e)] * len(batch)
            seconds = time.perf_counter() - t0
            self.batch_seconds = 0.8 * self.batch_seconds + 0.2 * seconds
            self.last_size = len(batch)
            for p, r in zip(batch, results, strict=True):
                if not p.future.done():
                    p.future.set_result(r)
            if self.on_batch is not None:
                self.on_batch(BatchStats(self.name, len(batch), seconds))
