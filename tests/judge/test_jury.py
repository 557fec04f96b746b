"""Pairing, per-judge aggregation, jury consensus, Dawid–Skene, datasets and Wilson intervals."""
from __future__ import annotations

import json

import pytest

from rlaif.errors import ConfigError
from rlaif.judge.dawid_skene import dawid_skene
from rlaif.judge.jury import consensus, judge_verdicts
from rlaif.judge.labeling import ScoreRecord
from rlaif.judge.pairing import all_pairs, best_worst_pairs, make_pair, reference_pairs
from rlaif.judge.preferences import build_kto, build_preferences
from rlaif.judge.probe import build_probe_pairs, load_lines, load_probe_items, probe_rates
from rlaif.records import Label, Preference, Response, write_jsonl
from rlaif.stats.intervals import wilson_interval


def R(pid, policy, text, sample=0, prompt=None):
    return Response(prompt_id=pid, prompt=prompt if prompt is not None else f"question {pid}", policy=policy,
                    sample=sample, response=text)


def L(item, rater, order, winner, p_a, error=None):
    return Label(item=item, rater=rater, order=order, winner=winner, p_a=p_a, error=error)


# ---- pairing ------------------------------------------------------------------------------------------

def test_all_pairs_per_prompt_skips_identical():
    rs = [R("q1", "x", "one"), R("q1", "y", "two"), R("q1", "z", "three"), R("q2", "x", "same"),
          R("q2", "y", "same "), R("q2", "x", "other", sample=1)]
    pairs = all_pairs(rs)
    assert len(pairs) == 3 + 2  # C(3,2) on q1; on q2 the identical pair (x#0, y#0) is skipped
    assert pairs[0].item == "q1:x#0~y#0" and pairs[0].a.policy == "x"
    assert len(all_pairs(rs, skip_identical=False)) == 6
    with pytest.raises(ConfigError, match="share prompt_id/policy/sample"):
        all_pairs([R("q1", "x", "a"), R("q1", "x", "b")])


def test_reference_and_best_worst_pairs():
    rs = [R("q1", "ref", "r0"), R("q1", "ref", "r1", sample=1), R("q1", "pol", "p0"), R("q1", "pol", "p1", sample=1),
          R("q1", "other", "o2", sample=2), R("q2", "pol", "lonely")]
    pairs = reference_pairs(rs, "ref")
    assert [(p.a.response, p.b.response) for p in pairs] == [("o2", "r0"), ("p0", "r0"), ("p1", "r1")]
    with pytest.raises(ConfigError, match="--reference"):
        reference_pairs(rs, "nobody")
    scores = {"r0": 3, "r1": 9, "p0": 9, "p1": 1, "o2": None, "lonely": 5}
    bw = best_worst_pairs(rs, lambda r: scores[r.response])
    # q1: best is 9 (pol#0 sorts before ref#1), worst is 1; q2 has one scored response: no pair
    assert [(p.a.response, p.b.response) for p in bw] == [("p0", "p1")]
    assert best_worst_pairs([R("q", "x", "a"), R("q", "y", "b")], lambda r: 5) == []


# ---- per-judge verdicts and consensus -----------------------------------------------------------------

def test_judge_verdicts_average_orders_and_flips():
    labels = [
        L("i1", "j", "ab", "a", 0.9), L("i1", "j", "ba", "a", 0.7),  # consistent: p_a 0.8
        L("i2", "j", "ab", "a", 1.0), L("i2", "j", "ba", "b", 0.0),  # flip: p_a 0.5 -> tie
        L("i3", "j", "ab", "b", 0.2), L("i3", "j", "ba", None, None, error="no verdict"),  # one order only
    ]
    v = judge_verdicts(labels)
    assert v["i1"]["j"].p_a == pytest.approx(0.8) and v["i1"]["j"].winner == "a" and v["i1"]["j"].flipped is False
    assert v["i2"]["j"].winner == "tie" and v["i2"]["j"].flipped is True
    assert v["i3"]["j"].winner == "b" and v["i3"]["j"].flipped is None and v["i3"]["j"].n_valid == 1


def test_consensus_majority_mean_agreement():
    labels = [L("i", "j1", "ab", "a", 0.6), L("i", "j2", "ab", "a", 0.6), L("i", "j3", "ab", "b", 0.0),
              L("k", "j1", "ab", "a", 1.0), L("k", "j2", "ab", "b", 0.0), L("k", "j3", "ab", None, None, error="x")]
    v = judge_verdicts(labels)
    maj = consensus(v, "majority")
    assert maj["i"].winner == "a" and maj["i"].agreement == pytest.approx(2 / 3)
    assert maj["i"].p_a == pytest.approx(0.4)  # mean of 0.6, 0.6, 0.0: majority winner, honest mean
    assert maj["k"].winner == "tie" and maj["k"].raters == ["j1", "j2"]  # invalid j3 excluded
    mean = consensus(v, "mean")
    assert mean["i"].winner == "b" and mean["i"].agreement == pytest.approx(1 / 3)
    with pytest.raises(ConfigError):
        consensus(v, "vibes")


