"""Every model call goes through here: bounded concurrency, retries, the SQLite cache, usage and cost.

`complete_all(backend, requests)` (sync) and `acomplete_all` (async) return a
`CallResult` whose `.completions` follow the request order. A request already in the
cache ($RLAIF_CACHE/calls.sqlite, WAL) costs no call, so a re-run or a resumed run
repeats no finished work. Misses are grouped into batches of `backend.max_batch`
(local engines batch; HTTP backends take one request per call) and served by
`concurrency` workers. Transient failures (429, 5xx, timeouts, dropped connections)
are retried with exponential backoff and jitter, honouring Retry-After (a server that
cannot be reached at all gets a few quick tries, then the run stops calling it); other
failures stop the run with the server's message (or, with on_error="record", come
back as completions with `.error` set, and commands check their share against
`--max-failed` with `CallStats.check`). Error text is redacted of keys (rlaif.redact). Results are cached and handed to
`on_result(index, completion)` as they arrive, so callers can append output
incrementally.

Modules: `pool` (the run: lookup, workers, retries, counts), `cache` (the SQLite
cache and its writer thread), `options` (`CallOptions`, how a command makes its calls),
`stats` (`CallStats`, the one count of calls; the failed share, `CallsFailed`: exit 3),
`pricing` (the price table).
"""
from __future__ import annotations

from rlaif.backends.base import TransientError
from rlaif.calls.cache import CallCache, cache_key
from rlaif.calls.options import CallOptions
from rlaif.calls.pool import CallResult, RetryPolicy, acomplete_all, complete_all
from rlaif.calls.pricing import price_per_mtok
from rlaif.calls.stats import DEFAULT_MAX_FAILED, CallsFailed, CallStats, check_max_failed

__all__ = ["DEFAULT_MAX_FAILED", "CallCache", "CallOptions", "CallResult", "CallStats", "CallsFailed", "RetryPolicy",
           "TransientError", "acomplete_all", "cache_key", "check_max_failed", "complete_all", "price_per_mtok"]
