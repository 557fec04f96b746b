"""The call layer: cache, ordering, batching, retries, fail-fast, timeouts, usage and cost (scripted backend)."""
from __future__ import annotations

import asyncio
import sqlite3
import time

import pytest

from rlaif.backends.base import Completion, Request, TransientError
from rlaif.backends.scripted import ScriptedBackend
from rlaif.calls import CallCache, RetryPolicy, acomplete_all, cache_key, complete_all
from rlaif.calls.pool import _wait
from rlaif.errors import BackendError
from rlaif.localmodel import cache_root

FAST = RetryPolicy(max_attempts=4, initial_s=0.001, max_wait_s=0.05)


def req(text: str, **kw) -> Request:
    return Request(messages=[{"role": "user", "content": text}], **kw)


def echo(r: Request) -> str:
    return "echo " + r.messages[-1]["content"]


def test_results_in_request_order_and_cached_rerun_makes_no_calls():
    async def slow_echo(r: Request) -> str:
        await asyncio.sleep(0.001 * (hash(r.messages[-1]["content"]) % 7))  # finish out of order
        return echo(r)

    b = ScriptedBackend(slow_echo, model="echo")
    requests = [req(f"q{i}") for i in range(30)]
    seen: list[int] = []
    res = complete_all(b, requests, concurrency=8, on_result=lambda i, c: seen.append(i), progress=False)
    assert [c.text for c in res.completions] == [f"echo q{i}" for i in range(30)]
    assert sorted(seen) == list(range(30))
    assert res.stats.calls == 30 and res.stats.cache_hits == 0 and len(b.calls) == 30
    assert not any(c.cached for c in res.completions)

    again = ScriptedBackend(lambda r: pytest.fail("a cached run must make no calls"), model="echo")
    seen.clear()
    res2 = complete_all(again, requests, on_result=lambda i, c: seen.append(i), progress=False)
    assert [c.text for c in res2.completions] == [c.text for c in res.completions]
    assert all(c.cached for c in res2.completions)
    assert res2.stats.calls == 0 and res2.stats.cache_hits == 30 and sorted(seen) == list(range(30))
    assert (cache_root() / "calls.sqlite").exists()


def test_cache_key_covers_model_sampling_and_sample_index():
    a = ScriptedBackend(echo, model="m1")
    keys = {
        cache_key(a, req("x")),
        cache_key(a, req("x", sample=1)),
        cache_key(a, req("x", temperature=0.7)),
        cache_key(a, req("x", max_tokens=9)),
        cache_key(a, req("x", top_logprobs=5)),
        cache_key(ScriptedBackend(echo, model="m2"), req("x")),
        cache_key(a, req("y")),
    }
    assert len(keys) == 7
    assert cache_key(a, req("x")) == cache_key(ScriptedBackend(echo, model="m1"), req("x"))


def test_identical_requests_in_one_run_are_one_call():
    b = ScriptedBackend(echo, model="dedupe")
    res = complete_all(b, [req("same")] * 5 + [req("other")], progress=False)
    assert len(b.calls) == 2
    assert [c.text for c in res.completions] == ["echo same"] * 5 + ["echo other"]
    assert res.stats.calls == 2 and res.stats.cache_hits == 4


def test_local_style_backends_get_batches_of_max_batch():
    b = ScriptedBackend(echo, model="batcher", max_batch=4)
    res = complete_all(b, [req(f"q{i}") for i in range(10)], concurrency=1, progress=False)
    assert [len(x) for x in b.batches] == [4, 4, 2]
    assert [c.text for c in res.completions] == [f"echo q{i}" for i in range(10)]


def test_transient_errors_are_retried_until_success():
    failures = {"q1": 2}

    def flaky(r: Request) -> str:
        q = r.messages[-1]["content"]
        if failures.get(q, 0) > 0:
            failures[q] -= 1
            raise TransientError("server answered 503")
        return echo(r)

    b = ScriptedBackend(flaky, model="flaky")
    res = complete_all(b, [req("q0"), req("q1")], retry=FAST, progress=False)
    assert [c.text for c in res.completions] == ["echo q0", "echo q1"]
    assert len(b.calls) == 4  # q0 once, q1 three times
    assert res.stats.retries == 2 and res.stats.attempts == 4 and res.stats.calls == 2


