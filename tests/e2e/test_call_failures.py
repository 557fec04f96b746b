"""Failed calls through the real CLI (issue 12): a dead server fails the run loudly and fast (exit 3, the cause
named and counted), partial work resumes, --timeout reaches every command's backends, keys echoed by a server
never leave the call layer, and a SIGKILL repays at most the calls in flight."""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fakeserver import FakeServer, Fault

from rlaif.localmodel import cache_root
from rlaif.records import Response, write_jsonl

ROOT = Path(__file__).resolve().parents[2]
CANARY = "zebra-CANARY-7731-qx"  # not key-shaped: only knowing the key in use can mask it


def rlaif(*args, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    full = {**os.environ, "PYTHONPATH": str(ROOT), "OPENAI_API_KEY": "sk-test-not-a-real-key", **(env or {})}
    return subprocess.run([sys.executable, "-m", "rlaif.cli", *map(str, args)], capture_output=True, text=True,
                          env=full, timeout=timeout)


def dead_port() -> int:
    with socket.socket() as s:  # bound, then closed: nothing listens there
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prompts_file(path: Path, n: int) -> Path:
    path.write_text("".join(json.dumps({"prompt_id": f"p{i}", "prompt": f"question {i}"}) + "\n" for i in range(n)))
    return path


def responses_file(path: Path, n: int, policies: tuple[str, str] = ("bad", "good")) -> Path:
    write_jsonl(path, [Response(prompt_id=f"q{i}", prompt=f"question {i}", policy=pol, response=f"{pol} answer {i}")
                       for i in range(n) for pol in policies])
    return path


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def command(name: str, tmp: Path, url: str) -> list:
    """Each command that calls models, on a small input, with every backend on `url`."""
    judge = ["--judge", "pairwise", "--judge-model", "openai:judge", "--base-url", url]
    return {
        "generate": ["generate", prompts_file(tmp / "p.jsonl", 4), "--policy", "openai:m", "--base-url", url,
                     "-o", tmp / "out.jsonl"],
        "label": ["label", responses_file(tmp / "r.jsonl", 4), *judge, "-o", tmp / "out"],
        "synth": ["synth", prompts_file(tmp / "p.jsonl", 3), "--policy", "openai:a", "--policy", "openai:b", *judge,
                  "-o", tmp / "out"],
        "winrate": ["winrate", responses_file(tmp / "r.jsonl", 4), *judge, "--policy", "good", "--baseline", "bad",
                    "-o", tmp / "out"],
        "probe": ["probe", *judge, "-o", tmp / "out"],
        "eval": ["eval", "ifeval", "--policy", "openai:p", "--baseline", "openai:b", "--judge-model", "openai:judge",
                 "--base-url", url, "--limit", "2", "-n", "1", "--no-embedding", "-o", tmp / "out"],
    }[name]


@pytest.mark.parametrize("name", ["generate", "label", "synth", "winrate", "probe", "eval"])
def test_a_refused_connection_fails_fast_with_exit_3_naming_host_and_port(tmp_path, name):
    port = dead_port()
    t0 = time.perf_counter()
    r = rlaif(*command(name, tmp_path, f"http://127.0.0.1:{port}/v1"))
    wall = time.perf_counter() - t0
    assert r.returncode == 3, r.stderr
    assert f"connection refused by 127.0.0.1:{port}" in r.stderr and "timed out" not in r.stderr
    assert re.search(r"\d+ of \d+ calls failed \(100%, more than --max-failed 0\.5\); most common: \d+x ",
                     r.stderr), r.stderr
    assert "Fix:" in r.stderr and "Traceback" not in r.stderr
    assert wall < 30, f"{wall:.1f}s: a refused connection must not wait out the full backoff (34 s per call before)"


def _flaky_judge(failing: set[str]):
    """Judge calls whose prompt shows one of `failing` get a 500 (retried without a wait); the rest [[A]]."""
    def reply(call):
        if any(f"{q}\n" in call.prompt for q in failing):
            return Fault("status", 500, retry_after=0.0, message="boom")
        return "[[A]]"

    return reply


def test_label_over_the_failed_share_exits_3_keeps_what_was_answered_and_resumes(tmp_path):
    rp = responses_file(tmp_path / "r.jsonl", 6)  # 6 pairs, 12 calls
    out = tmp_path / "out"
    with FakeServer(reply=_flaky_judge({"question 0", "question 1", "question 2", "question 3"})) as srv:
        args = ["label", rp, "--judge", "pairwise", "--judge-model", "openai:judge", "--base-url", srv.openai_url,
                "-o", out, "-c", "2"]
        r = rlaif(*args, "--max-failed", "0.9")  # 8 of 12 failed: under the stated share
        assert r.returncode == 0, r.stderr
        assert "warning: label" in r.stderr and "8 of 12 calls failed" in r.stderr and "8x gave up after 6" in r.stderr
        assert sum(1 for x in lines(out / "labels.jsonl") if x["error"]) == 8

        r = rlaif(*args)  # the default 0.5: the 4 answered are cached, the 8 others fail again
        assert r.returncode == 3, r.stderr
        assert "8 of 8 calls failed (100%, more than --max-failed 0.5); most common: 8x gave up after 6 " \
               "attempts: openai answered 500: boom" in r.stderr
        labels = lines(out / "labels.jsonl")
        assert len(labels) == 12 and sum(1 for x in labels if x["error"]) == 8  # the partial labels are on disk

        srv.reply = lambda call: "[[A]]"
        before = srv.count
        r = rlaif(*args)
        assert r.returncode == 0, r.stderr
        assert srv.count - before == 8  # only the missing calls
        assert not any(x["error"] for x in lines(out / "labels.jsonl"))


def test_generate_writes_what_was_answered_and_the_rerun_makes_only_the_rest(tmp_path):
    prompts, out = prompts_file(tmp_path / "p.jsonl", 6), tmp_path / "out.jsonl"

    def reply(call):
        return Fault("status", 503, retry_after=0.0, message="busy") if call.prompt in ("question 1", "question 4") \
            else f"echo: {call.prompt}"

    with FakeServer(reply=reply) as srv:
        args = ["generate", prompts, "--policy", "openai:m", "--base-url", srv.openai_url, "-o", out]
        r = rlaif(*args, "--max-failed", "0")  # any failure stops it
        assert r.returncode == 3 and "2 of 6 calls failed" in r.stderr and "2x gave up after 6 attempts" in r.stderr
        assert sorted(x["prompt_id"] for x in lines(out)) == ["p0", "p2", "p3", "p5"]
        srv.reply = None
        before = srv.count
        r = rlaif(*args)
        assert r.returncode == 0, r.stderr
        assert srv.count - before == 2 and sorted(x["prompt_id"] for x in lines(out)) == [f"p{i}" for i in range(6)]


@pytest.mark.parametrize("name", ["label", "winrate", "probe"])
def test_timeout_reaches_the_judges(tmp_path, name):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir(), second.mkdir()
    with FakeServer(reply=lambda call: "[[A]]") as srv:
        r = rlaif(*command(name, first, srv.openai_url))
        assert r.returncode == 0, r.stderr
        calls = srv.count
        srv.fail_next(Fault.hang(8.0))  # the first call of the second run (another cache) hangs
        r = rlaif(*command(name, second, srv.openai_url), "--timeout", "0.5",
                  env={"RLAIF_CACHE": str(tmp_path / "another-cache")})
        assert r.returncode == 0, r.stderr
        assert srv.count == 2 * calls + 1  # the hung call was given up after 0.5 s and asked again


def _leaks(key: str, *texts: str, roots: list[Path]) -> list[str]:
    found = [f"output {i}" for i, t in enumerate(texts) if key in t]
    for root in roots:
        for f in root.rglob("*"):
            if f.is_file() and key.encode() in f.read_bytes():
                found.append(str(f))
    return found


@pytest.mark.parametrize("name", ["label", "generate"])
@pytest.mark.parametrize("status", [500, 401])
def test_a_key_echoed_by_the_server_appears_nowhere(tmp_path, name, status):
    out_dir = tmp_path / "run"
    out_dir.mkdir()
    with FakeServer(reply=lambda call: Fault.auth_echo(status)) as srv:
        args = command(name, out_dir, srv.openai_url)
        r = rlaif(*args, "--api-key-env", "RLAIF_TEST_KEY", env={"RLAIF_TEST_KEY": CANARY})
        assert srv.calls[0].headers["authorization"] == f"Bearer {CANARY}"  # the server did get (and echo) it
    assert r.returncode == (3 if status == 500 else 2), r.stderr
    assert "upstream rejected the request for token [redacted]" in r.stderr
    cache_files = [f for f in cache_root().glob("calls.sqlite*")]
    assert cache_files, "the cache was opened"
    assert not _leaks(CANARY, r.stdout, r.stderr, roots=[out_dir, cache_root()])
    if name == "label" and status == 500:
        errors = [x["error"] for x in lines(out_dir / "out" / "labels.jsonl")]
        assert errors and all("[redacted]" in e for e in errors)


def test_the_401_message_has_no_doubled_period(tmp_path):
    with FakeServer(reply=lambda call: Fault.unauthorized()) as srv:
        r = rlaif(*command("generate", tmp_path, srv.openai_url))
    assert r.returncode == 2
    assert "answered 401: Incorrect API key provided. You can find your API key in your account settings. Fix: " \
           "check the API key" in r.stderr
    assert ".." not in r.stderr
    with FakeServer(reply=lambda call: Fault("status", 500, retry_after=0.0, message="It broke.")) as srv:
        (tmp_path / "again").mkdir()
        r = rlaif(*command("generate", tmp_path / "again", srv.openai_url))
    assert r.returncode == 3 and "answered 500: It broke. Fix: " in r.stderr and ".." not in r.stderr


def _kill_midway(args: list, srv: FakeServer, at: int) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENAI_API_KEY": "sk-test-not-a-real-key"}
    proc = subprocess.Popen([sys.executable, "-m", "rlaif.cli", *map(str, args)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while srv.count < at and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


@pytest.mark.parametrize("name", ["generate", "label"])
def test_after_sigkill_the_resume_repays_at_most_the_calls_in_flight(tmp_path, name):
    c = 6
    if name == "generate":
        items = 60
        args = ["generate", prompts_file(tmp_path / "p.jsonl", items), "--policy", "openai:m", "-o",
                tmp_path / "out.jsonl", "-c", c]
    else:
        items = 80  # 40 pairs in both orders
        args = ["label", responses_file(tmp_path / "r.jsonl", 40), "--judge", "pairwise", "--judge-model",
                "openai:judge", "-o", tmp_path / "out", "-c", c]
    with FakeServer(reply=lambda call: "[[A]]" if name == "label" else f"echo: {call.prompt}", latency_s=0.08) as srv:
        args += ["--base-url", srv.openai_url]
        _kill_midway(args, srv, at=items // 2)
        assert srv.count < items, "the kill must land mid-run"
        r = rlaif(*args)
        assert r.returncode == 0, r.stderr
        assert srv.count <= items + c, f"{srv.count - items} calls repaid; at most the {c} in flight may be"
    if name == "generate":
        keys = [(x["prompt_id"], x["sample"]) for x in lines(tmp_path / "out.jsonl")]
        assert len(keys) == len(set(keys)) == items
    else:
        assert len(lines(tmp_path / "out" / "labels.jsonl")) == items
