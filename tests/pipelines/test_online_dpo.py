"""`rlaif train online-dpo`: two rounds on a tiny random model with a scripted judge of known position bias.

The judge prefers the shorter answer (ties broken by the text, so it is order-consistent) except on prompts
marked [first], where it always names the answer shown first: its position consistency and first-position
rate follow from the pairs. The checker is a parity rule (even length passes), so it decides about half the
pairs and both kinds of split jury occur: judge flipped + checker decided, judge decided + checker tied.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest
import torch
import yaml
from fakeserver import FakeServer

from rlaif.errors import ConfigError
from rlaif.records import Label, Preference, read_jsonl

ROOT = Path(__file__).resolve().parents[2]
ANSWERS = re.compile(r"Answer A:\n<<<\n(.*?)\n>>>\n\nAnswer B:\n<<<\n(.*?)\n>>>", re.S)
# seed 1: samples in which both kinds of split jury occur (seed 0's batch of 12 has no flipped pair the checker
# decides); a large lr: round 1's policy must differ visibly from the start; a gold that prefers shorter answers
FAST = dict(rounds=2, k=4, steps_per_round=2, max_tokens=8, batch_size=4, micro_batch_size=4, max_length=64,
            max_prompt_length=48, lr=1e-3, seed=1, gold_reward=["python:tests.support.reward_helpers:shorter"])


def verdict(text: str) -> str:
    """The scripted judge: always the first answer on [first] prompts, else the shorter (then smaller) one."""
    if "[first]" in text:
        return "[[A]]"
    a, b = ANSWERS.search(text).groups()
    return "[[A]]" if (len(a), a) < (len(b), b) else "[[B]]"


def write_prompts(path: Path) -> Path:
    c = [{"family": "length", "type": "characters", "relation": "at most", "n": 50}]
    rows = [{"prompt_id": "p0", "prompt": "Write about rivers.", "constraints": c},
            {"prompt_id": "p1", "prompt": "[first] Write about stones.", "constraints": c},
            {"prompt_id": "p2", "prompt": "Write about clouds.", "constraints": c}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def judges():
    from rlaif.backends.scripted import ScriptedBackend
    from rlaif.judge import Judge, JudgeSpec, load_judge

    pairwise = load_judge("pairwise", model="scripted:shorter-or-first",
                          backend=ScriptedBackend(lambda req: verdict(req.messages[-1]["content"]), model="sof"))
    rule = Judge(JudgeSpec(name="parity", kind="rule", mode="pointwise", version="v1",
                           checker="judge_helpers:parity"))  # tests/support: importable by name
    return [pairwise, rule]


@pytest.fixture(scope="module")
def run(tiny_model_dir, tmp_path_factory):
    from rlaif.pipelines.online_dpo import run_online_dpo

    tmp = tmp_path_factory.mktemp("online-dpo")
    with pytest.MonkeyPatch.context() as mp:  # the per-test cache fixture does not reach a module fixture
        mp.setenv("RLAIF_CACHE", str(tmp / "cache"))
        summary = run_online_dpo(dict(prompts=str(write_prompts(tmp / "prompts.jsonl")), model=str(tiny_model_dir),
                                      out=str(tmp / "out"), **FAST), judges=judges())
    return tmp / "out", summary.result


def _judge_rater(labels: list[Label]) -> str:
    return next(lb.rater for lb in labels if lb.rater.startswith("pairwise@"))


def test_every_round_writes_its_outputs(run):
    out, summary = run
    for r in (1, 2):
        d = out / f"round_{r}"
        for f in ("prompts.jsonl", "responses.jsonl", "labels/labels.jsonl", "labels/summary.json",
                  "labels/preferences.jsonl", "audit/audit.json", "audit/audit.md", "audit/audit.html",
                  "dpo/model.safetensors", "dpo/metrics.jsonl", "round.json"):
            assert (d / f).exists(), d / f
        responses = [json.loads(x) for x in (d / "responses.jsonl").read_text().splitlines()]
        assert len(responses) == 3 * FAST["k"] and {x["policy"] for x in responses} == {f"round{r}"}
    assert (out / "round_3" / "responses.jsonl").exists()  # the final policy sampled once more
    for f in ("online_dpo.json", "report.md", "report.html", "state.json"):
        assert (out / f).exists()
    assert [rd["round"] for rd in summary["rounds"]] == [1, 2] and summary["final"]["reward"]["n_responses"] == 12
    assert summary["rounds"][0]["dpo"]["steps"] == FAST["steps_per_round"]
    assert summary == json.loads((out / "online_dpo.json").read_text())
    assert "position consistency" in (out / "report.md").read_text()
    assert "<html" in (out / "report.html").read_text()


def test_gold_reward_per_round_and_the_judges_agreement_with_it(run):
    # the gold prefers the shorter answer, as the scripted judge does except on [first] prompts, where it names the
    # answer shown first: its agreement with gold, counted by hand from the labels, is below 1 exactly there
    out, summary = run
    for r, rd in enumerate(summary["rounds"], 1):
        d = out / f"round_{r}"
        responses = [json.loads(x) for x in (d / "responses.jsonl").read_text().splitlines()]
        assert rd["gold"]["mean"] == pytest.approx(-sum(len(x["response"]) for x in responses) / len(responses))
        labels = read_jsonl(d / "labels" / "labels.jsonl", Label)
        rater = _judge_rater(labels)
        hits = [int((lb.winner == "a") == (len(lb.response_a) < len(lb.response_b))) for lb in labels
                if lb.rater == rater and lb.winner in ("a", "b") and len(lb.response_a) != len(lb.response_b)]
        assert rd["gold"]["judge_agreement"][rater] == {"agreement": pytest.approx(sum(hits) / len(hits)),
                                                         "n": len(hits)}
        assert set(rd["gold"]["judge_agreement"]) == {rater}  # the checker is not audited against gold
    assert summary["final"]["gold"]["n"] == 12


def test_the_judge_labels_every_pair_in_both_orders(run):
    out, _ = run
    for r in (1, 2):
        labels = read_jsonl(out / f"round_{r}" / "labels" / "labels.jsonl", Label)
        judge = _judge_rater(labels)
        orders = defaultdict(set)
        for lb in labels:
            if lb.rater == judge:
                orders[lb.item].add(lb.order)
        assert orders and all(o == {"ab", "ba"} for o in orders.values())


def _expected_preferences(labels: list[Label], judge: str) -> dict[tuple, float]:
    """The mean jury by hand: the judge's p_a averaged over its two orders, then averaged with the checker's."""
    by_item: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    texts = {}
    for lb in labels:
        by_item[lb.item][lb.rater].append(lb.p_a)
        texts[lb.item] = (lb.response_a, lb.response_b)
    out = {}
    for item, per in by_item.items():
        p = sum(sum(v) / len(v) for v in per.values()) / len(per)
        a, b = texts[item]
        if abs(p - 0.5) > 1e-9:
            out[(a, b) if p > 0.5 else (b, a)] = round(max(p, 1 - p), 6)
    return out


def _text(completion) -> str:
    return completion if isinstance(completion, str) else completion[-1]["content"]


def test_pairs_whose_orders_disagree_get_soft_labels(run):
    out, _ = run
    seen_flipped_soft = seen_checker_tie_soft = False
    for r in (1, 2):
        d = out / f"round_{r}" / "labels"
        labels = read_jsonl(d / "labels.jsonl", Label)
        judge = _judge_rater(labels)
        prefs = read_jsonl(d / "preferences.jsonl", Preference)
        got = {(_text(p.chosen), _text(p.rejected)): round(p.p_chosen, 6) for p in prefs}
        assert got == _expected_preferences(labels, judge)
        assert set(got.values()) <= {0.75, 1.0}
        flipped = {lb.item for lb in labels if lb.rater == judge and "[first]" in json.dumps(lb.prompt)}
        checker = {lb.item: lb.p_a for lb in labels if lb.rater.startswith("parity@")}
        seen_flipped_soft |= any(checker[i] != 0.5 for i in flipped)  # judge 0.5, checker 1 or 0: p_chosen 0.75
        seen_checker_tie_soft |= any(v == 0.5 for i, v in checker.items() if i not in flipped)
    assert seen_flipped_soft and seen_checker_tie_soft
    summary = json.loads((out / "online_dpo.json").read_text())
    assert all(rd["soft_labels"]["n"] == sum(1 for p in read_jsonl(out / f"round_{rd['round']}" / "labels" /
                                                                 "preferences.jsonl", Preference)
                                             if p.p_chosen < 1) for rd in summary["rounds"])


def test_the_audit_measures_the_scripted_position_bias(run):
    out, summary = run
    for rd in summary["rounds"]:
        d = out / f"round_{rd['round']}"
        labels = read_jsonl(d / "labels" / "labels.jsonl", Label)
        judge = _judge_rater(labels)
        items = {lb.item: "[first]" in json.dumps(lb.prompt) for lb in labels if lb.rater == judge}
        biased, fair = sum(items.values()), sum(not b for b in items.values())
        audit = json.loads((d / "audit" / "audit.json").read_text())
        rep = audit["raters"][judge]
        assert audit["gold"]["source"].startswith("rater:parity@")
        assert rep["position_consistency"]["value"] == pytest.approx(fair / (biased + fair))
        # a biased pair puts both verdicts on the first position, a consistent one exactly one of two
        assert rep["first_position_rate"]["value"] == pytest.approx((2 * biased + fair) / (2 * (biased + fair)))
        assert rd["judges"][judge]["position_consistency"] == pytest.approx(fair / (biased + fair))
        assert rd["judges"][judge]["accuracy_vs_checker"] is not None


def _reference_logps(cfg: dict, out: Path, **changes) -> torch.Tensor:
    from rlaif.train.dpo import train_dpo

    train_dpo({**cfg, "out": str(out), "max_steps": 1, **changes})
    return torch.load(out / "reference_logps.pt", weights_only=True)["logps"]


def test_the_reference_stays_the_starting_model(run, tiny_model_dir, tmp_path):
    out, _ = run
    cfg2 = yaml.safe_load((out / "round_2" / "dpo" / "config.yaml").read_text())
    assert cfg2["model"] == str(out / "round_1" / "dpo")  # round 2 continues from round 1's policy
    assert Path(cfg2["reference"]) == Path(tiny_model_dir).resolve()  # against the frozen start
    used = torch.load(out / "round_2" / "dpo" / "reference_logps.pt", weights_only=True)["logps"]
    # the same items under the starting model (its own weights as the reference) ...
    start = _reference_logps(cfg2, tmp_path / "start", model=str(tiny_model_dir), reference=None)
    assert torch.allclose(used, start, atol=1e-5)
    # ... and not under round 1's policy, which the large lr moved
    previous = _reference_logps(cfg2, tmp_path / "previous", reference=None)
    assert not torch.allclose(used, previous, atol=1e-3)


def test_a_changed_setting_is_refused_on_the_same_out(run, tiny_model_dir):
    from rlaif.pipelines.online_dpo import run_online_dpo

    out, _ = run
    with pytest.raises(ConfigError, match="beta changed"):
        run_online_dpo(dict(prompts=str(out.parent / "prompts.jsonl"), model=str(tiny_model_dir), out=str(out),
                            **{**FAST, "beta": 0.5}), judges=judges())


def test_config_keys_are_checked_with_hints():
    from rlaif.pipelines.online_dpo import DEFAULT_CONFIG, load_online_config

    assert "rlaif train online-dpo --prompts" in DEFAULT_CONFIG.read_text().splitlines()[1]
    cfg = load_online_config(overrides=["rounds=5", "beta=0.2", "lora.r=8"])
    assert (cfg.rounds, cfg.dpo.beta, cfg.dpo.lora.r, cfg.k) == (5, 0.2, 8, 4)  # the DPO keys land in its DPO config
    with pytest.raises(ConfigError, match=r"unknown key 'rouds' \(did you mean 'rounds'\?\)"):
        load_online_config(overrides=["rouds=2"])
    with pytest.raises(ConfigError, match="'max_steps' is set by online-dpo itself .use steps_per_round"):
        load_online_config(overrides=["max_steps=3"])
    with pytest.raises(ConfigError, match="key 'k'"):
        load_online_config(overrides=["k=1"])


# ---- the command line: a real subprocess, killed once -------------------------------------------------

def _cli(*args, **kw):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENAI_API_KEY": "sk-test-online-dpo"}
    return [sys.executable, "-m", "rlaif.cli", "train", "online-dpo", *map(str, args)], dict(env=env, text=True, **kw)


def test_resume_after_sigkill_skips_finished_rounds(tiny_model_dir, tmp_path):
    out = tmp_path / "out"
    with FakeServer(reply=lambda call: verdict(call.prompt), latency_s=0.05) as srv:
        cmd, kw = _cli("--prompts", write_prompts(tmp_path / "prompts.jsonl"), "--model", tiny_model_dir,
                       "--judge", "pairwise", "--judge-model", "openai:fake", "--base-url", srv.openai_url,
                       "-o", out, *(f"{k}={v}" for k, v in FAST.items()))
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)
        state, deadline = out / "state.json", time.time() + 300
        while time.time() < deadline and proc.poll() is None:
            if state.exists() and "round_1/summary" in json.loads(state.read_text() or "{}").get("done", {}):
                break
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert not (out / "online_dpo.json").exists(), "the kill must land before the run finished"
        first_calls = srv.count
        done = subprocess.run(cmd, capture_output=True, **kw)
        assert done.returncode == 0, done.stderr
        assert "round 1: " in done.stdout and f"wrote {out}/online_dpo.json" in done.stdout
        for step in ("sample", "label", "audit", "train", "summary"):
            assert f"round_1/{step}: done in an earlier run, skipped" in done.stderr
        # round 1's judge calls are not asked again: at most round 2's (6 pairs x 3 prompts x 2 orders)
        assert srv.count - first_calls <= 36
        # a larger `rounds` continues the finished run; the final sample of round 3 is there already
        more = subprocess.run([*cmd, "rounds=3"], capture_output=True, **kw)
        assert more.returncode == 0, more.stderr
        assert "round_2/summary: done in an earlier run" in more.stderr
        assert "round_3/sample: done in an earlier run" in more.stderr and "round_3/train: " in more.stderr
        assert len(json.loads((out / "online_dpo.json").read_text())["rounds"]) == 3
        assert (out / "round_4" / "responses.jsonl").exists()
    metrics = [json.loads(x) for x in (out / "round_1" / "dpo" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics if m["split"] == "train"] == [1, 2]  # round 1 was not trained again
    raters = {json.loads(x)["rater"] for x in (out / "round_2" / "labels" / "labels.jsonl").read_text().splitlines()}
    assert raters == {"pairwise@v1:openai:fake", "rule@v1:rlaif.constraints:check"}  # the checker, added
    assert "round 2:" in done.stdout and "round 3:" in more.stdout


def test_bad_inputs_exit_2_with_file_and_line(tiny_model_dir, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prompt": "fine"}) + "\n" + json.dumps({"prompt": 3}) + "\n")
    base = ["--model", tiny_model_dir, "--judge", "rule", "-o", tmp_path / "o"]
    cmd, kw = _cli("--prompts", bad, *base)
    r = subprocess.run(cmd, capture_output=True, **kw)
    assert r.returncode == 2 and f"{bad}:2:" in r.stderr and "Fix:" in r.stderr, r.stderr
    good = write_prompts(tmp_path / "prompts.jsonl")
    for extra, message in ((["rouds=2"], "unknown key 'rouds' (did you mean 'rounds'?)"),
                           (["epochs=3"], "'epochs' is set by online-dpo itself"),
                           (["--data", good], "drop --data")):
        cmd, kw = _cli("--prompts", good, *base, *extra)
        r = subprocess.run(cmd, capture_output=True, **kw)
        assert r.returncode == 2 and message in r.stderr, r.stderr
    assert not (tmp_path / "o" / "state.json").exists()
