"""The persistent call cache: $RLAIF_CACHE/calls.sqlite (WAL), one row per finished call.

A key hashes what decides a completion (backend kind, model, messages, sampling, sample
index). Reads are bulk lookups; writes (new rows, and a hit counter per backend and model)
go through one writer thread, so the event loop never waits on disk.
`cache_info` and `clear_cache` serve `rlaif cache info` / `rlaif cache clear`.
"""
from __future__ import annotations

import hashlib
import json
import queue
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rlaif.backends.base import Backend, Completion, Request
from rlaif.localmodel import cache_root

__all__ = ["CacheInfo", "CallCache", "ModelEntries", "cache_info", "cache_key", "cache_path", "clear_cache"]

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS calls (
    key TEXT PRIMARY KEY,
    backend TEXT NOT NULL,
    model TEXT NOT NULL,
    request TEXT NOT NULL,
    completion TEXT NOT NULL,
    created REAL NOT NULL
)""",
    # Requests served from the cache, per backend and model: a table of its own, so caches written
    # before it existed need no migration, and one row per model, so a cached re-run adds one upsert.
    """CREATE TABLE IF NOT EXISTS hits (
    backend TEXT NOT NULL,
    model TEXT NOT NULL,
    n INTEGER NOT NULL,
    last REAL NOT NULL,
    PRIMARY KEY (backend, model)
)""",
)
_SIDE_FILES = ("-wal", "-shm")


def cache_path() -> Path:
    return cache_root() / "calls.sqlite"


def cache_key(backend: Backend, request: Request) -> str:
    """Hash of backend kind, model, messages, sampling parameters and sample index.

    The base URL is not part of it: a run spread over several servers of the same
    model, or moved to another one, stays cached.
    """
    blob = json.dumps({"backend": backend.spec.split(":", 1)[0], "model": backend.model,
                       "request": request.cache_fields()}, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _connect(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(path, timeout=60, check_same_thread=False)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a crash loses at most the last commits, never corrupts
    for statement in _SCHEMA:
        con.execute(statement)
    con.commit()
    return con


@dataclass
class _Batch:
    """What one hand-off gives the writer: new rows, and hits per (backend spec, model)."""

    rows: list[tuple] = field(default_factory=list)
    hits: Counter = field(default_factory=Counter)

    def __bool__(self) -> bool:
        return bool(self.rows or self.hits)


class CallCache:
    """The persistent call cache. Reads are bulk lookups; writes go through one writer
    thread that commits whatever has queued up, so the event loop never waits on disk."""

    HANDOFF_S = 0.1

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._read = _connect(self.path)
        self._queue: queue.Queue = queue.Queue()
        self._pending = _Batch()
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
        self._pending.rows.append((key, backend.spec, backend.model,
                                   json.dumps(request.cache_fields(), ensure_ascii=False),
                                   json.dumps(record, ensure_ascii=False), time.time()))
        self._maybe_handoff()

    def count_hits(self, backend: Backend, n: int) -> None:
        """Count n requests of this backend served from the cache."""
        self._pending.hits[(backend.spec, backend.model)] += n
        self._maybe_handoff()

    def _maybe_handoff(self) -> None:
        # Hand rows to the writer in small batches: one thread wake-up per row cost more CPU
        # than the JSON. A killed run loses at most HANDOFF_S of cache rows (its output keeps them).
        now = time.monotonic()
        if len(self._pending.rows) >= 64 or now - self._handed >= self.HANDOFF_S:
            self._handoff(now)

    def _handoff(self, now: float | None = None) -> None:
        if self._pending:
            self._queue.put(self._pending)
            self._pending = _Batch()
        self._handed = time.monotonic() if now is None else now

    def _write_loop(self) -> None:
        con = _connect(self.path)
        try:
            done = False
            while not done:
                batch, flushes, done = self._drain(self._queue.get())
                _commit(con, batch)
                for ev in flushes:
                    ev.set()
        finally:
            con.close()

    def _drain(self, item: object) -> tuple[_Batch, list[threading.Event], bool]:
        """Everything queued so far, merged: one commit for all of it."""
        batch, flushes, done = _Batch(), [], False
        while True:
            if item is None:
                done = True
            elif isinstance(item, threading.Event):
                flushes.append(item)
            else:
                batch.rows.extend(item.rows)
                batch.hits.update(item.hits)
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return batch, flushes, done

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


def _commit(con: sqlite3.Connection, batch: _Batch) -> None:
    if not batch:
        return
    if batch.rows:
        con.executemany("INSERT OR REPLACE INTO calls VALUES (?, ?, ?, ?, ?, ?)", batch.rows)
    if batch.hits:
        now = time.time()
        con.executemany("INSERT INTO hits (backend, model, n, last) VALUES (?, ?, ?, ?) ON CONFLICT(backend, model) "
                        "DO UPDATE SET n = n + excluded.n, last = excluded.last",
                        [(backend, model, n, now) for (backend, model), n in batch.hits.items()])
    con.commit()


@dataclass
class ModelEntries:
    backend: str  # the backend spec the rows were made with, e.g. "openai:gpt-4o-mini"
    model: str
    entries: int
    hits: int  # requests served from the cache since hits were first counted


@dataclass
class CacheInfo:
    path: Path
    exists: bool
    size_bytes: int = 0  # the database and its WAL side files
    entries: int = 0
    hits: int = 0
    models: list[ModelEntries] = field(default_factory=list)


def _files(path: Path) -> list[Path]:
    return [path, *(path.with_name(path.name + suffix) for suffix in _SIDE_FILES)]


def cache_info(path: str | Path | None = None) -> CacheInfo:
    """Size, entries and hits per backend/model, read without creating or changing the cache."""
    path = Path(path) if path else cache_path()
    if not path.is_file():
        return CacheInfo(path=path, exists=False)
    size = sum(f.stat().st_size for f in _files(path) if f.is_file())
    con = sqlite3.connect(path, timeout=60)
    try:
        tables = {name for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        entries = con.execute("SELECT backend, model, COUNT(*) FROM calls GROUP BY backend, model").fetchall() \
            if "calls" in tables else []
        hits = con.execute("SELECT backend, model, n FROM hits").fetchall() if "hits" in tables else []
    finally:
        con.close()
    by_model: dict[tuple[str, str], ModelEntries] = {}
    for b, m, n in entries:
        by_model[(b, m)] = ModelEntries(backend=b, model=m, entries=n, hits=0)
    for b, m, n in hits:  # a model can have hits and no rows left (rows are replaced, never only counted)
        by_model.setdefault((b, m), ModelEntries(backend=b, model=m, entries=0, hits=0)).hits = n
    models = sorted(by_model.values(), key=lambda e: (-e.entries, e.backend, e.model))
    return CacheInfo(path=path, exists=True, size_bytes=size, entries=sum(m.entries for m in models),
                     hits=sum(m.hits for m in models), models=models)


def clear_cache(path: str | Path | None = None) -> list[Path]:
    """Delete the cache database and its WAL side files; returns the files removed."""
    path = Path(path) if path else cache_path()
    removed = [f for f in _files(path) if f.is_file()]
    for f in removed:
        f.unlink()
    return removed
