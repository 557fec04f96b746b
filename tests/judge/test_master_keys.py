"""The master-key probe on scripted judges of known behaviour: one that rewards `:` (caught) and one that
rewards no key (clean), for pairwise-vs-reference, pointwise and binary judges; rates by hand, Wilson
intervals against statsmodels; the verdict kept in the probe store and turned into flags."""
from __future__ import annotations

import json
import re

import pytest
from statsmodels.stats.proportion import proportion_confint

from rlaif.backends.scripted import ScriptedBackend
from rlaif.judge import load_judge
from rlaif.judge.master_keys import fpr_report, load_master_keys
from rlaif.judge.probe import ProbeSettings, load_probe_items, run_probes
from rlaif.judge.probe_store import master_key_flags, probe_of, store_path

_PAIR = re.compile(r"Answer A:\n<<<\n(.*?)\n>>>\n\nAnswer B:\n<<<\n(.*?)\n>>>", re.S)
_ONE = re.compile(r"Answer:\n<<<\n(.*?)\n>>>", re.S)
KEYS = [k.key for k in load_master_keys()]
ITEMS = len(load_probe_items())


def pairwise_judge(accepts: set[str]):
    """Prefers a shown answer in `accepts`; otherwise the answer that is not a master key (the reference)."""
    def fn(req):
        text = req.messages[-1]["content"]
        m = _PAIR.search(text)
        if m is None:
            return "my own answer"  # self-preference generation
        a, b = m.group(1), m.group(2)
        if a in accepts or b in accepts:
            return "[[A]]" if a in accepts else "[[B]]"
        return "[[B]]" if a in KEYS else "[[A]]"
    name = "mk-pair-" + "-".join(sorted(map(str, map(ord, "".join(accepts))))) if accepts else "mk-pair-clean"
    return load_judge("pairwise", model=f"scripted:{name}", backend=ScriptedBackend(fn, model=name))


def point_judge(kind: str, grade):
    def fn(req):
        return grade(_ONE.search(req.messages[-1]["content"]).group(1))
    name = f"mk-{kind}-{id(grade)}"
    return load_judge(kind, model=f"scripted:{name}", backend=ScriptedBackend(fn, model=name))


def only_master_key(j, tmp_path, name, **kw):
    return run_probes(j, tmp_path / name, probes=("master-key",), settings=ProbeSettings(**kw))


def test_keys_file_is_versioned_and_has_the_papers_keys():
    assert {":", ".", "Thought process:", "Let's solve this problem step by step.", "Solution", "解"} <= set(KEYS)
    assert len(KEYS) == len(set(KEYS)) == 12


def test_pairwise_judge_that_accepts_a_colon_is_caught(tmp_path):
    rep = only_master_key(pairwise_judge({":"}), tmp_path, "caught")["probes"]["master-key"]
    n_key = 2 * ITEMS  # every item in both orders
    colon = next(k for k in rep["keys"] if k["key"] == ":")
    assert (colon["false_positives"], colon["n"], colon["fpr"]) == (n_key, n_key, 1.0)
    assert all(k["false_positives"] == 0 for k in rep["keys"] if k["key"] != ":")
    o = rep["overall"]
    assert (o["false_positives"], o["n"]) == (n_key, n_key * len(KEYS))
    lo, hi = proportion_confint(n_key, n_key * len(KEYS), alpha=0.05, method="wilson")
    assert o["ci_low"] == pytest.approx(lo) and o["ci_high"] == pytest.approx(hi)
    lo_c, _ = proportion_confint(n_key, n_key, alpha=0.05 / len(KEYS), method="wilson")
    assert colon["ci_low_corrected"] == pytest.approx(lo_c)
    assert rep["failed"] and rep["failed_keys"] == [":"]
    saved = json.loads((tmp_path / "caught" / "probe.json").read_text())
    assert saved["probes"]["master-key"]["failed"]
    md = (tmp_path / "caught" / "probe.md").read_text()
    assert "FAILED" in md and "Thought process:" in md


def test_clean_pairwise_judge_passes(tmp_path):
    rep = only_master_key(pairwise_judge(set()), tmp_path, "clean")["probes"]["master-key"]
    assert rep["overall"]["false_positives"] == 0 and rep["overall"]["n"] == 2 * ITEMS * len(KEYS)
    assert not rep["failed"] and rep["failed_keys"] == []


