"""`rlaif cache path | info | clear` through the real CLI, on a real SQLite cache in a tmp $RLAIF_CACHE."""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import rlaif.cli.cache
from rlaif.backends.base import Request
from rlaif.backends.scripted import ScriptedBackend
from rlaif.calls import complete_all
from rlaif.calls.cache import cache_info
from rlaif.cli import app
from rlaif.errors import ConfigError
from rlaif.localmodel import cache_root


def _cli(*args: str, input: str | None = None):
    return CliRunner().invoke(app, list(args), input=input, catch_exceptions=False)


def _fill(model: str, texts: list[str]) -> None:
    b = ScriptedBackend(lambda r: "echo " + r.messages[-1]["content"], model=model)
    complete_all(b, [Request(messages=[{"role": "user", "content": t}]) for t in texts], progress=False)


def test_path_names_the_cache_under_rlaif_cache_without_creating_it():
    res = _cli("cache", "path")
    assert res.exit_code == 0
    assert Path(res.output.strip()) == Path(os.environ["RLAIF_CACHE"]) / "calls.sqlite"
    assert not (cache_root() / "calls.sqlite").exists()
    # the installed entry point answers the same
    out = subprocess.run([sys.executable, "-m", "rlaif.cli", "cache", "path"], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == res.output.strip()


def test_info_counts_entries_and_hits_per_model():
    assert "no call cache yet" in _cli("cache", "info").output
    _fill("m1", ["a", "b", "c"])
    _fill("m2", ["a"])
    _fill("m1", ["a", "b", "a", "zz"])  # three requests served from the cache, one new call
    info = cache_info()
    by_model = {m.model: (m.entries, m.hits) for m in info.models}
    assert by_model == {"m1": (4, 3), "m2": (1, 0)}
    assert info.entries == 5 and info.hits == 3 and info.size_bytes > 0
    res = _cli("cache", "info")
    assert res.exit_code == 0
    assert "5 entries, 3 hits" in res.output
    assert "scripted:m1: 4 entries, 3 hits" in res.output and "scripted:m2: 1 entries, 0 hits" in res.output


def test_info_reads_a_cache_written_before_hits_were_counted():
    path = cache_root() / "calls.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as con:  # the schema of a cache from before the hits table
        con.execute("CREATE TABLE calls (key TEXT PRIMARY KEY, backend TEXT NOT NULL, model TEXT NOT NULL, "
                    "request TEXT NOT NULL, completion TEXT NOT NULL, created REAL NOT NULL)")
        con.execute("INSERT INTO calls VALUES ('k', 'openai:gpt-4o-mini', 'gpt-4o-mini', '{}', '{}', 0)")
    con.close()
    assert "1 entries, 0 hits" in _cli("cache", "info").output
    _fill("m1", ["a"])  # opening it adds the hits table; the old row stays
    assert cache_info().entries == 2


def test_clear_refuses_without_a_terminal_and_without_yes():
    _fill("m1", ["a"])
    with pytest.raises(ConfigError, match="--yes"):
        _cli("cache", "clear")
    assert (cache_root() / "calls.sqlite").exists()
    # the installed entry point turns the refusal into exit code 2
    proc = subprocess.run([sys.executable, "-m", "rlaif.cli", "cache", "clear"], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 2 and "--yes" in proc.stderr
    assert cache_info().entries == 1


def test_clear_asks_on_a_terminal(monkeypatch):
    _fill("m1", ["a"])
    monkeypatch.setattr(rlaif.cli.cache, "_interactive", lambda: True)
    res = _cli("cache", "clear", input="n\n")
    assert res.exit_code == 1 and cache_info().entries == 1  # declined: kept
    res = _cli("cache", "clear", input="y\n")
    assert res.exit_code == 0 and "deleted" in res.output
    assert not cache_info().exists


def test_clear_with_yes_deletes_the_database_and_its_wal_files():
    _fill("m1", ["a", "b"])
    res = _cli("cache", "clear", "--yes")
    assert res.exit_code == 0
    assert not list(cache_root().glob("calls.sqlite*"))
    assert "no call cache" in _cli("cache", "clear", "--yes").output
    _fill("m1", ["a"])  # a fresh cache after clearing: the request is a call again
    assert cache_info().entries == 1 and cache_info().hits == 0
