"""Audit definitions on hand-built labels, where every number can be counted by hand."""
from __future__ import annotations

import json

import pytest

from rlaif.audit import audit_labels
from rlaif.errors import ConfigError
from rlaif.records import Label

SHORT, LONG = "short", "a much longer answer " * 5  # lengths differ by more than 30 characters


def lab(item, rater, winner, order=None, **kw):
    kw.setdefault("response_a", f"answer a to {item}")
    kw.setdefault("response_b", f"answer b to {item}")
    return Label(item=item, rater=rater, winner=winner, order=order, **kw)


def both(item, rater, w_ab, w_ba, **kw):
    return [lab(item, rater, w_ab, "ab", **kw), lab(item, rater, w_ba, "ba", **kw)]


def test_position_bias_metrics_counted_by_hand():
    labels = []
    # "first": always picks whatever is shown first -> every pair flips
    for i in range(4):
        labels += both(f"p{i}", "first", "a", "b")
    # "mixed": p0 consistent a; p1 favours second (b then a); p2 second won once + tie; p3 invalid in one order
    labels += both("p0", "mixed", "a", "a") + both("p1", "mixed", "b", "a") + both("p2", "mixed", "tie", "a")
    labels += both("p3", "mixed", None, "a")
    r = audit_labels(labels, rounds=100)["raters"]
    first = r["first"]
    assert first["position_consistency"]["value"] == 0.0 and first["position_consistency"]["n"] == 4
    assert first["first_position_rate"]["value"] == 1.0 and first["first_position_rate"]["n"] == 8
    assert first["preference_fairness"]["value"] == -1.0
    assert sorted(first["flipped_items"]) == ["p0", "p1", "p2", "p3"]
    assert first["verdicts"] == {"tie": 4}  # inconsistent across orders -> tie (MT-Bench rule)

    m = r["mixed"]
    assert m["n"] == 8 and m["invalid_rate"]["k"] == 1 and m["invalid_rate"]["n"] == 8
    assert (m["tie_rate"]["k"], m["tie_rate"]["n"]) == (1, 7)
    pc = m["position_consistency"]
    assert (pc["k"], pc["n"], pc["n_shown_both_orders"]) == (1, 3, 4)
    # decisive with order: p0 ab a(first) ba a(second); p1 ab b(second) ba a(second); p2 ba a(second); p3 ba a(second)
    fp = m["first_position_rate"]
    assert (fp["k"], fp["n"]) == (1, 6)
    # fairness over p0 (neutral), p1 (second twice: +1), p2 (tie + second: +1) -> 2/3
    assert m["preference_fairness"]["value"] == pytest.approx(2 / 3)
    assert m["verdicts"] == {"a": 2, "tie": 2}  # p3 keeps its one valid verdict
    assert "dawid_skene_reliability" not in m  # Dawid–Skene needs three or more raters


def test_length_preference():
    labels = [lab("x1", "r", "a", "ab", response_a=LONG, response_b=SHORT),
              lab("x2", "r", "b", "ab", response_a=LONG, response_b=SHORT),
              lab("x3", "r", "b", "ab", response_a=SHORT, response_b=LONG),
              lab("x4", "r", "tie", "ab", response_a=SHORT, response_b=LONG),  # not decisive
              lab("x5", "r", "a", "ab", response_a="abc", response_b="abcd")]  # lengths too close
    lp = audit_labels(labels, rounds=0)["raters"]["r"]["longer_preferred_rate"]
    assert (lp["k"], lp["n"]) == (2, 3)