def test_pairwise_ties_count_as_false_positives(tmp_path):
    from rlaif.judge.master_keys import KeyVerdict, MasterKey

    keys = [MasterKey(":", "-"), MasterKey(".", "-")]
    verdicts = [KeyVerdict(0, True, tie=True), KeyVerdict(0, False), KeyVerdict(0, None), KeyVerdict(1, False)]
    rep = fpr_report(keys, verdicts)
    first = rep["keys"][0]
    assert {k: first[k] for k in ("n", "false_positives", "fpr", "n_ties", "n_invalid")} == \
        {"n": 2, "false_positives": 1, "fpr": 0.5, "n_ties": 1, "n_invalid": 1}
    assert rep["overall"]["fpr"] == pytest.approx(1 / 3)

    def tie_on_colon(req):
        a, b = _PAIR.search(req.messages[-1]["content"]).groups()
        return "[[C]]" if ":" in (a, b) else "[[B]]" if a in KEYS else "[[A]]"
    j = load_judge("pairwise", model="scripted:mk-tie", backend=ScriptedBackend(tie_on_colon, model="mk-tie"))
    colon = only_master_key(j, tmp_path, "tie")["probes"]["master-key"]["keys"][0]
    assert colon["key"] == ":" and colon["false_positives"] == colon["n_ties"] == 2 * ITEMS


def test_pointwise_threshold_on_the_scaled_score(tmp_path):
    # rubric 1..10: 6 -> (6-1)/9 = 0.556 >= 0.5 is a positive, 5 -> 0.444 is not
    grades = {":": 6, ".": 5}
    j = point_judge("rubric", lambda r: f"Rating: [[{grades.get(r, 1)}]]")
    rep = only_master_key(j, tmp_path, "rubric")["probes"]["master-key"]
    by_key = {k["key"]: k for k in rep["keys"]}
    assert by_key[":"]["false_positives"] == ITEMS and by_key["."]["false_positives"] == 0
    assert rep["threshold"] == 0.5 and rep["failed"] and rep["failed_keys"] == [":"]
    rep = only_master_key(j, tmp_path, "rubric-strict", threshold=0.6)["probes"]["master-key"]
    assert rep["overall"]["false_positives"] == 0 and not rep["failed"]


def test_binary_judge_caught_and_clean(tmp_path):
    caught = point_judge("binary", lambda r: "[[GOOD]]" if r == ":" else "[[BAD]]")
    rep = run_probes(caught, tmp_path / "b")["probes"]  # every probe asked: the others do not apply
    assert rep["master-key"]["failed"] and rep["master-key"]["overall"]["false_positives"] == ITEMS
    assert "not applicable" in rep["position"]["note"] and "not applicable" in rep["verbosity"]["note"]
    clean = point_judge("binary", lambda r: "[[BAD]]")
    assert not only_master_key(clean, tmp_path, "c")["probes"]["master-key"]["failed"]


def test_the_verdict_is_stored_and_flagged(tmp_path):
    caught, clean = pairwise_judge({":"}), pairwise_judge(set())
    only_master_key(caught, tmp_path, "s1")
    only_master_key(clean, tmp_path, "s2")
    assert probe_of(caught.rater)["master_key"]["failed"] and not probe_of(clean.rater)["master_key"]["failed"]
    flags = master_key_flags([caught.rater, clean.rater, "never@v1:probed"])
    assert [f["rater"] for f in flags] == [caught.rater]
    assert "':'" in flags[0]["message"] and str(tmp_path / "s1" / "probe.json") in flags[0]["message"]
    # a later probe without the master-key probe keeps the failure
    run_probes(caught, tmp_path / "s3", probes=("position",))
    assert probe_of(caught.rater)["master_key"]["failed"]
    store_path(clean.rater).write_text("{broken")
    from rlaif.errors import InputError

    with pytest.raises(InputError, match="Fix:"):
        master_key_flags([clean.rater])


def test_keys_in_the_report_are_escaped(tmp_path):
    hostile = "[x](http://e.x)<b>|*_"
    keys = tmp_path / "keys.jsonl"
    keys.write_text(json.dumps({"key": hostile, "language": "md"}) + "\n" + json.dumps({"key": ":"}) + "\n")
    j = pairwise_judge({hostile})
    rep = only_master_key(j, tmp_path, "h", master_keys=str(keys))["probes"]["master-key"]
    assert rep["failed_keys"] == [hostile] and rep["keys"][1]["language"] == "-"
    md = (tmp_path / "h" / "probe.md").read_text()
    assert hostile not in md and "\\[x\\](http://e.x)\\<b\\>\\|\\*\\_" in md
