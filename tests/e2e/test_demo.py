"""`rlaif demo --quick` end to end (real CLI subprocesses, the real local model), killed once and resumed,
then its report opened in headless Chromium."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.browser import ARGS, CHROMIUM, needs_chromium

# The quick demo, killed once and resumed, with the RL step and its evaluation: minutes on a shared 2-core CPU.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]



def _demo(out: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "rlaif.cli", "demo", "--quick", "--hacking", "-o", str(out)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    from rlaif.localmodel import local_model_dir

    # A fresh call cache (nothing answered from earlier runs); the converted model is shared.
    env = dict(os.environ, RLAIF_CACHE=str(tmp_path_factory.mktemp("demo-cache")),
               RLAIF_MODEL_CACHE=str(local_model_dir().parent))
    state = out / "state.json"
    # First run: killed with SIGKILL once the audit step is recorded.
    proc = _demo(out, env)
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        if state.exists() and "audit_ai_judge" in json.loads(state.read_text()).get("done", {}):
            break
        time.sleep(0.5)
    assert proc.poll() is None, proc.communicate()[0][-3000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = json.loads(state.read_text())["done"]
    # Second run: resumes; finished steps are skipped, the rest run.
    proc = _demo(out, env)
    log, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, log[-4000:]
    return out, before, log


def test_resume_skips_finished_steps(demo_run):
    out, before, log = demo_run
    assert {"generate_candidates", "label_pairs", "audit_ai_judge"} <= set(before)
    for step in before:
        assert f"{step}: done in an earlier run, skipped" in log
    done = json.loads((out / "state.json").read_text())["done"]
    assert [k for k in done] == ["generate_candidates", "label_pairs", "audit_ai_judge", "build_preferences",
                                 "train_reward_model", "train_dpo", "train_online_rl", "evaluate_dpo",
                                 "evaluate_online_rl", "rank_policies", "reward_hacking", "write_report"]
    assert all(done[k] == before[k] for k in before)  # not redone


def _in01(x):
    return x is None or 0.0 <= x <= 1.0


def test_demo_outputs_keys_and_ranges(demo_run):
    out, _, _ = demo_run
    for f in ("responses_base.jsonl", "candidates.jsonl", "labels/labels.jsonl", "labels/summary.json",
              "candidates_audit.jsonl", "labels_audit/labels.jsonl", "audit/audit.json", "audit/audit.html",
              "preferences.jsonl", "preferences_summary.json", "rm/config.json", "dpo/config.json",
              "dpo/metrics.jsonl", "eval/eval.json", "eval/eval.html", "prompts_train.jsonl", "rl/config.json",
              "rl/metrics.jsonl", "rl/train_result.json", "rl/training.html", "eval_rl/eval.json",
              "hacking/train_result.json", "hacking/training.html", "demo.json", "report.html"):
        assert (out / f).exists(), f
    s = json.loads((out / "demo.json").read_text())
    assert set(s) >= {"plan", "step_seconds", "candidates", "labels", "judge_audit", "preferences", "training",
                      "evaluation", "verdicts", "aim", "reward_hacking"}
    c = s["candidates"]
    assert c["n_prompts"] == s["plan"]["train_prompts"] and c["n_base"] == c["n_prompts"] * s["plan"]["samples"]
    assert 0 < c["n_revisions"] <= c["n_base"]
    ja = s["judge_audit"]
    assert ja["rater"].startswith("pairwise-logprob@") and ja["gold"].startswith("rule@")
    for k in ("accuracy", "position_consistency", "first_position_rate"):
        assert _in01(ja[k]["value"]), k
    p = s["preferences"]
    # every pair of a prompt's candidates the checker decides: each revision beats the sample it revises, and more
    assert p["n_preferences"] >= c["n_revisions"] and p["n_pairs"] >= p["n_preferences"]
    assert 0.0 <= p["ai_judge_weight"] <= 1.0 and 0.5 <= p["mean_p_chosen"] <= 1.0
    prefs = [json.loads(x) for x in (out / "preferences.jsonl").read_text().splitlines()]
    assert {x["chosen_policy"] for x in prefs} <= {"rule-revision", "local"}
    audited = [json.loads(x) for x in (out / "labels_audit" / "labels.jsonl").read_text().splitlines()]
    n_audit = len({x["prompt_id"] for x in map(json.loads, (out / "candidates_audit.jsonl").read_text().splitlines())})
    ai_orders = {x["order"] for x in audited if x["rater"].startswith("pairwise-logprob@")}
    assert 0 < n_audit <= s["plan"]["audit_prompts"] and ai_orders == {"ab", "ba"}
    assert s["aim"]["reached"] == (next(v for k, v in s["evaluation"]["splits"]["id"]["win_rate"].items()
                                        if k.startswith("rule@"))["ci_low"] > 0.5)
    for name in ("rm", "dpo"):
        t = s["training"][name]
        assert t["steps"] >= 1 and t["curve"] and t["final_eval"] is not None
    ev = s["evaluation"]
    assert ev["policy"] == "dpo" and ev["baseline"] == "local"
    assert set(ev["splits"]) == {"id", "ood"}
    assert {sp["kind"] for sp in ev["splits"].values()} == {"id", "ood"}
    for sp in ev["splits"].values():
        for w in sp["win_rate"].values():
            assert w["wins"] + w["losses"] + w["ties"] == w["n"] > 0
            assert w["ci_low"] <= w["win_rate"] <= w["ci_high"]
        assert set(sp["compliance"]) >= {"dpo", "local"}
        for d in sp["diversity"].values():
            assert set(d) >= {"per_input", "across_input"}
    assert len(s["verdicts"]) == 2 and all(("beats" in v) or ("does not beat" in v) or ("worse" in v)
                                           for v in s["verdicts"])
    assert ev["generalization_gap"] is not None
    _check_online_rl(out, s)


def _check_online_rl(out, s):
    """The RL step: its run, its evaluation against the same base on the same splits, the aim's verdict."""
    rl = s["online_rl"]
    assert set(rl) >= {"algorithm", "reward", "settings", "n_prompts", "steps", "stopped_by", "seconds",
                       "reward_first", "reward_last", "kl_last", "curve", "evaluation", "verdicts", "aim",
                       "aim_reached", "aim_sentence"}
    plan = s["plan"]
    assert rl["algorithm"] == plan["rl_algorithm"] and rl["steps"] == plan["rl_steps"] == len(rl["curve"])
    assert rl["stopped_by"] == "max_steps" and rl["seconds"] > 0 and rl["n_prompts"] > 0
    assert _in01(rl["reward_first"]) and _in01(rl["reward_last"])
    assert rl["curve"][0]["kl_k3"] == pytest.approx(0.0, abs=1e-6)  # the first step samples the reference itself
    assert rl["kl_last"]["kl_k3"] >= 0
    ids = [json.loads(x)["prompt_id"] for x in (out / "prompts_train.jsonl").read_text().splitlines()]
    assert len(ids) == rl["n_prompts"] and all(int(i.rsplit("-", 1)[1]) <= plan["train_pool"] for i in ids)
    ev = rl["evaluation"]
    assert ev["policy"] == rl["algorithm"] and ev["baseline"] == "local"
    assert set(ev["splits"]) == set(s["evaluation"]["splits"])
    for name, sp in ev["splits"].items():
        assert sp["n_prompts"] == s["evaluation"]["splits"][name]["n_prompts"]
        w = next(v for k, v in sp["win_rate"].items() if k.startswith("rule@"))
        assert w["ci_low"] <= w["win_rate"] <= w["ci_high"]
        assert set(sp["compliance"]) >= {rl["algorithm"], "local"}
        # the KL to the base is estimated on the ID split only (the distribution trained on)
        assert (sp["reward"]["kl_estimate"] is not None) == (sp["kind"] == "id")
        assert set(sp["diversity"]) >= {rl["algorithm"], "local"}
    assert len(rl["verdicts"]) == 2
    lo = ev["splits"]["id"]["win_rate"]
    lo = next(v for k, v in lo.items() if k.startswith("rule@"))["ci_low"]
    assert rl["aim_reached"] == (lo > 0.5)
    assert rl["aim_sentence"].startswith("Aim reached" if rl["aim_reached"] else "Aim not reached")
    assert f"{lo:.2f}" in rl["aim_sentence"]
    models = {r["model"] for r in s["leaderboard"]}
    assert models >= {"dpo", "local", rl["algorithm"]}  # three policies on one scale
    for ev_name in ("eval", "eval_rl"):  # no AI judge in the evaluation: the checker and the reward model
        judges = json.loads((out / ev_name / "eval.json").read_text())["judges"]
        assert not any(j.startswith("pairwise-logprob") for j in judges), judges
    html = (out / "report.html").read_text()
    assert "Online RL on the checker reward" in html and rl["aim_sentence"].split(";")[0] in html
    h = s["reward_hacking"]  # --hacking: GRPO on the reward model, the checker as gold (2 steps in --quick)
    assert h["steps"] == plan["hacking_steps"] == len(h["curve"]) and all(r["gold"] is not None for r in h["curve"])
    assert h["monitor"]["test"]["window"] == 3 and h["monitor"]["onset"] is None  # too few steps to test
    assert "Reward hacking, measured" in html and "Too few steps" in h["sentence"]