def test_gold_accuracy_agreement_and_calibration():
    labels = both("g1", "j", "a", "a", p_a=0.9) + both("g2", "j", "a", "b", p_a=0.7) + both("g3", "j", "tie", "tie")
    labels += [lab("g4", "j", "b", "ab", p_a=0.2)]
    gold = [lab("g1", "h1", "a"), lab("g1", "h2", "a"), lab("g2", "h1", "b"), lab("g2", "h2", "tie"),
            lab("g3", "h1", "tie"), lab("g4", "h1", "b"), lab("g4", "h2", "a")]
    r = audit_labels(labels, gold, rounds=50)["raters"]["j"]
    # gold verdicts: g1 a; g2 b/tie tie-count -> none; g3 tie; g4 a/b -> none
    assert (r["accuracy"]["k"], r["accuracy"]["n"]) == (4, 4)  # g1 x2, g3 x2
    assert (r["accuracy_by_order"]["ab"]["k"], r["accuracy_by_order"]["ab"]["n"]) == (2, 2)
    assert (r["accuracy_both_orders"]["k"], r["accuracy_both_orders"]["n"]) == (2, 2)
    # MT-Bench agreement: verdicts g1 a, g2 tie, g3 tie, g4 b against every gold vote:
    # g1: a-a, a-a (2/2); g2: tie-b, tie-tie (1/2); g3: tie-tie (1/1); g4: b-b, b-a (1/2) -> 5/7
    assert (r["gold_agreement"]["k"], r["gold_agreement"]["n"]) == (5, 7)
    # without ties on either side: g1 (2/2), g4 (1/2) -> 3/4
    assert (r["gold_agreement_no_ties"]["k"], r["gold_agreement_no_ties"]["n"]) == (3, 4)
    # ECE: p_a on labels with decisive gold: only g1 (two labels at 0.9, gold a): |0.9 - 1| = 0.1
    assert r["ece"]["value"] == pytest.approx(0.1)
    assert r["gold_disagreements"] == []


def test_gold_rater_is_left_out_and_unknown_gold_is_an_error():
    labels = both("i1", "j", "a", "a") + [lab("i1", "human", "a"), lab("i2", "human", "b")]
    result = audit_labels(labels, gold="human", rounds=0)
    assert list(result["raters"]) == ["j"] and result["gold"]["n_items"] == 2
    with pytest.raises(ConfigError, match="no labels by that rater"):
        audit_labels(labels, gold="nobody")


def test_self_preference():
    labels = []
    for i in range(4):  # judge "m1" rates its own model m1 against m2; humans disagree on two of them
        kw = {"model_a": "m1", "model_b": "m2"}
        labels += both(f"s{i}", "openai:m1", "a", "a", **kw)
        labels.append(lab(f"s{i}", "human", "a" if i < 2 else "b", **kw))
    labels += both("o1", "openai:m1", "b", "b", model_a="m3", model_b="m4")  # not its own model
    r = audit_labels(labels, rounds=100)["raters"]
    sp = r["openai:m1"]["self_preference"]
    assert sp["model"] == "m1" and sp["n"] == 4
    assert sp["value"] == pytest.approx(1.0 - 0.5)
    assert sp["own_win_rate"]["value"] == 1.0 and sp["others_win_rate_same_items"]["value"] == 0.5
    assert r["human"]["self_preference"] is None
    # an explicit rater_model field overrides name matching
    tagged = [lab("t1", "judge-v2", "b", model_a="m2", model_b="m9", rater_model="m9"), lab("t1", "h", "a")]
    assert audit_labels(tagged, rounds=0)["raters"]["judge-v2"]["self_preference"]["model"] == "m9"


def test_agreement_block_and_json_has_no_nan():
    labels = []
    for i in range(30):
        w = "a" if i % 3 else "b"
        labels += [lab(f"q{i}", "r1", w, p_a=0.8 if w == "a" else 0.3), lab(f"q{i}", "r2", w if i % 5 else "tie"),
                   lab(f"q{i}", "r3", w if i % 7 else "a", p_a=0.7)]
    labels.append(lab("lonely", "r1", None, error="unparsed"))
    result = audit_labels(labels, rounds=100)
    agr = result["agreement"]
    assert set(agr["cohen_kappa"]) == {"r1|r2", "r1|r3", "r2|r3"}
    for key in ("percent_agreement", "percent_agreement_no_ties", "fleiss_kappa", "krippendorff_alpha",
                "krippendorff_alpha_ordinal", "krippendorff_alpha_p_a"):
        e = agr[key]
        assert e["value"] is not None and e["ci_low"] <= e["value"] <= e["ci_high"] and e["n"] > 0, key
    assert result["dawid_skene"]["converged"]
    text = json.dumps(result, allow_nan=False)  # NaN would raise here
    assert json.loads(text)["raters"]["r1"]["invalid_rate"]["k"] == 1
    # deterministic: same seed, same numbers
    assert audit_labels(labels, rounds=100) == result