def test_retries_give_up_after_max_attempts():
    b = ScriptedBackend(lambda r: (_ for _ in ()).throw(TransientError("answered 500: boom")), model="down")
    with pytest.raises(BackendError, match="gave up after 4 attempts.*boom"):
        complete_all(b, [req("q")], retry=FAST, progress=False)
    assert len(b.calls) == 4


def test_fatal_errors_fail_fast_without_retry():
    def bad(r: Request) -> str:
        raise BackendError("openai answered 400: context too long")

    b = ScriptedBackend(bad, model="bad")
    with pytest.raises(BackendError, match="context too long"):
        complete_all(b, [req("q")], retry=FAST, progress=False)
    assert len(b.calls) == 1


def test_record_mode_returns_errors_and_does_not_cache_them():
    def half(r: Request) -> str:
        if r.messages[-1]["content"] == "bad":
            raise BackendError("answered 400: nope")
        return echo(r)

    b = ScriptedBackend(half, model="half")
    res = complete_all(b, [req("ok"), req("bad")], on_error="record", progress=False)
    assert res.completions[0].text == "echo ok" and res.completions[0].error is None
    assert res.completions[1].error and "nope" in res.completions[1].error and res.completions[1].text == ""
    assert res.stats.failed == 1 and res.stats.calls == 1
    res2 = complete_all(b, [req("ok"), req("bad")], on_error="record", progress=False)
    assert res2.completions[0].cached and not res2.completions[1].cached
    assert len(b.calls) == 3  # only the failed one was asked again


def test_auth_errors_stop_the_run_even_in_record_mode():
    def unauthorized(r: Request) -> str:
        err = BackendError("openai answered 401: invalid key")
        err.status = 401
        raise err

    b = ScriptedBackend(unauthorized, model="noauth")
    with pytest.raises(BackendError, match="401"):
        complete_all(b, [req(f"q{i}") for i in range(20)], concurrency=1, on_error="record", progress=False)
    assert len(b.calls) == 1


def test_per_call_timeout_is_retried():
    slow_once = {"n": 0}

    async def sometimes_hangs(r: Request) -> str:
        slow_once["n"] += 1
        if slow_once["n"] == 1:
            await asyncio.sleep(5)
        return echo(r)

    b = ScriptedBackend(sometimes_hangs, model="hang", timeout_s=0.2)
    res = complete_all(b, [req("q")], retry=FAST, progress=False)
    assert res.completions[0].text == "echo q" and res.stats.retries == 1 and slow_once["n"] == 2


def test_retry_after_is_honoured_within_the_cap():
    policy = RetryPolicy(initial_s=0.001, max_wait_s=0.3)

    class State:
        def __init__(self, exc):
            self.attempt_number = 1
            self.outcome = type("O", (), {"exception": lambda _self: exc})()

    assert _wait(policy)(State(TransientError("429", retry_after=0.25))) == 0.25
    assert _wait(policy)(State(TransientError("429", retry_after=30))) == 0.3
    assert 0.001 <= _wait(policy)(State(TransientError("500"))) <= 0.002 + 1e-9  # backoff: initial + jitter

    n = {"calls": 0}

    def rate_limited_once(r: Request) -> str:
        n["calls"] += 1
        if n["calls"] == 1:
            raise TransientError("answered 429", retry_after=0.25)
        return echo(r)

    t0 = time.perf_counter()
    res = complete_all(ScriptedBackend(rate_limited_once, model="ra"), [req("q")], retry=policy, progress=False)
    assert time.perf_counter() - t0 >= 0.25  # waited at least what the server asked
    assert res.stats.retries == 1


def test_a_failed_run_keeps_finished_work_for_the_rerun():
    def dies_at_5(r: Request) -> str:
        if r.messages[-1]["content"] == "q5":
            raise BackendError("answered 400: bad")
        return echo(r)

    requests = [req(f"q{i}") for i in range(10)]
    with pytest.raises(BackendError):
        complete_all(ScriptedBackend(dies_at_5, model="resume"), requests, concurrency=1, progress=False)
    b = ScriptedBackend(echo, model="resume")
    res = complete_all(b, requests, progress=False)
    assert res.stats.cache_hits == 5 and [c.messages[-1]["content"] for c in b.calls] == [f"q{i}" for i in range(5, 10)]


