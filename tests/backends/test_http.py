"""openai: and anthropic: through the real SDKs against the loopback fake server:
happy paths, log-probs, retries with exact request counts, fail-fast, timeouts, load spreading."""
from __future__ import annotations

import sys

import pytest
from fakeserver import FakeServer, Fault, Reply

from rlaif.backends import get_backend
from rlaif.backends.base import Request
from rlaif.calls import RetryPolicy, complete_all
from rlaif.errors import BackendError, ConfigError

FAST = RetryPolicy(max_attempts=4, initial_s=0.01, max_wait_s=0.5)


def req(text: str, **kw) -> Request:
    return Request(messages=[{"role": "user", "content": text}], **kw)


@pytest.fixture
def server():
    with FakeServer() as srv:
        yield srv


@pytest.fixture(autouse=True)
def _keys(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-openai")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")


def openai(srv, **kw):
    return get_backend("openai:fake-model", base_urls=[srv.openai_url], **kw)


def anthropic(srv, **kw):
    return get_backend("anthropic:claude-fake", base_urls=[srv.anthropic_url], **kw)


def test_openai_happy_path_with_logprobs_and_usage(server):
    server.reply = lambda call: Reply("A because", top_logprobs=[{"A": -0.1, "B": -2.4, "tie": -4.0}],
                                      input_tokens=11, output_tokens=2)
    res = complete_all(openai(server), [req("which is better?", top_logprobs=2, max_tokens=5, seed=3)],
                       retry=FAST, progress=False)
    c = res.completions[0]
    assert c.text == "A because" and c.top_logprobs == [{"A": -0.1, "B": -2.4}]
    assert (c.input_tokens, c.output_tokens, c.finish_reason) == (11, 2, "stop")
    body = server.calls[0].body
    assert body["model"] == "fake-model" and body["max_tokens"] == 5 and body["seed"] == 3
    assert body["logprobs"] is True and body["top_logprobs"] == 2
    assert server.calls[0].headers["authorization"] == "Bearer sk-test-openai"
    assert res.stats.cost_usd == 0.0 and not res.stats.billed  # a local server bills nothing


def test_anthropic_happy_path_moves_system_turns(server):
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    res = complete_all(anthropic(server), [Request(messages=msgs, max_tokens=7, stop=("\n",))],
                       retry=FAST, progress=False)
    assert res.completions[0].text == "echo: hi" and res.completions[0].finish_reason == "stop"
    body = server.calls[0].body
    assert body["system"] == "Be brief." and body["messages"] == [{"role": "user", "content": "hi"}]
    assert body["max_tokens"] == 7 and body["stop_sequences"] == ["\n"] and body["temperature"] == 0.0
    headers = server.calls[0].headers  # SDK versions differ: x-api-key or a bearer token
    assert "sk-ant-test" in (headers.get("x-api-key", ""), headers.get("authorization", "").removeprefix("Bearer "))
    assert res.completions[0].input_tokens == 3 and res.completions[0].output_tokens == 2


def test_anthropic_refuses_logprob_requests(server):
    with pytest.raises(BackendError, match="no log-probabilities"):
        complete_all(anthropic(server), [req("x", top_logprobs=2)], retry=FAST, progress=False)
    assert server.count == 0


@pytest.mark.parametrize("make", [openai, anthropic], ids=["openai", "anthropic"])
@pytest.mark.parametrize("fault", [Fault.rate_limit(retry_after=0.05), Fault.server_error(500),
                                   Fault.server_error(503), Fault.malformed(), Fault.drop()],
                         ids=["429", "500", "503", "malformed", "drop"])
def test_transient_faults_are_retried_once_each(server, make, fault):
    server.fail_next(fault, fault)
    res = complete_all(make(server), [req("q")], retry=FAST, progress=False)
    assert res.completions[0].text == "echo: q"
    assert server.count == 3 and res.stats.retries == 2  # the SDK's own retries are off


def test_retry_after_is_read_from_the_429(server):
    import time

    server.fail_next(Fault.rate_limit(retry_after=0.3))
    t0 = time.perf_counter()
    complete_all(openai(server), [req("q")], retry=FAST, progress=False)
    assert time.perf_counter() - t0 >= 0.3 and server.count == 2


