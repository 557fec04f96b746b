"""A reward model in a process of its own: its batches run beside the event loop, not under its GIL.

A reward model's batch is mostly Python (chat templates, tokenization, collation, the cache) around a few
torch calls. Run in a thread of the server, it holds the GIL the event loop needs to read requests and write
answers, so the two take turns on one core (measured: ~0.7 ms a request at 64 clients, half of it waiting).
In a child process, started with `spawn` (safe next to threads and CUDA), the scorer and the loop run on
two cores. The child builds the same `rm:PATH` reward function (call cache included: SQLite in WAL mode is
safe across processes), ignores SIGINT/SIGTERM (the parent drains first, then closes it), and exits when its
parent is gone, also after a `kill -9`.
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor

from rlaif.serve.scorers import PointScore, PointScorer, ScoreInput

_SCORER: PointScorer | None = None  # in the child: the scorer it serves


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)  # the service is gone (even a SIGKILL): nothing is left to answer


def _load(name: str, kind: str, rater: str, spec: str, device: str | None, cache: bool, parent: int) -> None:
    global _SCORER
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the parent stops us in order
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    from rlaif.rewards import build_reward_fn

    _SCORER = PointScorer(name, kind, rater, build_reward_fn([spec], device=device, cache=cache))


def _score(items: list[ScoreInput]) -> tuple[list[PointScore], tuple[int, int]]:
    assert _SCORER is not None
    return _SCORER.score_batch(items), _SCORER.usage()


def _close() -> None:
    if _SCORER is not None:
        _SCORER.close()


class ProcessPointScorer(PointScorer):
    """A `PointScorer` whose `score_batch` runs in a child process (see the module docstring).

    Loading happens in the child before the constructor returns, so a bad model fails at startup with its
    own error (a `ConfigError` comes back as one)."""

    def __init__(self, name: str, kind: str, rater: str, spec: str, *, device: str | None, cache: bool):
        super().__init__(name, kind, rater, fn=None)
        self.pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        self._usage = (0, 0)
        try:
            self.pool.submit(_load, name, kind, rater, spec, device, cache, os.getpid()).result()
        except BaseException:
            self.pool.shutdown(wait=True, cancel_futures=True)
            raise

    def score_batch(self, items: list[ScoreInput]) -> list[PointScore]:
        try:
            out, self._usage = self.pool.submit(_score, items).result()
        except Exception as e:  # the child died (out of memory, killed): every item says so
            return [self.failure(e)] * len(items)
        return out

    def usage(self) -> tuple[int, int]:
        return self._usage

    def close(self) -> None:
        try:
            self.pool.submit(_close).result(timeout=60)
        except Exception:  # already broken: nothing left to close
            pass
        self.pool.shutdown(wait=True, cancel_futures=True)
