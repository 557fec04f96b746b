"""`rlaif generate`: output contract, resume after SIGKILL, cached re-runs, bad input, keys never stored."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fakeserver import FakeServer

from rlaif.generate import generate
from rlaif.localmodel import cache_root
from rlaif.records import Response, read_jsonl, read_prompts

ROOT = Path(__file__).resolve().parents[1]
KEY = "sk-test-SECRET-4f9a7c"


def write_prompts(path: Path, n: int) -> Path:
    path.write_text("".join(json.dumps({"prompt_id": f"p{i}", "prompt": f"question {i}"}) + "\n" for i in range(n)))
    return path


def cli(*args: str, check: bool = False, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENAI_API_KEY": KEY}
    return subprocess.run([sys.executable, "-m", "rlaif.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, check=check, **kw)


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


@pytest.fixture
def server():
    with FakeServer() as srv:
        yield srv


def test_cli_writes_one_line_per_sample_then_a_cached_rerun_makes_no_calls(tmp_path, server):
    prompts = write_prompts(tmp_path / "prompts.jsonl", 5)
    out = tmp_path / "responses.jsonl"
    args = ["generate", prompts, "--policy", "openai:fake", "--base-url", server.openai_url, "-n", "2",
            "--temperature", "0.9", "--max-tokens", "33", "--seed", "7", "--concurrency", "3", "-o", out]
    r = cli(*args)
    assert r.returncode == 0, r.stderr
    recs = lines(out)
    assert len(recs) == 10 and all(set(x) == {"prompt_id", "prompt", "policy", "sample", "response", "usage"}
                                   for x in recs)
    assert {(x["prompt_id"], x["sample"]) for x in recs} == {(f"p{i}", s) for i in range(5) for s in (0, 1)}
    rec = next(x for x in recs if x["prompt_id"] == "p3" and x["sample"] == 1)
    assert rec == {"prompt_id": "p3", "prompt": "question 3", "policy": "openai:fake", "sample": 1,
                   "response": "echo: question 3", "usage": {"input_tokens": 2, "output_tokens": 3}}
    bodies = [c.body for c in server.calls]
    assert {b["seed"] for b in bodies} == {7, 8} and {b["max_tokens"] for b in bodies} == {33}
    assert {b["temperature"] for b in bodies} == {0.9}
    assert "10 calls" in r.stderr and "wrote 10 responses" in r.stderr

    assert cli(*args).returncode == 0  # complete output: nothing to do
    out.unlink()
    r = cli(*args)  # output gone, cache kept: every record comes from the cache
    assert r.returncode == 0 and server.count == 10 and len(lines(out)) == 10
    assert "0 calls, 10 cached" in r.stderr


def test_resume_after_sigkill_completes_without_duplicates_or_repeated_calls(tmp_path):
    n = 40
    prompts = write_prompts(tmp_path / "prompts.jsonl", n)
    out = tmp_path / "responses.jsonl"
    with FakeServer(latency_s=0.15) as server:
        args = ["generate", prompts, "--policy", "openai:fake", "--base-url", server.openai_url,
                "--concurrency", "4", "-o", out]
        env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENAI_API_KEY": KEY}
        proc = subprocess.Popen([sys.executable, "-m", "rlaif.cli", *map(str, args)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while time.time() < deadline and (not out.exists() or out.read_text().count("\n") < 12):
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        first_run_requests = server.count
        text = out.read_text()
        finished = {json.loads(x)["prompt"] for x in text.split("\n")[:-1]}  # complete lines only
        assert 12 <= len(finished) < n, "the kill must land mid-run"

        r = cli(*args)
        assert r.returncode == 0, r.stderr
        recs = lines(out)
        keys = [(x["prompt_id"], x["sample"]) for x in recs]
        assert len(keys) == len(set(keys)) == n  # complete, no duplicates
        second = [c.prompt for c in server.calls[first_run_requests:]]
        assert not set(second) & finished  # nothing already in the output was asked again
        assert len(second) == len(set(second))  # and nothing twice within the re-run
        assert server.count <= n + 4  # at most the calls in flight at the kill were paid twice
        for x in recs:
            assert x["response"] == f"echo: {x['prompt']}"


def test_bad_prompt_file_names_path_and_line_and_writes_nothing(tmp_path, server):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "ok"}\n{"prompt": "fine"}\n{"prompt": "broken"\n')
    out = tmp_path / "out.jsonl"
    r = cli("generate", bad, "--policy", "openai:fake", "--base-url", server.openai_url, "-o", out)
    assert r.returncode == 2 and f"{bad}:3" in r.stderr and "Fix:" in r.stderr
    assert not out.exists() and server.count == 0

    bad.write_text('{"prompt": "ok"}\n{"text": "no prompt field"}\n')
    r = cli("generate", bad, "--policy", "openai:fake", "--base-url", server.openai_url, "-o", out)
    assert r.returncode == 2 and f"{bad}:2" in r.stderr and not out.exists()

    r = cli("generate", tmp_path / "missing.jsonl", "--policy", "openai:fake", "-o", out)
    assert r.returncode == 2 and "missing.jsonl" in r.stderr and not out.exists()

    good = write_prompts(tmp_path / "good.jsonl", 2)
    r = cli("generate", good, "--policy", "nonsense:x", "-o", out)
    assert r.returncode == 2 and "unknown backend" in r.stderr and not out.exists()


def test_output_of_another_policy_or_a_torn_line_is_handled(tmp_path, server):
    prompts = read_prompts(write_prompts(tmp_path / "p.jsonl", 3))
    out = tmp_path / "out.jsonl"
    generate(prompts[:2], "openai:fake", out, base_urls=[server.openai_url], progress=False)
    with out.open("a") as f:
        f.write('{"prompt_id": "p2", "prompt": "quest')  # a run killed mid-write
    generate(prompts, "openai:fake", out, base_urls=[server.openai_url], progress=False)
    recs = read_jsonl(out, Response)
    assert sorted(x.prompt_id for x in recs) == ["p0", "p1", "p2"] and server.count == 3
    from rlaif.errors import InputError

    with pytest.raises(InputError, match="policy 'openai:fake', not 'openai:other'"):
        generate(prompts, "openai:other", out, base_urls=[server.openai_url], progress=False)


def test_the_api_key_is_never_written(tmp_path, server):
    prompts = write_prompts(tmp_path / "prompts.jsonl", 4)
    out = tmp_path / "responses.jsonl"
    r = cli("generate", prompts, "--policy", "openai:fake", "--base-url", server.openai_url, "-o", out)
    assert r.returncode == 0 and server.calls[0].headers["authorization"] == f"Bearer {KEY}"
    files = [out, *cache_root().rglob("*")]
    assert any(f.name.startswith("calls.sqlite") for f in files)
    for f in files:
        if f.is_file():
            assert KEY.encode() not in f.read_bytes(), f"the API key leaked into {f}"
    assert KEY not in r.stderr and KEY not in r.stdout


def test_generate_with_a_local_hf_model(tmp_path, tiny_model_dir):
    import torch

    torch.set_num_threads(1)
    prompts = read_prompts(write_prompts(tmp_path / "p.jsonl", 3))
    out = tmp_path / "out.jsonl"
    s = generate(prompts, f"hf:{tiny_model_dir}", out, samples=2, max_tokens=4, seed=1, progress=False)
    recs = lines(out)
    assert s.written == 6 and len(recs) == 6 and all(x["usage"]["output_tokens"] == 4 for x in recs)
    assert s.stats.attempts == 1  # six requests, one batch


def test_the_file_ends_in_prompt_order_whatever_order_the_calls_finished_in(tmp_path):
    import asyncio

    from rlaif.backends.scripted import ScriptedBackend
    from rlaif.records import Prompt

    finished: list[int] = []

    async def later_for_earlier_prompts(req):  # p0 finishes last
        i = int(req.messages[-1]["content"].split()[-1])
        await asyncio.sleep(0.02 * (6 - i) + 0.005 * req.sample)
        finished.append(i)
        return f"answer {i}"

    prompts = [Prompt(prompt_id=f"p{i}", prompt=f"question {i}") for i in range(6)]
    out = tmp_path / "responses.jsonl"
    # a resumed file: another prompt's line first, then two of these prompts' lines out of order
    out.write_text("".join(json.dumps({"prompt_id": pid, "prompt": "q", "policy": "scripted:late", "sample": s,
                                       "response": "r", "usage": {"input_tokens": 1, "output_tokens": 1}}) + "\n"
                           for pid, s in (("old", 0), ("p4", 1), ("p2", 0))))
    backend = ScriptedBackend(later_for_earlier_prompts, model="late")
    generate(prompts, backend, out, samples=2, concurrency=8, progress=False, seed=0)
    assert finished != sorted(finished)  # the calls did not finish in prompt order
    got = [(r["prompt_id"], r["sample"]) for r in lines(out)]
    assert got == [("old", 0)] + [(f"p{i}", s) for i in range(6) for s in (0, 1)]
    before = out.read_bytes()
    generate(prompts, backend, out, samples=2, concurrency=8, progress=False, seed=0)  # complete: untouched
    assert out.read_bytes() == before
