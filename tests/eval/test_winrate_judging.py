"""`rlaif winrate RESPONSES --judge ...`: judging policy-vs-baseline pairs through a loopback OpenAI server
with known verdicts, the exact record and interval, winrate.html (escaped, with the pairs), re-runs."""
from __future__ import annotations

import json
import math
import re
import subprocess
import sys

import pytest
from fakeserver import FakeServer

from rlaif.records import Label, Response, read_jsonl, write_jsonl
from rlaif.stats.winrate import Outcome, compute_win_rate

_SHOWN = re.compile(r"Answer A:\n<<<\n(.*?)\n>>>\n\nAnswer B:\n<<<\n(.*?)\n>>>", re.S)
# prompt k: the policy's answer is better (W), worse (L) or as good (T); interleaved so clusters are not sorted
PLAN = "WWLWTWWLWTWL"  # 7 W, 3 L, 2 T


def judge(call):
    a, b = (int(x.split("score=")[1].split()[0]) for x in _SHOWN.search(call.prompt).groups())
    return "[[A]]" if a > b else "[[B]]" if b > a else "[[C]]"


def _responses(tmp_path):
    rows = []
    for k, v in enumerate(PLAN):
        pol, base = {"W": (2, 1), "L": (0, 1), "T": (1, 1)}[v]
        prompt = f"question {k} <b>bold</b>"
        rows.append(Response(prompt_id=f"q{k}", prompt=prompt, policy="dpo",
                             response=f"score={pol} <script>alert({k})</script>"))
        rows.append(Response(prompt_id=f"q{k}", prompt=prompt, policy="sft", response=f"score={base} plain"))
        rows.append(Response(prompt_id=f"q{k}", prompt=prompt, policy="other", response="score=9 ignored"))
    path = tmp_path / "responses.jsonl"
    write_jsonl(path, rows)
    return path


def _rlaif(*args, **kw):
    return subprocess.run([sys.executable, "-m", "rlaif.cli", *map(str, args)], capture_output=True, text=True, **kw)


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("JUDGE_KEY", "sk-test-not-a-real-key")
    with FakeServer(reply=judge) as srv:
        yield srv


def test_winrate_judges_both_orders_and_gives_the_exact_record(tmp_path, server):
    responses, out = _responses(tmp_path), tmp_path / "wr"
    args = ["winrate", responses, "--judge", "pairwise", "--judge-model", "openai:judge", "--base-url",
            server.openai_url, "--api-key-env", "JUDGE_KEY", "--policy", "dpo", "--baseline", "sft", "-o", out]
    proc = _rlaif(*args)
    assert proc.returncode == 0, proc.stderr
    assert server.count == 24  # 12 pairs x 2 orders; the third policy is not judged
    d = json.loads((out / "winrate.json").read_text())
    assert {"policy", "baseline", "n", "wins", "losses", "ties", "win_rate", "soft_win_rate", "ci_low", "ci_high",
            "lc_win_rate", "per_category", "warnings"} <= set(d)
    assert (d["policy"], d["baseline"], d["n"], d["wins"], d["losses"], d["ties"]) == ("dpo", "sft", 12, 7, 3, 2)
    assert d["win_rate"] == pytest.approx(8 / 12) and d["soft_win_rate"] == pytest.approx(8 / 12)
    # the interval is stats.winrate's for the same outcomes (clusters in the file's prompt order) ...
    verdict = {"W": "win", "L": "loss", "T": "tie"}
    ref = compute_win_rate([Outcome(f"q{k}", verdict[v]) for k, v in enumerate(PLAN)])
    assert (d["ci_low"], d["ci_high"]) == (ref.ci_low, ref.ci_high)
    # ... whose lower end, with 12 < 30 prompts, is the Wilson bound for 8/12 of 12 (worked out by hand)
    z, n, p = 1.959963984540054, 12, 8 / 12
    wilson_low = ((p + z * z / (2 * n)) - z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))) / (1 + z * z / n)
    assert d["ci_low"] == pytest.approx(wilson_low, abs=1e-12) and d["ci_low"] == pytest.approx(0.390622, abs=1e-6)
    assert "win rate 0.667" in proc.stdout and "(7-3-2)" in proc.stdout
    labels = read_jsonl(out / "labels.jsonl", Label)
    assert len(labels) == 24 and {(lab.model_a, lab.model_b) for lab in labels} == {("dpo", "sft")}
    assert sorted({lab.order for lab in labels}) == ["ab", "ba"]
    html = (out / "winrate.html").read_text()
    assert "<script>alert" not in html and "&lt;script&gt;alert(3)&lt;/script&gt;" in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html and html.count("<details>") == 12
    assert not any("sk-test" in f.read_text() for f in out.iterdir())  # the key is never written
    # a re-run is served from the call cache
    proc = _rlaif(*args)
    assert proc.returncode == 0 and server.count == 24
    assert json.loads((out / "winrate.json").read_text())["calls"] == {
        "pairwise@v1:openai:judge": {"calls": 0, "cache_hits": 24, "failed": 0}}


def test_winrate_from_labels_writes_the_page_with_per_rater_rates(tmp_path):
    from rlaif.eval.winrate import winrate_from_labels_file

    rows = []
    for k in range(6):
        for rater, winner in (("j1", "a"), ("j2", "b" if k < 2 else "a")):
            rows.append(Label(item=f"i{k}", rater=rater, winner=winner, order="ab", model_a="dpo", model_b="sft",
                              prompt="p <i>", response_a="<script>x</script>", response_b="y", prompt_id=f"q{k}"))
    write_jsonl(tmp_path / "labels.jsonl", rows)
    run = winrate_from_labels_file(tmp_path / "labels.jsonl", "dpo", "sft", tmp_path / "o")
    d = run.result
    assert run.out == tmp_path / "o" and run.summary.startswith("dpo vs sft: win rate 0.833 [")
    assert d["win_rate"] == pytest.approx(10 / 12)
    assert d["per_rater"]["j1"]["win_rate"] == 1.0 and d["per_rater"]["j2"]["win_rate"] == pytest.approx(4 / 6)
    html = (tmp_path / "o" / "winrate.html").read_text()
    assert "<script>x" not in html and "&lt;script&gt;x&lt;/script&gt;" in html and "Per rater" in html
    assert "| j2 | 6 | 0.667 |" in (tmp_path / "o" / "winrate.md").read_text()


def test_winrate_argument_errors_exit_2(tmp_path):
    responses = _responses(tmp_path)
    proc = _rlaif("winrate", responses, "--labels", responses, "--policy", "dpo", "--baseline", "sft",
                  "-o", tmp_path / "o")
    assert proc.returncode == 2 and "either RESPONSES" in proc.stderr
    proc = _rlaif("winrate", responses, "--policy", "dpo", "--baseline", "sft", "-o", tmp_path / "o")
    assert proc.returncode == 2 and "needs a judge" in proc.stderr
    proc = _rlaif("winrate", responses, "--judge", "rule", "--policy", "ppo", "--baseline", "sft",
                  "-o", tmp_path / "o")
    assert proc.returncode == 2 and "'ppo'" in proc.stderr and "dpo, other, sft" in proc.stderr
    assert not (tmp_path / "o").exists()
