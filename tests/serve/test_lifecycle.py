"""The service's life and load limits as a real process: SIGTERM drains the requests in flight and exits 0,
a SIGKILLed service restarted on the same cache answers repeated requests with no model call, a full queue
answers 429 with Retry-After (and the client waits and retries), identical requests in flight are one call."""
from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import pytest
from fakeserver import FakeServer
from serve_helpers import KEY, Served, in_thread, judge_reply

from rlaif.client import RewardClient


def slow_reply(call):
    if "slow" in call.prompt:
        time.sleep(0.8)
    return judge_reply(call)


def _args(up: FakeServer, *extra: str) -> list[str]:
    return ["-j", "rubric", "--judge-model", "openai:judge", "--base-url", up.openai_url, "--api-key-env",
            "JUDGE_KEY", *extra]


def _wait_for(pred, timeout: float = 30.0) -> None:
    deadline = time.time() + timeout
    while not pred():
        if time.time() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.01)


def _children(pid: int) -> list[int]:
    """Processes whose parent is `pid` (from /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _items(*responses: str) -> dict:
    return {"items": [{"prompt": "p", "response": r} for r in responses], "scorers": ["rubric"]}


def test_sigterm_drains_the_request_in_flight_then_exits_0(tmp_path):
    with FakeServer(reply=slow_reply) as up:
        svc = Served(_args(up), cache=tmp_path / "cache", env={"JUDGE_KEY": KEY}).start()
        t, out = in_thread(svc.post, "/v1/score", _items("a slow grade 6 answer"))
        _wait_for(lambda: up.count >= 1)  # the model call is in flight
        svc.proc.send_signal(signal.SIGTERM)
        t.join(30)
        assert svc.proc.wait(30) == 0, svc.stderr
        r = out[0]
        assert not isinstance(r, Exception), r
        assert r.status_code == 200 and r.json()["results"][0]["scores"]["rubric"] == pytest.approx(5 / 9)
        with pytest.raises(httpx.TransportError):
            httpx.get(svc.url + "/healthz", timeout=2)
        svc.stop()


def test_sigkill_then_restart_answers_repeats_from_the_cache(tmp_path, tiny_rm_dir):
    body = _items(*(f"answer grade {g}" for g in (2, 5, 9, 10)), "ungradable")
    rm_body = {"items": [{"prompt": "p", "response": r} for r in ("one", "two", "three")], "scorers": ["rm"]}
    pairs = {"items": [{"prompt": "p", "response_a": "good", "response_b": "bad"}]}
    with FakeServer(reply=judge_reply) as up:
        args = [*_args(up), "-j", "pairwise", "--reward-model", str(tiny_rm_dir)]
        first = Served(args, cache=tmp_path / "cache", env={"JUDGE_KEY": KEY}).start()
        want = first.post("/v1/score", body).json()
        want_rm = first.post("/v1/score", rm_body).json()
        want_pair = first.post("/v1/compare", pairs).json()
        calls = up.count
        assert calls == 5 + 2
        assert 'rlaif_serve_model_calls{scorer="rm"} 3.0' in first.get("/metrics").text
        workers = _children(first.proc.pid)  # the reward model's own process
        assert workers
        assert first.kill() == -signal.SIGKILL
        _wait_for(lambda: not any(_alive(p) for p in workers), timeout=15)  # it follows its parent out
        again = Served(args, cache=tmp_path / "cache", env={"JUDGE_KEY": KEY}).start()
        try:
            assert again.post("/v1/score", body).json() == want
            assert again.post("/v1/score", rm_body).json() == want_rm
            assert again.post("/v1/compare", pairs).json() == want_pair
            assert up.count == calls  # zero new model calls
            metrics = again.get("/metrics").text
            assert 'rlaif_serve_cache_hits{scorer="rubric"} 5.0' in metrics
            assert 'rlaif_serve_model_calls{scorer="rubric"} 0.0' in metrics
            assert 'rlaif_serve_cache_hits{scorer="rm"} 3.0' in metrics  # the reward model: no forward either
            assert 'rlaif_serve_model_calls{scorer="rm"} 0.0' in metrics
        finally:
            again.stop()


def test_a_full_queue_answers_429_with_retry_after_and_identical_requests_share_a_call(tmp_path):
    with FakeServer(reply=slow_reply) as up:
        svc = Served([*_args(up), "--max-batch", "1", "--max-queue", "2"], cache=tmp_path / "cache",
                     env={"JUDGE_KEY": KEY}).start()
        try:
            a1, a_out = in_thread(svc.post, "/v1/score", _items("slow grade 3 a"))
            a2, a2_out = in_thread(svc.post, "/v1/score", _items("slow grade 3 a"))  # the same item, in flight
            _wait_for(lambda: up.count >= 1)
            b, b_out = in_thread(svc.post, "/v1/score", _items("slow grade 4 b", "slow grade 5 c"))
            _wait_for(lambda: 'rlaif_serve_queue_depth{scorer="rubric"} 2.0' in svc.get("/metrics").text)
            r = svc.post("/v1/score", _items("grade 6 d"))
            assert r.status_code == 429, r.text
            assert int(r.headers["retry-after"]) >= 1
            err = r.json()["error"]
            assert err["limit"] == "max_queue" and "--max-queue" in err["fix"]
            with RewardClient(svc.url, retries=10, backoff_s=0.2) as client:  # waits Retry-After, then gets in
                assert client.score(["p"], ["grade 6 d"], scorers=["rubric"])[0].scores == {"rubric": 5 / 9}
            for t in (a1, a2, b):
                t.join(30)
            assert a_out[0].json() == a2_out[0].json() and a_out[0].json()["results"][0]["scores"]["rubric"] == 2 / 9
            assert b_out[0].status_code == 200
            assert up.count == 4  # a (once for both requests), b, c, d
            assert 'rlaif_serve_coalesced_items_total{scorer="rubric"} 1.0' in svc.get("/metrics").text
        finally:
            svc.stop()