def test_usage_and_cost_from_the_price_table():
    b = ScriptedBackend(lambda r: Completion(text="x", input_tokens=1000, output_tokens=500), model="priced",
                        price_model="gpt-4o-mini-2024-07-18")
    res = complete_all(b, [req("a"), req("b")], progress=False)
    assert res.stats.input_tokens == 2000 and res.stats.output_tokens == 1000
    # gpt-4o-mini: $0.15 / M input, $0.60 / M output
    assert res.stats.cost_usd == pytest.approx(2000 * 0.15e-6 + 1000 * 0.60e-6)
    unpriced = complete_all(ScriptedBackend(echo, model="billed", price_model="not-in-the-table"), [req("a")],
                            progress=False)
    assert unpriced.stats.cost_usd is None and unpriced.stats.billed
    local = complete_all(ScriptedBackend(echo, model="free"), [req("a")], progress=False)  # no price_model: local
    assert local.stats.cost_usd == 0.0 and not local.stats.billed


def test_one_cost_wording_local_free_billed_priced_and_unknown(capsys):
    """Issue #23: the same local calls read `cost unknown` in the call summary and `$0.0000` in the label summary.
    One wording now: local calls cost nothing and say so; unknown only for a billed model without a price."""
    from rlaif.calls.stats import CallStats, cost_text

    priced = ScriptedBackend(lambda r: Completion(text="x", input_tokens=2000, output_tokens=1000), model="p",
                             price_model="gpt-4o-mini")
    runs = {name: complete_all(b, [req("a")], progress=False, summary=True).stats for name, b in [
        ("local", ScriptedBackend(echo, model="local-engine")), ("priced", priced),
        ("unpriced", ScriptedBackend(echo, model="u", price_model="no-such-model"))]}
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("scripted:local-engine: ") and "; no cost (local); " in err[0]
    assert "; $0.0009; " in err[1]  # 2000 x $0.15/M + 1000 x $0.60/M = $0.0009
    assert "; cost unknown (a billed model has no price in rlaif/calls/pricing.py); " in err[2]
    assert "unknown" not in err[0] and "$" not in err[0]
    # summed: local calls add nothing and keep a priced total priced; one unknown price makes the total unknown
    total = CallStats.total([runs["local"], runs["priced"]])
    assert total.cost_usd == pytest.approx(0.0009) and cost_text(total.cost_usd, total.billed) == "$0.0009"
    assert cost_text(CallStats.total([runs["local"]]).cost_usd, False) == "no cost (local)"
    assert CallStats.total(runs.values()).cost_usd is None


def test_summary_goes_to_stderr(capsys):
    complete_all(ScriptedBackend(echo, model="sum"), [req("a")], progress=False, summary=True)
    err = capsys.readouterr().err
    assert "1 requests: 1 calls, 0 cached" in err


def test_cache_disabled_and_cache_db_contents():
    b = ScriptedBackend(echo, model="nocache")
    complete_all(b, [req("a")], cache=False, progress=False)
    complete_all(b, [req("a")], cache=False, progress=False)
    assert len(b.calls) == 2
    complete_all(b, [req("a")], progress=False)
    con = sqlite3.connect(cache_root() / "calls.sqlite")
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    rows = con.execute("SELECT backend, model, completion FROM calls").fetchall()
    assert len(rows) == 1 and rows[0][:2] == ("scripted:nocache", "nocache") and "echo a" in rows[0][2]


def test_shared_cache_object_and_async_api():
    async def main():
        store = CallCache()
        b = ScriptedBackend(echo, model="async")
        r1 = await acomplete_all(b, [req("a")], cache=store, progress=False)
        r2 = await acomplete_all(b, [req("a")], cache=store, progress=False)
        store.close()
        return r1, r2, len(b.calls)

    r1, r2, calls = asyncio.run(main())
    assert r1.completions[0].text == "echo a" and r2.completions[0].cached and calls == 1


def test_sync_api_refuses_inside_an_event_loop():
    async def main():
        complete_all(ScriptedBackend(echo), [req("a")], progress=False)

    with pytest.raises(RuntimeError, match="acomplete_all"):
        asyncio.run(main())