@needs_chromium
def test_report_renders_in_chromium_and_escapes_model_text(demo_run, tmp_path):
    from playwright.sync_api import sync_playwright

    from rlaif.pipelines.demo_summary import demo_report
    from rlaif.records import read_json_file
    from rlaif.report.demo_page import render_demo_html

    out, _, _ = demo_run
    # A copy of the run whose evaluation responses carry markup: it must show as text.
    copy = tmp_path / "run"
    shutil.copytree(out / "eval", copy / "eval")
    lines = (copy / "eval" / "id" / "labels.jsonl").read_text().splitlines()
    evil = "<script>window.__pwned = 1</script><img src=x onerror='window.__pwned=2'>"
    rows = [json.loads(x) for x in lines]
    for r in rows:
        r["response_a"] = evil
    (copy / "eval" / "id" / "labels.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (copy / "report.html").write_text(render_demo_html(demo_report(copy, read_json_file(out / "demo.json"))))

    shots = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for html in (out / "report.html", copy / "report.html"):
            page = browser.new_page()
            errors = []
            page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
            page.on("console", lambda m, errors=errors: errors.append(m.text) if m.type == "error" else None)
            page.goto(html.as_uri())
            page.wait_for_load_state("load")
            assert errors == [], errors
            assert page.title() == "rlaif demo report"
            assert page.locator("h2").count() >= 6
            assert page.locator("img").count() >= 3  # the charts
            shots.append(page.screenshot(full_page=True))
            if html.parent == copy:
                assert page.evaluate("window.__pwned") is None
                page.locator("details").first.evaluate("d => d.open = true")
                assert evil in page.locator("details").first.inner_text()
        browser.close()
    assert all(len(s) > 10_000 for s in shots)
    (out / "report.png").write_bytes(shots[0])
