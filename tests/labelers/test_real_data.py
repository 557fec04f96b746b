"""`rlaif audit` on real human labels (skipped without ../shared/data), through the command line:

- PandaLM: three annotators on 999 pairs (`rlaif convert -f pandalm`, then `--labelers`): the published
  agreement, nobody flagged, the consensus equals the majority (105 ties / 422 / 472);
- POPQUORN: 13,036 offensiveness ratings by 262 annotators with demographics, imported as canonical rating rows
  and joined with an annotator file: interval/ordinal alpha equal `krippendorff`'s, Black annotators rate
  comments as more offensive than the rest and White annotators less (Pei & Jurgens 2023), and the rating
  correlation of each annotator equals pandas'.
"""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from tests.support.cli_helpers import rlaif_inproc as rlaif


@pytest.fixture(scope="module")
def pandalm_audit(shared_data, tmp_path_factory):
    d = tmp_path_factory.mktemp("pandalm")
    assert rlaif("convert", "-f", "pandalm", shared_data / "pandalm" / "testset-v1.json", "-o",
                 d / "labels.jsonl").code == 0
    r = rlaif("audit", d / "labels.jsonl", "--labelers", "--bootstrap", "200", "-o", d / "out")
    assert r.code == 0, r.stderr
    return d, json.loads((d / "out" / "labelers.json").read_text())


def test_pandalm(pandalm_audit, shared_data):
    d, res = pandalm_audit
    a = res["agreement"]
    assert round(a["fleiss_kappa"]["value"], 4) == 0.8642 and round(a["gwet_ac1"]["value"], 4) == 0.8864
    assert (a["percent_agreement"]["k"], a["percent_agreement"]["n"]) == (2757, 2997)
    assert [x["n"] for x in res["labelers"]] == [999, 999, 999]
    assert not any(x["flags"] for x in res["labelers"])
    assert sorted(round(x["agreement"]["value"], 3) for x in res["labelers"]) == [0.915, 0.921, 0.923]
    rows = json.loads((shared_data / "pandalm" / "testset-v1.json").read_text())
    code = {1: "a", 2: "b", 0: "tie"}
    assert res["verdicts"] == {v: sum(code[r[f"annotator{k}"]] == v for r in rows for k in (1, 2, 3))
                               for v in ("a", "b", "tie")} == {"a": 1255, "b": 1416, "tie": 326}
    assert res["findings"][0]["level"] == "ok" or res["findings"][0]["topic"] == "agreement"
    fit = next(f for f in res["findings"] if f["topic"] == "agreement")
    assert fit["level"] == "ok" and "reliable enough to train on" in fit["text"]
    assert res["consensus"]["n_changed"] == 0  # three careful annotators: the weights change no majority
    prefs = (d / "out" / "consensus.jsonl").read_text().splitlines()
    assert len(prefs) == res["consensus"]["preferences_written"] == 422 + 472  # decided items only, ties out


@pytest.fixture(scope="module")
def popquorn_audit(shared_data, tmp_path_factory):
    path = shared_data / "popquorn" / "offensiveness.csv"
    if not path.exists():
        pytest.skip(f"{path} not found")
    d = tmp_path_factory.mktemp("popquorn")
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    people = {}
    for x in rows:
        people.setdefault(x["user_id"], {k: x[k] for k in ("gender", "race", "age", "occupation", "education")})
    with open(d / "annotators.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["annotator", "gender", "race", "age", "occupation", "education"])
        w.writerows([who, *attrs.values()] for who, attrs in people.items())
    r = rlaif("convert", "-f", "csv", path, "--map", "instance_id=item,user_id=annotator,offensiveness=rating,"
              "text=response_a", "-o", d / "labels.jsonl")
    assert r.code == 0, r.stderr
    assert r.stdout.startswith("13036 labels written; not written: none; 262 annotators, 1500 items")
    r = rlaif("audit", d / "labels.jsonl", "--annotators", d / "annotators.csv", "--bootstrap", "200", "-o",
              d / "out")  # ratings carry `rating`: audited as people without --labelers
    assert r.code == 0, r.stderr
    return rows, json.loads((d / "out" / "labelers.json").read_text())


def test_popquorn_agreement_matches_krippendorff(popquorn_audit):
    krippendorff = pytest.importorskip("krippendorff")
    import pandas as pd

    rows, res = popquorn_audit
    df = pd.DataFrame(rows).astype({"offensiveness": float})
    wide = df.pivot_table(index="user_id", columns="instance_id", values="offensiveness", aggfunc="first")
    a = res["agreement"]
    assert res["scale"] == "ratings" and a["primary"] == "krippendorff_interval"
    for level in ("interval", "ordinal"):
        ref = krippendorff.alpha(reliability_data=wide.to_numpy(), level_of_measurement=level)
        assert a[f"krippendorff_{level}"]["value"] == pytest.approx(ref, abs=1e-10)
    fit = next(f for f in res["findings"] if f["topic"] == "agreement")
    assert fit["level"] == "act" and "alpha (interval) 0.29" in fit["text"]


def test_popquorn_groups_and_rating_correlation(popquorn_audit):
    import pandas as pd

    rows, res = popquorn_audit
    race = next(g for g in res["groups"] if g["column"] == "race")
    gaps = {x["group"]: x["gap"] for x in race["gaps"]}
    assert gaps["Black or African American"]["ci_low"] > 0.15 and gaps["White"]["ci_high"] < 0
    act = [f for f in res["findings"] if f["topic"] == "groups" and f["level"] == "act"]
    assert any("By race" in f["text"] and "Black or African American" in f["who"] for f in act)
    # pandas: each annotator's ratings against the mean of the other annotators of the same comment
    df = pd.DataFrame(rows).astype({"offensiveness": float})
    g = df.groupby("instance_id").offensiveness
    df["others"] = (g.transform("sum") - df.offensiveness) / (g.transform("count") - 1)
    some = sorted(df.user_id.unique())[:25]
    by = {x["annotator"]: x for x in res["labelers"]}
    for who in some:
        mine = df[df.user_id == who]
        assert by[who]["rating_correlation"]["value"] == pytest.approx(
            np.corrcoef(mine.offensiveness, mine.others)[0, 1], abs=1e-9)
        assert by[who]["rating_offset"] == pytest.approx((mine.offensiveness - mine.others).mean(), abs=1e-9)
    spam = [x for x in res["labelers"] if any(f["name"] == "likely spammer" for f in x["flags"])]
    assert spam and all(x["rating_correlation"]["value"] < 0.4 for x in spam)
