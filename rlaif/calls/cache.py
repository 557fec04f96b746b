"""The persistent call cache: $RLAIF_CACHE/calls.sqlite (WAL), one row per finished call.

A key hashes what decides a completion (backend kind, model, messages, sampling, sample
index). Reads are bulk lookups; writes (new rows, and a hit counter per backend and model)
go through one writer thread, so the event loop never waits on disk, and each answer is
committed as soon as that thread is free (a kill loses at most the last transaction).
`cache_info` and `clear_cache` serve `rlaif cache info` / `rlaif cache clear`.
"""
from __future__ import annotations

import hashlib
import json
import queue
import sqlite3
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rlaif.backends.base import Backend, Completion, Request
from rlaif.localmodel import cache_root

__all__ = ["CacheInfo", "CallCache", "ModelEntries", "cache_info", "cache_key", "cache_path", "clear_cache",
           "record_key"]

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
    return record_key(backend.spec.split(":", 1)[0], backend.model, request.cache_fields())


def record_key(kind: str, model: str, fields: dict) -> str:
    blob = json.dumps({"backend": kind, "model": model, "request": fields}, sort_keys=True, ensure_ascii=False,
                      default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _connect(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(path, timeout=60, check_same_thread=False)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a crash loses at most the last commits, never corrupts
    for statement in _SCHEMA:
        con.execute(statement)
    con.commit()
    return con


@dataclass(slots=True)
class _Row:
    """One new row for the writer, and what to call once it is committed."""

    values: tuple
    on_stored: Callable[[], None] | None = None


@dataclass
class _Batch:
    """Everything the writer found queued: one transaction for all of it."""

    rows: list[tuple] = field(default_factory=list)
    hits: Counter = field(default_factory=Counter)  # (backend spec, model) -> requests served from the cache
    done: list[Callable[[], None]] = field(default_factory=list)  # called after the commit
    stop: bool = False

    def add(self, item: object) -> None:
        if item is None:
            self.stop = True
        elif isinstance(item, _Row):
            self.rows.append(item.values)
            if item.on_stored is not None:
                self.done.append(item.on_stored)
        elif isinstance(item, threading.Event):
            self.done.append(item.set)
        else:
            self.hits.update(item)


class CallCache:
    """The persistent call cache. Reads are bulk lookups; writes go through one writer thread.

    Every answer is committed as soon as the writer is free: it takes whatever has queued up
    since its last commit (one row when calls are slow, many when they are fast) and commits
    it in one transaction, so a killed run loses only the rows of that last transaction, and
    `put(..., on_stored=...)` says when a row is safe. WAL + synchronous=NORMAL keeps a commit
    to a write into the WAL (no fsync), which a SIGKILL does not undo.
    """

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._read = _connect(self.path)
        self._queue: queue.Queue = queue.Queue()
        self._closed = False
        self.write_error: Exception | None = None  # set when a commit failed (the run goes on uncached)
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

    def put(self, key: str, backend: Backend, request: Request, completion: Completion,
            on_stored: Callable[[], None] | None = None) -> None:
        """Queue a row; `on_stored()` runs on the writer thread once it is committed (or failed to be)."""
        self.put_record(key, backend.spec, backend.model, request.cache_fields(), completion, on_stored)

    def put_record(self, key: str, spec: str, model: str, fields: dict, completion: Completion,
                   on_stored: Callable[[], None] | None = None) -> None:
        """`put` for a model that is not a `Backend` (a local reward model): its spec, model id and request."""
        if self._closed:
            raise RuntimeError("the call cache is closed")
        record = {**completion.__dict__, "cached": False}
        self._queue.put(_Row((key, spec, model, json.dumps(fields, ensure_ascii=False),
                              json.dumps(record, ensure_ascii=False), time.time()), on_stored))

    def count_record_hits(self, spec: str, model: str, n: int) -> None:
        """`count_hits` by spec and model id."""
        self._queue.put(Counter({(spec, model): n}))

    def count_hits(self, backend: Backend, n: int) -> None:
        """Count n requests of this backend served from the cache (one upsert per run, not per key)."""
        self.count_record_hits(backend.spec, backend.model, n)

    def _write_loop(self) -> None:
        con = _connect(self.path)
        try:
            batch = _Batch()
            while not batch.stop:
                batch = self._drain(self._queue.get())
                try:
                    _commit(con, batch)
                except sqlite3.Error as e:  # a full disk, a locked file: the answers still go out, uncached
                    con.rollback()
                    if self.write_error is None:
                        print(f"warning: the call cache {self.path} could not be written ({e}); "
                              "answers of this run are not cached", file=sys.stderr)
                    self.write_error = e
                for report in batch.done:
                    report()
        finally:
            con.close()

    def _drain(self, item: object) -> _Batch:
        batch = _Batch()
        while True:
            batch.add(item)
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return batch

    def flush(self) -> None:
        """Block until everything put so far is committed."""
        ev = threading.Event()
        self._queue.put(ev)
        ev.wait()

    def close(self) -> None:
        if self._writer.is_alive():
            self._closed = True
            self._queue.put(None)
            self._writer.join()
        self._read.close()

    def __len__(self) -> int:
        return self._read.execute("SELECT COUNT(*) FROM calls").fetchone()[0]


def _commit(con: sqlite3.Connection, batch: _Batch) -> None:
    if not (batch.rows or batch.hits):
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