def test_dawid_skene_one_step_by_hand():
    """Votes (r1, r2): i1 (a, a), i2 (a, b), i3 (b, b), i4 (a, a); smoothing 1, one EM step.

    Init from majority: T = (1,0), (.5,.5), (0,1), (1,0); prior = (2.5/4, 1.5/4).
    Confusion counts + 1, rows over (obs a, obs b, obs tie):
      r1 | true a: (2.5+1, 0+1, 1) / 5.5   r1 | true b: (0.5+1, 1+1, 1) / 4.5
      r2 | true a: (2+1, 0.5+1, 1) / 5.5   r2 | true b: (0+1, 1.5+1, 1) / 4.5
    i2: P(a) ∝ .625 * 3.5/5.5 * 1.5/5.5;  P(b) ∝ .375 * 1.5/4.5 * 2.5/4.5.
    The reported confusion is the M-step on those new posteriors T': r1 | true b =
      (sum of T'_b over r1's "a" items + 1, T'_b(i3) + 1, 1) / (sum of T'_b + 3).
    """
    votes = [("i1", "r1", "a"), ("i1", "r2", "a"), ("i2", "r1", "a"), ("i2", "r2", "b"),
             ("i3", "r1", "b"), ("i3", "r2", "b"), ("i4", "r1", "a"), ("i4", "r2", "a")]
    fit = dawid_skene(votes, max_iter=1, smoothing=1.0)
    pa = 0.625 * 3.5 / 5.5 * 1.5 / 5.5
    pb = 0.375 * 1.5 / 4.5 * 2.5 / 4.5
    assert fit.posterior_a["i2"] == pytest.approx(pa / (pa + pb), rel=1e-12)
    tb = {i: 1 - fit.posterior_a[i] for i in ("i1", "i2", "i3", "i4")}
    total = sum(tb.values()) + 3
    assert fit.confusion["r1"][1] == pytest.approx(
        [(tb["i1"] + tb["i2"] + tb["i4"] + 1) / total, (tb["i3"] + 1) / total, 1 / total], rel=1e-12)


@pytest.mark.filterwarnings("ignore")  # crowd-kit's pandas deprecation warnings
def test_dawid_skene_matches_crowd_kit():
    pd = pytest.importorskip("pandas")
    ck = pytest.importorskip("crowdkit.aggregation")
    import random

    rng = random.Random(3)
    acc = {"good1": 0.9, "good2": 0.8, "noisy": 0.6, "contrarian": 0.3}
    votes = []
    for i in range(60):
        truth = rng.choice("ab")
        for r, p in acc.items():
            if rng.random() < 0.85:  # not every judge sees every item
                votes.append((f"i{i}", r, truth if rng.random() < p else ("b" if truth == "a" else "a")))
    # The same number of EM steps on both sides (crowd-kit stops on its ELBO, which is not monotone
    # once probabilities are clipped; a very negative tol disables that stop).
    mine = dawid_skene(votes, max_iter=30, tol=0.0, smoothing=0.0)
    df = pd.DataFrame(votes, columns=["task", "worker", "label"])
    ref = ck.DawidSkene(n_iter=30, tol=-1e9).fit(df).probas_
    for item, p in mine.posterior_a.items():
        assert p == pytest.approx(ref.loc[item, "a"], abs=1e-9)
    assert mine.accuracy("good1") > mine.accuracy("noisy") > mine.accuracy("contrarian")


def test_dawid_skene_jury_ignores_a_constant_judge():
    """Two judges always say a; two reliable ones name the truth. On the 'b' items majority is a
    tie (2 vs 2); Dawid–Skene sees the constant judges carry no information and picks b."""
    labels = []
    for i in range(10):
        truth = "a" if i % 2 else "b"
        for r in ("const1", "const2"):
            labels.append(L(f"i{i}", r, "ab", "a", 1.0))
        for r in ("good1", "good2"):
            labels.append(L(f"i{i}", r, "ab", truth, 1.0 if truth == "a" else 0.0))
    v = judge_verdicts(labels)
    maj, ds = consensus(v, "majority"), consensus(v, "dawid-skene")
    assert maj["i0"].winner == "tie" and maj["i1"].winner == "a"
    assert ds["i0"].winner == "b" and ds["i0"].p_a < 0.01 and ds["i0"].agreement == 0.5
    assert ds["i1"].winner == "a"


