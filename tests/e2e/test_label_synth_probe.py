"""`rlaif label`, `rlaif synth`, `rlaif probe` end to end through the loopback server (real openai SDK)."""
from __future__ import annotations

import json
import math
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fakeserver import FakeServer, Reply
from typer.testing import CliRunner

from rlaif.cli import app
from rlaif.localmodel import cache_root
from rlaif.records import Response, write_jsonl

ROOT = Path(__file__).resolve().parents[2]
_SHOWN = re.compile(r"Answer A:\n<<<\n(.*?)\n>>>\n\nAnswer B:\n<<<\n(.*?)\n>>>", re.S)
P_GOOD = 0.8  # the log-prob judge's probability for the correct answer, in either position


def judge_reply(call):
    """A judge that knows the right answer ("correct ..." beats "wrong ..."); with logprobs asked,
    a one-token verdict whose A/B log-probs put P_GOOD on the correct one. Generation requests
    (no "Answer A:") get an answer named after the requested model."""
    m = _SHOWN.search(call.prompt)
    if m is None:
        model = call.body["model"]
        return f"{'correct' if 'good' in model else 'wrong'} answer from {model}"
    good_first = m.group(1).startswith("correct")
    if call.body.get("logprobs"):
        p_first = P_GOOD if good_first else 1 - P_GOOD
        return Reply("A" if p_first > 0.5 else "B", top_logprobs=[{"A": math.log(p_first),
                                                                    " B": math.log(1 - p_first)}])
    return "[[A]]" if good_first else "[[B]]"


@pytest.fixture
def server():
    with FakeServer(reply=judge_reply) as srv:
        yield srv


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")


def responses_file(path: Path, n: int = 6) -> Path:
    rs = []
    for i in range(n):
        for pol in ("bad", "good"):
            text = f"{'correct' if pol == 'good' else 'wrong'} answer {i}"
            rs.append(Response(prompt_id=f"q{i}", prompt=f"question {i}", policy=pol, response=text))
    write_jsonl(path, rs)
    return path


def run(*args) -> str:
    res = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res.output


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def test_label_jury_through_loopback_openai(tmp_path, server):
    rp = responses_file(tmp_path / "r.jsonl")
    out = tmp_path / "out"
    common = ["label", rp, "--judge", "pairwise", "--judge", "pairwise-logprob", "--judge-model", "openai:judge",
              "--base-url", server.openai_url, "-o", out]
    text = run(*common, "--jury", "mean")
    assert "6 pairs, 24 labels (0 invalid), 6 preferences" in text
    assert server.count == 6 * 2 * 2
    summary = json.loads((out / "summary.json").read_text())
    for key in ("n_pairs", "n_labels", "n_invalid", "n_preferences"):
        assert key in summary
    per = summary["judges"]
    assert set(per) == {"pairwise@v1:openai:judge", "pairwise-logprob@v1:openai:judge"}
    for s in per.values():
        assert set(s) >= {"n", "invalid_rate", "flip_rate", "tie_rate", "tokens_in", "tokens_out", "cost_usd"}
        assert s["flip_rate"] == 0.0 and s["invalid_rate"] == 0.0 and s["tokens_in"] > 0
        assert s["cost_usd"] == 0.0 and s["billed"] is False  # a local server bills nothing
    # one wording for the same local calls, in the label summary and the call layer's (issue #23: `$0.0000` here,
    # `cost unknown` there)
    assert text.count("no cost (local)") == 2 and "$0.0000" not in text and "unknown" not in text
    labs = [x for x in lines(out / "labels.jsonl") if x["rater"].startswith("pairwise-logprob")]
    # the log-probs came through the real SDK: p(a = "wrong") = 1 - P_GOOD in both orders
    assert all(x["p_a"] == pytest.approx(1 - P_GOOD) and x["parse"] == "logprob" for x in labs)
    prefs = lines(out / "preferences.jsonl")
    assert all(p["chosen"].startswith("correct") for p in prefs)
    assert prefs[0]["p_chosen"] == pytest.approx((1.0 + P_GOOD) / 2) and prefs[0]["agreement"] == 1.0

    datasets = pytest.importorskip("datasets")
    ds = datasets.load_dataset("json", data_files=str(out / "preferences.jsonl"), split="train")
    assert ds.num_rows == 6 and isinstance(ds[0]["prompt"], str) and isinstance(ds[0]["chosen"], str)
    kto = datasets.load_dataset("json", data_files=str(out / "kto.jsonl"), split="train")
    assert kto.num_rows == 12 and sum(kto["label"]) == 6

    # a re-run (another output dir, same calls) and a --reparse make no call at all
    run(*common[:-1], tmp_path / "again")
    run(*common, "--reparse", "--jury", "dawid-skene")
    assert server.count == 24
    assert json.loads((tmp_path / "again" / "summary.json").read_text())["judges"]["pairwise@v1:openai:judge"][
        "cache_hits"] == 12


