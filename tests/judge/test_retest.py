"""Retest reliability on scripted judges with a known flip rate: every repeat is a real call (the cache is
bypassed), flip and disagreement rates by hand, Wilson intervals against statsmodels."""
from __future__ import annotations

import json
import random
import re
from collections import defaultdict

import pytest
from statsmodels.stats.proportion import proportion_confint

from rlaif.backends.scripted import ScriptedBackend
from rlaif.errors import ConfigError
from rlaif.judge import load_judge
from rlaif.judge.probe import ProbeSettings, load_probe_items, run_probes
from rlaif.judge.retest import check_retest, item_row, retest_summary

ITEMS = load_probe_items()
FLIPPERS = {it.prompt for it in ITEMS[:6]}  # the judge alternates its verdict on these prompts


def _prompt(req) -> str:
    return re.search(r"User request:\n<<<\n(.*?)\n>>>", req.messages[-1]["content"], re.S).group(1)


def test_item_row_by_hand():
    r = item_row("x", ["a", "b", "a"])
    assert r["flipped"] and r["disagreement"] == pytest.approx(2 / 3)  # pairs (1,2) and (2,3) differ
    r = item_row("y", ["a", "a", "a", "a"])
    assert not r["flipped"] and r["disagreement"] == 0.0
    r = item_row("z", [7.0, "invalid"])
    assert r["flipped"] and r["disagreement"] == 1.0


def test_alternating_judge_has_the_known_flip_rate(tmp_path):
    seen: dict[str, int] = defaultdict(int)

    def fn(req):
        content = req.messages[-1]["content"]
        seen[content] += 1
        if _prompt(req) in FLIPPERS:
            return "[[A]]" if seen[content] % 2 else "[[B]]"
        return "[[A]]"

    backend = ScriptedBackend(fn, model="retest-alt")
    j = load_judge("pairwise", model="scripted:retest-alt", backend=backend)
    rep = run_probes(j, tmp_path / "r", probes=("position",), settings=ProbeSettings(retest=3))
    n_items = 2 * len(ITEMS)  # each position pair in both orders
    assert len(backend.calls) == n_items + 3 * n_items  # the probe, then 3 uncached repeats
    rt = rep["retest"]
    flipped = 2 * len(FLIPPERS)
    assert (rt["n_items"], rt["n_flipped"], rt["repeats"]) == (n_items, flipped, 3)
    assert rt["flip_rate"]["value"] == pytest.approx(flipped / n_items)
    lo, hi = proportion_confint(flipped, n_items, alpha=0.05, method="wilson")
    assert (rt["flip_rate"]["ci_low"], rt["flip_rate"]["ci_high"]) == (pytest.approx(lo), pytest.approx(hi))
    # a flipper's 3 repeats after the probe's call: B, A, B -> 2 of 3 repeat pairs differ
    assert rt["disagreement_rate"]["value"] == pytest.approx(flipped * (2 / 3) / n_items)
    assert rt["temperature"] == 0.0
    rows = [json.loads(x) for x in (tmp_path / "r" / "retest.jsonl").read_text().splitlines()]
    assert len(rows) == n_items and sum(r["flipped"] for r in rows) == flipped
    assert "Retest" in (tmp_path / "r" / "probe.md").read_text()
    before = len(backend.calls)
    run_probes(j, tmp_path / "r2", probes=("position",), settings=ProbeSettings(retest=2))
    assert len(backend.calls) - before == 2 * n_items  # the probe is cached now; the repeats never are


def test_seeded_random_judge_matches_the_hand_count(tmp_path):
    rng = random.Random(7)
    outputs: dict[str, list[str]] = defaultdict(list)

    def fn(req):
        v = rng.choice(["[[A]]", "[[B]]", "[[C]]", "no idea"])
        outputs[req.messages[-1]["content"]].append(v)
        return v

    j = load_judge("pairwise", model="scripted:retest-rand", backend=ScriptedBackend(fn, model="retest-rand"))
    rt = run_probes(j, tmp_path / "r", probes=("position",), settings=ProbeSettings(retest=4))["retest"]
    # the last 4 outputs of each request are the repeats (the first one was the cached probe call)
    repeats = [vs[-4:] for vs in outputs.values()]
    assert all(len(vs) == 5 for vs in outputs.values())
    flipped = sum(len(set(vs)) > 1 for vs in repeats)
    disagree = sum(sum(x != y for i, x in enumerate(vs) for y in vs[i + 1:]) / 6 for vs in repeats) / len(repeats)
    assert rt["n_flipped"] == flipped and rt["flip_rate"]["value"] == pytest.approx(flipped / len(repeats))
    assert rt["disagreement_rate"]["value"] == pytest.approx(disagree)
    assert flipped > 0


def test_pointwise_retest_scores_each_answer_and_summary_of_nothing(tmp_path):
    calls: dict[str, int] = defaultdict(int)

    def fn(req):  # the same grade every time, except a wobble on the third call of the first prompt's answers
        content = req.messages[-1]["content"]
        calls[content] += 1
        return "Rating: [[4]]" if _prompt(req) == ITEMS[0].prompt and calls[content] == 3 else "Rating: [[7]]"

    j = load_judge("rubric", model="scripted:retest-rubric", backend=ScriptedBackend(fn, model="retest-rubric"))
    rt = run_probes(j, tmp_path / "p", probes=("verbosity",), settings=ProbeSettings(retest=3))["retest"]
    assert rt["n_items"] == 2 * len(ITEMS)  # the correct and the wrong answer of each item
    assert rt["n_flipped"] == 2  # the first prompt's two answers (their probe call was the first)
    s = retest_summary([], 3)
    assert s["flip_rate"]["value"] is None and s["n_items"] == 0


def test_retest_refuses_bad_counts_and_reward_models():
    j = load_judge("pairwise", model="scripted:x", backend=ScriptedBackend(lambda r: "[[A]]", model="x"))
    with pytest.raises(ConfigError, match="--retest 1.*Fix:"):
        run_probes(j, None, probes=("position",), settings=ProbeSettings(retest=1))
    with pytest.raises(ConfigError, match="--retest: .*reward model.*Fix:"):
        check_retest(load_judge("reward-model", model="ckpt"), 2)