# ---- datasets --------------------------------------------------------------------------------------------

def _pairs_and_labels(chat=False):
    prompt = [{"role": "user", "content": "hi"}] if chat else None
    rs = [R("q1", "x", "good", prompt=prompt), R("q1", "y", "bad", prompt=prompt),
          R("q2", "x", "meh", prompt=prompt), R("q2", "y", "meh too", prompt=prompt),
          R("q3", "x", "left", prompt=prompt), R("q3", "y", "right", prompt=prompt)]
    pairs = [make_pair(rs[0], rs[1]), make_pair(rs[2], rs[3]), make_pair(rs[4], rs[5])]
    labels = [
        L(pairs[0].item, "j1", "ab", "a", 0.9), L(pairs[0].item, "j1", "ba", "a", 0.7),
        L(pairs[0].item, "j2", "ab", "a", 1.0), L(pairs[0].item, "j2", "ba", "a", 1.0),
        L(pairs[1].item, "j1", "ab", "a", 1.0), L(pairs[1].item, "j1", "ba", "b", 0.0),  # flip -> tie
        L(pairs[1].item, "j2", "ab", "tie", 0.5), L(pairs[1].item, "j2", "ba", "tie", 0.5),
        L(pairs[2].item, "j1", "ab", "b", 0.1), L(pairs[2].item, "j1", "ba", "b", 0.3),
        L(pairs[2].item, "j2", "ab", "a", 0.8), L(pairs[2].item, "j2", "ba", None, None, error="bad"),
    ]
    return pairs, labels


def test_build_preferences_soft_labels_and_min_agreement():
    pairs, labels = _pairs_and_labels()
    ps = build_preferences(pairs, labels, jury="mean")
    assert [p.chosen for p in ps.preferences] == ["good"]
    first = ps.preferences[0]
    assert first.p_chosen == pytest.approx((0.8 + 1.0) / 2) and first.agreement == 1.0
    assert first.chosen_policy == "x" and first.rejected_policy == "y" and first.judges == ["j1", "j2"]
    # q3: j1 says b (0.2), j2 says a (0.8, one order valid): mean 0.5 -> tie under "mean"
    assert ps.n_ties == 2
    maj = build_preferences(pairs, labels, jury="majority")
    assert maj.n_ties == 2  # q2 both tie-ish, q3 one vote each
    strict = build_preferences(pairs, labels[:4] + labels[8:10], jury="majority", min_agreement=1.0)
    assert len(strict.preferences) == 2  # q1 (both agree) and q3 (j1 alone)
    confident = build_preferences(pairs, labels, jury="mean", min_p_chosen=0.95)
    assert confident.preferences == [] and confident.n_low_confidence == 1  # q1's p_chosen is 0.9
    contested = build_preferences(pairs, labels, jury="dawid-skene", min_agreement=0.9)
    assert contested.n_contested + len(contested.preferences) + contested.n_ties == 3


@pytest.mark.parametrize("chat", [False, True])
def test_preferences_and_kto_load_with_datasets(tmp_path, chat):
    datasets = pytest.importorskip("datasets")
    pairs, labels = _pairs_and_labels(chat)
    ps = build_preferences(pairs, labels, jury="majority")
    kto = build_kto(pairs, ps, [], [])
    pf, kf = tmp_path / "preferences.jsonl", tmp_path / "kto.jsonl"
    write_jsonl(pf, ps.preferences)
    write_jsonl(kf, kto)
    ds = datasets.load_dataset("json", data_files=str(pf), split="train")
    assert ds.num_rows == len(ps.preferences) == 1
    row = ds[0]
    for k in ("prompt", "chosen", "rejected", "p_chosen", "prompt_id", "chosen_policy", "rejected_policy",
              "judges", "agreement"):
        assert k in ds.column_names
    if chat:  # conversational: prompt and completions are message lists
        assert row["prompt"] == [{"role": "user", "content": "hi"}]
        assert row["chosen"] == [{"role": "assistant", "content": "good"}]
    else:
        assert isinstance(row["prompt"], str) and row["chosen"] == "good" and row["rejected"] == "bad"
    Preference.model_validate(json.loads(pf.read_text().splitlines()[0]))
    kds = datasets.load_dataset("json", data_files=str(kf), split="train")
    assert sorted(kds["label"]) == [False, True] and {"prompt", "completion", "label"} <= set(kds.column_names)


def test_kto_from_binary_judge_scores():
    pairs, _ = _pairs_and_labels()
    scores = [ScoreRecord(key="q1:x#0", rater="bin", prompt_id="q1", policy="x", score=1.0),
              ScoreRecord(key="q1:y#0", rater="bin", prompt_id="q1", policy="y", score=0.0),
              ScoreRecord(key="q2:x#0", rater="bin", prompt_id="q2", policy="x", score=None, error="?"),
              ScoreRecord(key="q1:y#0", rater="other", prompt_id="q1", policy="y", score=1.0)]
    kto = build_kto(pairs, build_preferences(pairs, []), scores, ["bin"])
    assert [(k.completion, k.label) for k in kto] == [("good", True), ("bad", False)]