def test_label_killed_mid_run_resumes_without_repeating_calls(tmp_path):
    rp = responses_file(tmp_path / "r.jsonl", n=40)  # 40 pairs, 80 calls
    with FakeServer(reply=judge_reply, latency_s=0.05) as srv:
        args = [sys.executable, "-m", "rlaif.cli", "label", str(rp), "--judge", "pairwise", "--judge-model",
                "openai:judge", "--base-url", srv.openai_url, "-o", str(tmp_path / "out"), "-c", "2"]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while srv.count < 20 and time.time() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert srv.count < 80, "the run finished before it could be killed"
        assert not (tmp_path / "out" / "summary.json").exists()  # nothing half-written
        with sqlite3.connect(cache_root() / "calls.sqlite") as con:
            cached = con.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
        assert cached >= 10
        before = srv.count
        subprocess.run(args, env=env, check=True, capture_output=True)
        assert srv.count - before == 80 - cached  # only the calls whose results were lost are made again
        summary = json.loads((tmp_path / "out" / "summary.json").read_text())
        assert summary["n_labels"] == 80 and summary["n_preferences"] == 40
        before = srv.count
        subprocess.run(args, env=env, check=True, capture_output=True)
        assert srv.count == before  # a third run: zero calls


def test_synth_generates_and_labels(tmp_path, server):
    prompts = tmp_path / "p.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": f"question {i}"}) + "\n" for i in range(3)))
    out = tmp_path / "synth"
    text = run("synth", prompts, "--policy", "openai:pol-good", "--policy", "openai:pol-bad", "--judge", "pairwise",
               "--judge-model", "openai:judge", "--base-url", server.openai_url, "-o", out, "--max-tokens", "16")
    assert "3 pairs, 6 labels (0 invalid), 3 preferences" in text
    assert len(lines(out / "responses.jsonl")) == 6 and len(list((out / "responses").glob("*.jsonl"))) == 2
    prefs = lines(out / "preferences.jsonl")
    assert {(p["chosen_policy"], p["rejected_policy"]) for p in prefs} == {("openai:pol-good", "openai:pol-bad")}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["synth"]["policies"] == ["openai:pol-good", "openai:pol-bad"]
    assert server.count == 6 + 6  # 6 generations, 3 pairs x 2 orders
    run("synth", prompts, "--policy", "openai:pol-good", "--policy", "openai:pol-bad", "--judge", "pairwise",
        "--judge-model", "openai:judge", "--base-url", server.openai_url, "-o", out, "--max-tokens", "16")
    assert server.count == 12  # resumed: nothing generated or judged twice


def test_probe_through_loopback(tmp_path):
    with FakeServer(reply=lambda call: "[[A]]" if "Answer A:" in call.prompt else "my answer") as srv:
        text = run("probe", "--judge", "pairwise", "--judge-model", "openai:first", "--base-url", srv.openai_url,
                   "-o", tmp_path)
    rep = json.loads((tmp_path / "probe.json").read_text())
    assert rep["judge"] == "pairwise@v1:openai:first" and "position" in text
    assert set(rep["probes"]) == {"position", "verbosity", "self-preference", "injection", "master-key"}
    assert rep["probes"]["position"]["wrong_rate"] == 1.0
    for name, r in rep["probes"].items():
        assert set(r) >= ({"n", "overall", "keys", "failed"} if name == "master-key" else
                          {"n", "wrong_rate", "ci_low", "ci_high"})
    assert rep["probes"]["master-key"]["failed"] and "master-key" in text and "FAILED" in text


def test_bad_input_exits_2_with_path_and_line(tmp_path):
    bad = tmp_path / "r.jsonl"
    bad.write_text(json.dumps({"prompt_id": "q", "prompt": "x", "policy": "a", "response": "y"}) + "\n{oops\n")
    res = subprocess.run([sys.executable, "-m", "rlaif.cli", "label", str(bad), "--judge", "pairwise", "-o",
                          str(tmp_path / "o")], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert res.returncode == 2 and f"{bad}:2" in res.stderr and "Fix:" in res.stderr
    assert not (tmp_path / "o").exists()
