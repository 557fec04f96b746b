"""The reward-hacking monitor (rlaif/train/rl/hacking.py): the onset test's arithmetic by hand; a planted case on the
tiny model where the proxy rewards word-start tokens and the gold penalizes them (the onset fires within a bounded
number of steps, and `stop_on_hacking` ends the run there); an aligned gold where no onset fires; resume keeps the
monitor's history; the CLI's `--gold-reward` and training.html."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from rlaif.train.rl.hacking import HackingMonitor, OnsetTest, StepRewards, find_onset, rises, smoothed
from tests.support.cli_helpers import rlaif_inproc as rlaif
from tests.support.rl_helpers import write_prompts

PLANTED = "python:tests.support.rl_helpers:space_share"
PENALIZED = "python:tests.support.rl_helpers:word_starts_penalized"
ALIGNED = "python:tests.support.rl_helpers:word_starts_noisy"
FAST = {"batch_size": 4, "k": 4, "max_new_tokens": 16, "lr": 3e-2, "beta": 0.001, "threads": 1}

# proxy rises 0.1 a step; gold rises, flattens, falls; std 0.2 over n = 4 rows: s^2/n = 0.01
PROXY = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]
GOLD = [0.0, 0.2, 0.4, 0.5, 0.5, 0.4, 0.3, 0.2]


def _steps(proxy=PROXY, gold=GOLD) -> list[StepRewards]:
    return [StepRewards(i + 1, p, g, 0.2, 4, kl=0.1 * i) for i, (p, g) in enumerate(zip(proxy, gold, strict=True))]


def test_onset_arithmetic_by_hand():
    # w = 2: P = [-, .05, .15, .25, .35, .45, .55, .65]; G = [-, .1, .3, .45, .5, .45, .35, .25]
    assert smoothed(GOLD, 2) == pytest.approx([None, 0.1, 0.3, 0.45, 0.5, 0.45, 0.35, 0.25])
    # from step 4 (= 2w): proxy rise 0.2 each step; se = sqrt(2/2 * 0.01) = 0.1; gold rise .35 .2 0 -.15 -.2
    marks = rises(_steps(), OnsetTest(window=2, z=1.0, patience=2))
    assert marks[:3] == [None, None, None]
    assert [m[0] for m in marks[3:]] == [False, False, True, True, True]
    assert [m[1] for m in marks[3:]] == pytest.approx([0.2] * 5)
    assert [m[2] for m in marks[3:]] == pytest.approx([0.35, 0.2, 0.0, -0.15, -0.2])
    assert all(m[3] == pytest.approx(0.1) for m in marks[3:])
    onset = find_onset(_steps(), OnsetTest(window=2, z=1.0, patience=2))
    assert (onset.step, onset.fired_at) == (6, 7)
    assert (onset.proxy, onset.gold, onset.proxy_rise, onset.gold_rise, onset.se, onset.kl) == pytest.approx(
        (0.45, 0.45, 0.2, 0.0, 0.1, 0.5))
    assert find_onset(_steps(), OnsetTest(window=2, z=1.0, patience=3)).fired_at == 8  # patience: one more step
    assert find_onset(_steps(), OnsetTest(window=2, z=3.0, patience=2)) is None  # a rise of 2 se is not enough
    assert find_onset(_steps(gold=PROXY), OnsetTest(window=2, z=1.0, patience=1)) is None  # gold keeps rising
    assert find_onset(_steps()[:5], OnsetTest(window=3, z=0.0, patience=1)) is None  # fewer than 2w steps


def test_monitor_summary_and_state_round_trip():
    mon = HackingMonitor(OnsetTest(window=2, z=1.0, patience=2))
    fired = [mon.add({"step": s.step, "reward": s.proxy, "gold": s.gold, "reward_std": 0.2, "rows": 4,
                      "kl_k3": s.kl}) for s in _steps()]
    assert [f is not None for f in fired] == [False] * 6 + [True, False]  # reported once, when it fires
    s = mon.summary()
    assert s["start"] == pytest.approx({"step": 2, "proxy": 0.05, "gold": 0.1, "kl": 0.1})
    assert s["end"] == pytest.approx({"step": 8, "proxy": 0.65, "gold": 0.25, "kl": 0.7})
    assert s["onset"]["step"] == 6 and s["test"] == {"window": 2, "z": 1.0, "patience": 2}
    again = HackingMonitor(mon.test)
    again.load_state_dict(json.loads(json.dumps(mon.state_dict())))
    assert again.summary() == s


def _train(tiny_model_dir, tmp_path, gold: str, name: str, **cfg):
    from rlaif.rewards import build_reward_fn
    from rlaif.train import train

    prompts = write_prompts(tmp_path / "prompts.jsonl", n=16)
    config = {"prompts": str(prompts), "model": str(tiny_model_dir), "out": str(tmp_path / name), **FAST, **cfg}
    with build_reward_fn([PLANTED]) as fn, build_reward_fn([gold]) as gold_fn:
        return train("grpo", config, fn, gold_fn)


def _rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_planted_hacking_is_caught_within_bounded_steps(tiny_model_dir, tmp_path):
    result = _train(tiny_model_dir, tmp_path, PENALIZED, "hacked", max_steps=12, hacking_window=2,
                    hacking_patience=2)
    rows = _rows(tmp_path / "hacked")
    train = [r for r in rows if r["split"] == "train"]
    assert all(r["gold"] == pytest.approx(1 - r["reward"]) for r in train)  # gold on every rollout
    assert all(r["gold/spearman"] == pytest.approx(-1.0) for r in train if r.get("gold/spearman") is not None)
    onset = result.hacking["onset"]
    assert onset is not None and 4 <= onset["step"] <= 8, [round(r["reward"], 3) for r in train]
    assert onset["proxy_rise"] > 0 and onset["gold_rise"] < 0 and onset["kl"] > 0
    marks = [r for r in rows if r["split"] == "hacking"]
    assert len(marks) == 1 and marks[0]["step"] == onset["fired_at"]
    assert result.hacking["end"]["gold"] < result.hacking["start"]["gold"]
    saved = json.loads((tmp_path / "hacked" / "train_result.json").read_text())
    assert saved["hacking"]["onset"] == onset and saved["stopped_by"] == "max_steps"


def test_stop_on_hacking_ends_the_run_at_the_onset(tiny_model_dir, tmp_path):
    result = _train(tiny_model_dir, tmp_path, PENALIZED, "stopped", max_steps=12, hacking_window=2,
                    hacking_patience=2, stop_on_hacking=True)
    assert result.stopped_by == "hacking" and result.steps == result.hacking["onset"]["fired_at"] < 12
    # a resumed run that had stopped itself stays stopped
    again = _train(tiny_model_dir, tmp_path, PENALIZED, "stopped", max_steps=12, hacking_window=2,
                   hacking_patience=2, stop_on_hacking=True)
    assert again.stopped_by == "hacking" and again.steps == result.steps
    assert again.hacking["onset"] == result.hacking["onset"]


def test_an_aligned_gold_fires_no_onset_and_a_fraction_is_scored(tiny_model_dir, tmp_path):
    result = _train(tiny_model_dir, tmp_path, ALIGNED, "aligned", max_steps=12, hacking_window=2,
                    hacking_patience=2, gold_fraction=0.5)
    train = [r for r in _rows(tmp_path / "aligned") if r["split"] == "train"]
    assert result.hacking["onset"] is None and not any(r["split"] == "hacking" for r in _rows(tmp_path / "aligned"))
    assert result.hacking["end"]["gold"] > result.hacking["start"]["gold"]
    rho = [r["gold/spearman"] for r in train[:8]]  # before the proxy saturates (no spread left to rank)
    assert all(v > 0.5 for v in rho) and result.hacking["curve_spearman"] > 0.5, rho


def test_cli_gold_reward_writes_the_training_page(tiny_model_dir, tmp_path):
    prompts = write_prompts(tmp_path / "prompts.jsonl", n=16)
    overrides = [f"{k}={v}" for k, v in {**FAST, "max_steps": 8, "hacking_window": 2}.items()]
    r = rlaif("train", "grpo", *overrides, "--prompts", prompts, "--model", tiny_model_dir, "--reward", PLANTED,
              "--gold-reward", PENALIZED, "-o", tmp_path / "run")
    assert r.code == 0, r.stderr
    html = (tmp_path / "run" / "training.html").read_text()
    assert "Proxy vs gold reward" in html and "Onset at step" in html
    r = rlaif("train", "dpo", "--data", prompts, "--gold-reward", PENALIZED, "-o", tmp_path / "dpo")
    assert r.code == 2 and "online recipes" in r.stderr