# ---- probes -------------------------------------------------------------------------------------------------

def test_wilson_interval_by_hand_and_statsmodels():
    smp = pytest.importorskip("statsmodels.stats.proportion")
    # published value for 3/10 at 95%: (0.1078, 0.6032)
    # the probes' interval is rlaif.stats.intervals.wilson_interval(k / n, n, 1 - alpha)
    lo, hi = wilson_interval(3 / 10, 10)
    assert (round(lo, 4), round(hi, 4)) == (0.1078, 0.6032)
    for k, n, alpha in [(0, 10, 0.05), (10, 10, 0.05), (7, 50, 0.1), (1, 1, 0.05), (48, 200, 0.01)]:
        ref = smp.proportion_confint(k, n, alpha=alpha, method="wilson")
        assert wilson_interval(k / n, n, 1 - alpha) == pytest.approx(ref, abs=1e-12)
    empty = probe_rates("verbosity", [])  # no verdict: no interval
    assert (empty["ci_low"], empty["ci_high"]) == (None, None)


def test_probe_set_and_pairs():
    items = load_probe_items()
    assert len(items) >= 20 and len({i.id for i in items}) == len(items)
    fillers, injections = load_lines("probe_filler_v1"), load_lines("probe_injections_v1")
    pairs = build_probe_pairs(items, fillers, injections, own={items[0].id: "my own answer"})
    assert len(pairs["position"]) == len(items) and len(pairs["self-preference"]) == 1
    v = pairs["verbosity"][0]
    assert v.b.response.startswith(items[0].worse) and len(v.b.response) > len(v.b.response.split(".")[0]) + 20
    assert any(s in pairs["injection"][0].b.response for s in injections)
    assert all(p.a.policy in ("better", "reference") for ps in pairs.values() for p in ps)


def test_probe_rates():
    labels = [L("i1", "j", "ab", "a", 1.0), L("i1", "j", "ba", "b", 0.0),
              L("i2", "j", "ab", "a", 1.0), L("i2", "j", "ba", "a", 1.0),
              L("i3", "j", "ab", "tie", 0.5), L("i3", "j", "ba", None, None, error="x")]
    pos = probe_rates("position", labels)
    assert (pos["n"], pos["wrong"], pos["n_invalid"]) == (2, 1, 1)
    other = probe_rates("verbosity", labels)
    assert (other["n"], other["wrong"], other["n_ties"], other["n_invalid"]) == (5, 1, 1, 1)
    assert other["ci_low"] < other["wrong_rate"] == 0.2 < other["ci_high"]


def test_checker_led_jury_decides_by_the_checker_and_softens_by_the_judge():
    from rlaif.judge.jury import checker_led

    rs = [R("q1", "rev", "fixed"), R("q1", "base", "broken"), R("q2", "rev", "fixed 2"), R("q2", "base", "b2"),
          R("q3", "rev", "r3"), R("q3", "base", "b3")]
    pairs = reference_pairs(rs, "base")
    i1, i2, i3 = (p.item for p in pairs)
    labels = [L(i1, "rule", None, "a", 1.0), L(i1, "ai", "ab", "a", 0.8), L(i1, "ai", "ba", "b", 0.2),
              L(i2, "rule", None, "a", 1.0),  # no judge verdict: the checker alone
              L(i3, "rule", None, "tie", 0.5), L(i3, "ai", "ab", "a", 0.9)]  # the checker does not decide: none
    cons = checker_led(judge_verdicts(labels), "rule", "ai", 0.5)
    assert set(cons) == {i1, i2}
    assert cons[i1].p_a == pytest.approx((1.0 + 0.5 * 0.5) / 1.5) and cons[i1].agreement == 0.0
    assert cons[i1].raters == ["rule", "ai"] and (cons[i2].p_a, cons[i2].agreement) == (1.0, None)
    assert checker_led(judge_verdicts(labels), "rule", "ai", 0.0)[i1].raters == ["rule"]
    prefs = build_preferences(pairs, labels, jury=lambda v: checker_led(v, "rule", "ai", 0.5))
    assert [(p.chosen, p.rejected, p.judges) for p in prefs.preferences] == [
        ("fixed", "broken", ["rule", "ai"]), ("fixed 2", "b2", ["rule", "ai"])]
    assert prefs.preferences[0].p_chosen == pytest.approx(0.8333333333) and prefs.n_no_verdict == 1
