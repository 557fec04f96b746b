"""`rlaif audit` on human labelers, through the command line: a synthetic crowd export with planted labelers
(tests/support/crowd_helpers.py) converted and audited; what the audit must find, the files it writes, the
consensus preferences, and bad input."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from rlaif.labelers.audit import annotations_of, audit_frame, consensus_preferences
from rlaif.labelers.table import LabelTable
from rlaif.records import Label, Preference, read_jsonl, read_labels
from tests.support.cli_helpers import rlaif_inproc as rlaif
from tests.support.crowd_helpers import write_annotators, write_crowd


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    d = tmp_path_factory.mktemp("crowd")
    src, ann = write_crowd(d / "crowd.csv"), write_annotators(d / "annotators.csv")
    assert rlaif("convert", "-f", "csv", src, "-o", d / "labels.jsonl").code == 0
    r = rlaif("audit", d / "labels.jsonl", "--annotators", ann, "--bootstrap", "200", "-o", d / "out")
    assert r.code == 0, r.stderr
    return d, r, json.loads((d / "out" / "labelers.json").read_text())


def test_the_planted_labelers_are_flagged_and_lead_the_findings(audited):
    d, run, res = audited
    flags = {x["annotator"]: sorted(f["name"] for f in x["flags"]) for x in res["labelers"] if x["flags"]}
    assert flags == {"spam": ["likely spammer"], "lefty": ["position-biased"], "late": ["drifted"]}
    assert run.stdout.strip() == (f"audited 12 labelers on 240 items (924 annotations); 3 flagged -> {d / 'out'}/"
                                  "labelers.json, labelers.md, labelers.html, consensus.jsonl")
    levels = [f["level"] for f in res["findings"]]
    assert levels == sorted(levels, key=["act", "watch", "ok"].index)  # what to act on comes first
    acts = [f for f in res["findings"] if f["level"] == "act"]
    assert {tuple(f.get("who", ())) for f in acts} >= {("spam",), ("lefty",), ("late",), ("rare",), ("solo",)}
    assert "warning: 1 labeler(s) likely spammer" in run.stderr  # the actions are printed too
    lefty = next(x for x in res["labelers"] if x["annotator"] == "lefty")
    assert lefty["first_rate"]["value"] > 0.75 and lefty["first_rate"]["ci_low"] > 0.5


def test_statistics_are_the_ones_of_rlaif_stats_with_names(audited):
    d, _, res = audited
    a = res["agreement"]
    assert a["n_items"] == 228 and a["overlap"]["n_isolated"] == 1  # "solo" labels the rare topic alone
    for key in ("percent_agreement", "gwet_ac1", "fleiss_kappa", "krippendorff_nominal", "krippendorff_ordinal"):
        e = a[key]
        assert e["ci_low"] <= e["value"] <= e["ci_high"] and "underpowered" in e and "mde" in e
    assert a["krippendorff_ordinal"]["value"] > a["krippendorff_nominal"]["value"]  # strengths add order
    rare = next(t for t in res["coverage"]["topics"] if t["topic"] == "rare")
    assert rare == {"topic": "rare", "items": 12, "labelers": 1, "top_labeler": "solo", "top_share": 1.0,
                    "single_labeler_items": 12}
    assert res["annotators_file"]["unknown"] == ["solo"]
    cal = res["calibration"]
    assert [lv["level"] for lv in cal["levels"]] == ["slight", "clear"]  # weakest first, not alphabetical
    assert cal["difference"]["value"] > 0 and cal["difference"]["ci_low"] > 0  # planted: clear = more often right
    assert [g["column"] for g in res["groups"]] == ["region"]
    assert set(res["drift"]["labelers"]) == {"spam", "lefty", "late"}  # a plot per flagged labeler
    assert res["drift"]["labelers"]["late"]["drifted"] and res["drift"]["labelers"]["late"]["metric"] in (
        "agreement", "tie_rate")
    longer = [x["longer_rate"]["value"] for x in res["labelers"] if x["annotator"].startswith("h")]
    assert all(v is not None for v in longer)  # model_a's responses are the long ones: measured per labeler


def test_consensus_preferences_are_trl_rows_weighted_by_reliability(audited):
    d, _, res = audited
    prefs = read_jsonl(d / "out" / "consensus.jsonl", Preference)
    assert len(prefs) == res["consensus"]["preferences_written"] > 150
    labels, _ = read_labels(d / "labels.jsonl")
    by_item = {lb.item: lb for lb in labels}
    for p in prefs[:50]:
        lb = by_item[p.prompt_id]
        assert {p.chosen, p.rejected} == {lb.response_a, lb.response_b} and 0.5 <= p.p_chosen <= 1.0
        assert p.chosen_policy == (lb.model_a if p.chosen == lb.response_a else lb.model_b)


def test_consensus_by_hand():
    # two reliable labelers (agree with each other on 3 items) and one who always disagrees; on item x the
    # reliable ones split and the unreliable one sides with b: the weights decide it.
    rows = [("x", "r1", "a"), ("x", "r2", "b"), ("x", "u", "b")]
    labels = [Label(item=i, rater=w, winner=v, prompt="p", response_a="A", response_b="B", model_a="m1",
                    model_b="m2") for i, w, v in rows]
    table = LabelTable.of(labels)
    ann = annotations_of(table.frame())
    import numpy as np

    from rlaif.stats.consensus import weighted_consensus

    cons = weighted_consensus(ann, np.array([0.9, 0.9, 0.2]))  # r1, r2, u in order of appearance
    # weights log(2 r / (1 - r)): r1 = r2 = log 18, u clipped to 1/3 -> log 1 = 0: a and b tie on score
    assert cons.label[0] == -1 and cons.majority[0] == 1
    assert consensus_preferences(table, ann, cons) == []  # an undecided item yields no preference
    cons = weighted_consensus(ann, np.array([0.95, 0.9, 0.2]))
    (pref,) = consensus_preferences(table, ann, cons)
    w1, w2 = np.log(2 * 0.95 / 0.05), np.log(2 * 0.9 / 0.1)
    p_a = np.exp(w1) / (np.exp(w1) + np.exp(w2) + 1) + 0.5 / (np.exp(w1) + np.exp(w2) + 1)
    assert pref.chosen == "A" and pref.p_chosen == pytest.approx(p_a) and pref.judges == ["r1", "r2", "u"]


def test_gold_as_a_rater_leaves_the_audited_set():
    labels = [Label(item="i", rater="expert", winner="a"), Label(item="i", rater="u1", winner="b")]
    kept, gold = audit_frame(LabelTable.of(labels), "expert", ())
    assert kept["rater"].tolist() == ["u1"] and gold == {"i": "a"}


def test_the_page_and_markdown_are_written(audited):
    d, _, res = audited
    md = (d / "out" / "labelers.md").read_text()
    assert md.startswith("# Human labeler audit") and md.index("## Findings") < md.index("## Agreement")
    assert "likely spammer" in md and "question" not in md  # prompts belong to the page, not the summary
    html = (d / "out" / "labelers.html").read_text()
    assert "question 0 <b>" not in html  # model text escaped


@pytest.mark.parametrize("args, problem", [
    (["--skill-model", "bogus"], "unknown --skill-model 'bogus'"),
    (["--topic-field", "prompt"], "--topic-field 'prompt' is not a label field"),
    (["--topic-field", "category"], "no label sets 'category'"),
    (["--window", "month"], "--window 'month'"),
    (["--gold", "nobody"], "--gold 'nobody' is neither a file nor a rater"),
])
def test_bad_settings_exit_2_with_a_fix_and_write_nothing(audited, tmp_path, args, problem):
    d, _, _ = audited
    r = rlaif("audit", d / "labels.jsonl", "--labelers", *args, "-o", tmp_path / "o")
    assert r.code == 2 and problem in r.stderr and "Traceback" not in r.stderr
    assert "Fix" in r.stderr or "fix" in r.stderr
    assert not (tmp_path / "o" / "labelers.json").exists()


def test_an_annotator_file_with_a_duplicate_id_names_its_line(audited, tmp_path):
    d, _, _ = audited
    bad = tmp_path / "a.csv"
    bad.write_text("annotator,region\nh1,EU\nh1,US\n")
    r = rlaif("audit", d / "labels.jsonl", "--annotators", bad, "-o", tmp_path / "o")
    assert r.code == 2 and f"{bad}:3" in r.stderr and "listed twice" in r.stderr


def test_judge_labels_still_get_the_judge_audit(tmp_path):
    p = tmp_path / "l.jsonl"
    p.write_text("".join(json.dumps({"item": f"i{k}", "rater": r, "winner": "a", "order": "ab"}) + "\n"
                         for k in range(3) for r in ("j1", "j2")))
    r = rlaif("audit", p, "--bootstrap", "0", "-o", tmp_path / "o")
    assert r.code == 0 and (tmp_path / "o" / "audit.json").exists() and not (tmp_path / "o" / "labelers.json").exists()
    r = rlaif("audit", p, "--labelers", "--bootstrap", "0", "--skill-model", "none", "-o", tmp_path / "h")
    assert r.code == 0, r.stderr
    assert (tmp_path / "h" / "labelers.json").exists()
    assert Path(tmp_path / "h" / "consensus.jsonl").read_text() == ""  # no prompts or responses: no preferences


def test_an_ai_judge_joins_the_crowd_as_a_measured_rater(audited, tmp_path):
    # "balance human feedback with other sources": a judge's labels (both orders, as `rlaif label` writes them)
    # concatenated with the humans' are audited like a labeler and weighted by their measured reliability.
    from collections import Counter

    d, _, _ = audited
    humans, _ = read_labels(d / "labels.jsonl")
    majority = {}
    for item in {lb.item for lb in humans}:
        votes = Counter(lb.winner for lb in humans if lb.item == item and lb.winner in ("a", "b"))
        if votes:
            majority[item] = votes.most_common(1)[0][0]
    first = {}
    for lb in humans:
        first.setdefault(lb.item, lb)
    judge = [first[i].model_copy(update={"rater": "judge:m", "winner": w, "order": o, "created_at": None,
                                         "lead_time_s": None, "strength": None, "repeat": None})
             for i, w in sorted(majority.items()) for o in ("ab", "ba")]
    both = tmp_path / "both.jsonl"
    both.write_text((d / "labels.jsonl").read_text() + "".join(lb.model_dump_json(exclude_none=True) + "\n"
                                                                 for lb in judge))
    r = rlaif("audit", both, "--bootstrap", "50", "-o", tmp_path / "o")
    assert r.code == 0, r.stderr
    res = json.loads((tmp_path / "o" / "labelers.json").read_text())
    row = next(x for x in res["labelers"] if x["annotator"] == "judge:m")
    assert row["n_items"] == len(majority) and not row["flags"]
    assert row["agreement"]["value"] > 0.8 and row["consistency"]["value"] == 1.0  # same verdict in both orders
    assert res["n_labelers"] == 13
    prefs = read_jsonl(tmp_path / "o" / "consensus.jsonl", Preference)
    assert sum("judge:m" in p.judges for p in prefs) > 150
