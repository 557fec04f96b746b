"""The coalescer on a real asyncio loop with a scripted batch function: concurrent items become batches of at
most `max_batch`, every result goes back to its own item, a lone request runs without waiting for company,
identical items share one computation, a full queue refuses, and a failed batch fails each of its items."""
from __future__ import annotations

import asyncio
import threading

import pytest

from rlaif.serve.batching import Coalescer, QueueFull


class Scripted:
    """run_batch(items) -> [item * 10]; records each batch; can be held until released."""

    def __init__(self):
        self.batches: list[list[int]] = []
        self.release = threading.Event()
        self.release.set()
        self.started = threading.Event()

    def __call__(self, items: list[int]) -> list[int]:
        self.batches.append(list(items))
        self.started.set()
        self.release.wait(10)
        return [i * 10 for i in items]


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 20))


def test_concurrent_items_become_bounded_batches_and_each_gets_its_own_result():
    fn = Scripted()

    async def main():
        q = Coalescer("s", fn, lambda e: None, max_batch=8, max_wait_s=0.005)
        q.start()
        fn.release.clear()
        first = asyncio.ensure_future(q.submit(["k-1"], [-1]))  # holds the scorer while the rest queue up
        await asyncio.get_running_loop().run_in_executor(None, fn.started.wait, 10)
        rest = [asyncio.ensure_future(q.submit([f"k{i}"], [i])) for i in range(30)]
        await asyncio.sleep(0)
        fn.release.set()
        out = await asyncio.gather(first, *rest)
        await q.stop()
        return out

    out = run(main())
    assert out == [[-10]] + [[i * 10] for i in range(30)]
    assert fn.batches[0] == [-1]
    assert all(len(b) <= 8 for b in fn.batches)
    assert sorted(i for b in fn.batches[1:] for i in b) == list(range(30))
    assert len(fn.batches) == 1 + 4  # 30 queued items: batches of 8, 8, 8, 6


def test_a_lone_request_does_not_wait_for_company():
    """max_wait_s of 60 s: after a batch of one, the next lone item still runs at once."""
    fn = Scripted()

    async def main():
        q = Coalescer("s", fn, lambda e: None, max_batch=64, max_wait_s=60)
        q.start()
        a = await q.submit(["a"], [1])
        b = await q.submit(["b"], [2])
        await q.stop()
        return a, b

    assert run(main()) == ([10], [20])
    assert fn.batches == [[1], [2]]


def test_under_load_the_batch_waits_to_fill():
    """After a batch of several items, the next batch waits up to max_wait_s for items that are still coming."""
    fn = Scripted()

    async def main():
        q = Coalescer("s", fn, lambda e: None, max_batch=64, max_wait_s=1.0)
        q.start()
        await asyncio.gather(*(q.submit([f"w{i}"], [i]) for i in range(3)))  # a batch of 3: under load
        late = []
        for i in range(5):  # arrive one by one, 20 ms apart: one batch, not five
            late.append(asyncio.ensure_future(q.submit([f"l{i}"], [100 + i])))
            await asyncio.sleep(0.02)
        out = await asyncio.gather(*late)
        await q.stop()
        return out

    assert run(main()) == [[(100 + i) * 10] for i in range(5)]
    assert fn.batches == [[0, 1, 2], [100, 101, 102, 103, 104]]


def test_identical_items_in_flight_share_one_computation():
    fn = Scripted()
    shared = []

    async def main():
        q = Coalescer("s", fn, lambda e: None, max_batch=64, max_wait_s=0.0, on_shared=shared.append)
        q.start()
        fn.release.clear()
        first = asyncio.ensure_future(q.submit(["same"], [7]))
        await asyncio.get_running_loop().run_in_executor(None, fn.started.wait, 10)
        second = asyncio.ensure_future(q.submit(["same", "other"], [7, 8]))
        await asyncio.sleep(0)
        fn.release.set()
        out = await asyncio.gather(first, second)
        await q.stop()
        return out, q.coalesced

    out, coalesced = run(main())
    assert out == [[70], [70, 80]]
    assert fn.batches == [[7], [8]] and coalesced == 1 and shared == [1]


def test_a_full_queue_refuses_with_a_retry_hint():
    fn = Scripted()

    async def main():
        q = Coalescer("s", fn, lambda e: None, max_batch=2, max_wait_s=0.0, max_queue=3)
        q.start()
        fn.release.clear()
        first = asyncio.ensure_future(q.submit(["x"], [0]))
        await asyncio.get_running_loop().run_in_executor(None, fn.started.wait, 10)
        queued = asyncio.ensure_future(q.submit(["a", "b", "c"], [1, 2, 3]))
        await asyncio.sleep(0)
        with pytest.raises(QueueFull) as e:
            await q.submit(["d"], [4])
        fn.release.set()
        await asyncio.gather(first, queued)
        await q.stop()
        return e.value

    err = run(main())
    assert (err.depth, err.limit) == (3, 3) and err.retry_after >= 1 and "limit 3" in str(err)


def test_a_failed_batch_fails_each_of_its_items():
    def boom(items):
        raise RuntimeError("out of memory")

    async def main():
        q = Coalescer("s", boom, lambda e: f"failed: {e}", max_batch=8, max_wait_s=0.0)
        q.start()
        out = await asyncio.gather(q.submit(["a", "b"], [1, 2]), q.submit(["c"], [3]))
        await q.stop()
        return out

    assert run(main()) == [["failed: out of memory"] * 2, ["failed: out of memory"]]