@pytest.mark.parametrize("make", [openai, anthropic], ids=["openai", "anthropic"])
@pytest.mark.parametrize("status,fix", [(400, "rejected"), (401, "API key"), (403, "permission"), (404, "model name")])
def test_client_errors_fail_fast_with_the_servers_message(server, make, status, fix):
    server.fail_next(Fault.http(status, f"server says no ({status})"))
    with pytest.raises(BackendError) as e:
        complete_all(make(server), [req("q")], retry=FAST, progress=False)
    assert f"server says no ({status})" in str(e.value) and fix in str(e.value)
    assert server.count == 1


def test_a_401_stops_a_concurrent_run_quickly(server):
    server.reply = lambda call: Fault.unauthorized()
    with pytest.raises(BackendError, match="Incorrect API key.*OPENAI_API_KEY"):
        complete_all(openai(server), [req(f"q{i}") for i in range(50)], concurrency=4, on_error="record",
                     retry=FAST, progress=False)
    assert server.count <= 4


def test_a_hang_past_the_timeout_is_retried(server):
    server.fail_next(Fault.hang(3.0))
    res = complete_all(openai(server, timeout_s=0.3), [req("q")], retry=FAST, progress=False)
    assert res.completions[0].text == "echo: q" and server.count == 2 and res.stats.retries == 1


def test_exhausted_retries_name_the_last_error(server):
    server.reply = lambda call: Fault.server_error(502)
    with pytest.raises(BackendError, match="gave up after 4 attempts.*502"):
        complete_all(openai(server), [req("q")], retry=FAST, progress=False)
    assert server.count == 4


def test_repeated_base_urls_spread_the_load():
    with FakeServer(latency_s=0.05) as a, FakeServer(latency_s=0.05) as b:
        backend = get_backend("openai:m", base_urls=[a.openai_url, b.openai_url])
        res = complete_all(backend, [req(f"q{i}") for i in range(20)], concurrency=4, progress=False)
        assert [c.text for c in res.completions] == [f"echo: q{i}" for i in range(20)]
        assert a.count + b.count == 20 and a.count >= 5 and b.count >= 5
        prompts = {c.prompt for c in a.calls} | {c.prompt for c in b.calls}
        assert prompts == {f"q{i}" for i in range(20)}


def test_a_dead_server_among_several_is_routed_around():
    with FakeServer() as live:
        dead = FakeServer()
        dead_url = dead.openai_url
        dead.stop()  # nothing listens there any more: connection refused
        backend = get_backend("openai:m", base_urls=[dead_url, live.openai_url])
        res = complete_all(backend, [req(f"q{i}") for i in range(6)], concurrency=2, retry=FAST, progress=False)
        assert [c.text for c in res.completions] == [f"echo: q{i}" for i in range(6)]


def test_keys_come_only_from_the_environment(monkeypatch, server):
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(ConfigError, match="export OPENAI_API_KEY"):
        get_backend("openai:gpt-4o-mini")
    get_backend("openai:m", base_urls=[server.openai_url])  # local servers need no key
    with pytest.raises(ConfigError, match="MY_KEY is not set"):
        get_backend("openai:m", api_key_env="MY_KEY")
    monkeypatch.setenv("MY_KEY", "sk-from-my-key")
    complete_all(get_backend("openai:m", base_urls=[server.openai_url], api_key_env="MY_KEY"), [req("q")],
                 progress=False)
    assert server.calls[-1].headers["authorization"] == "Bearer sk-from-my-key"
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    with pytest.raises(ConfigError, match="export ANTHROPIC_API_KEY"):
        get_backend("anthropic:claude-x")
    with pytest.raises(ConfigError, match="apply to openai"):
        get_backend("local", base_urls=["http://x"])


def test_official_api_gets_max_completion_tokens_and_a_price(monkeypatch, server):
    backend = get_backend("openai:gpt-4o-mini")
    assert backend.price_model == "gpt-4o-mini" and backend._params(req("q"))["max_completion_tokens"] == 256


def test_a_missing_sdk_names_the_pip_command(monkeypatch):
    from rlaif.errors import MissingDependency

    monkeypatch.setitem(sys.modules, "openai", None)  # import openai -> ImportError
    monkeypatch.setitem(sys.modules, "anthropic", None)
    with pytest.raises(MissingDependency, match=r"pip install 'rlaif\[openai\]'"):
        get_backend("openai:gpt-4o-mini")
    with pytest.raises(MissingDependency, match=r"pip install 'rlaif\[anthropic\]'"):
        get_backend("anthropic:claude-x")
