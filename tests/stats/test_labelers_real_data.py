"""Human-labeler statistics on real annotations (skipped without ../shared/data): PandaLM's three annotators
(published Cohen's kappa 0.85 / 0.88 / 0.86) and POPQUORN offensiveness ratings (262 annotators with
demographics), checked against statsmodels, krippendorff, irrCAC, crowd-kit and pandas."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from rlaif.stats.agreement import cohen_kappa
from rlaif.stats.annotations import Annotations
from rlaif.stats.bootstrap import ItemBootstrap
from rlaif.stats.consensus import weighted_consensus
from rlaif.stats.coverage import coverage
from rlaif.stats.crowd_agreement import agreement_summary, overlap_graph, ratings_as_labels
from rlaif.stats.groups import group_report
from rlaif.stats.labelers import audit_labelers


@pytest.fixture(scope="module")
def pandalm(shared_data):
    path = shared_data / "pandalm" / "testset-v1.json"
    if not path.exists():
        pytest.skip(f"{path} not found")
    code = {1: "a", 2: "b", 0: "tie"}
    rows = [{"item": r["idx"], "annotator": f"annotator{j}", "label": code[r[f"annotator{j}"]]}
            for r in json.loads(path.read_text()) for j in (1, 2, 3)]
    return Annotations.from_frame(pd.DataFrame(rows))


@pytest.fixture(scope="module")
def popquorn(shared_data):
    path = shared_data / "popquorn" / "offensiveness.csv"
    if not path.exists():
        pytest.skip(f"{path} not found")
    df = pd.read_csv(path)
    people = (df[["user_id", "gender", "race", "age", "occupation", "education"]].drop_duplicates("user_id")
              .rename(columns={"user_id": "annotator"}))
    table = pd.DataFrame({"item": df.instance_id, "annotator": df.user_id, "rating": df.offensiveness})
    return df, ratings_as_labels(Annotations.from_frame(table, people, label_names=()))


def test_pandalm_published_kappas_and_libraries(pandalm):
    irr = pytest.importorskip("irrCAC.raw")
    krippendorff = pytest.importorskip("krippendorff")
    from statsmodels.stats.inter_rater import aggregate_raters
    from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss

    codes = np.full((pandalm.n_items, 3), -1)
    codes[pandalm.item, pandalm.annotator] = pandalm.label
    kappas = [cohen_kappa(codes[:, i], codes[:, j], 3, rounds=0).value for i, j in ((0, 1), (0, 2), (1, 2))]
    assert np.round(kappas, 2).tolist() == [0.85, 0.88, 0.86]  # published
    s = agreement_summary(pandalm, ItemBootstrap(pandalm.n_items, 200, 0))
    assert s.fleiss_kappa.value == pytest.approx(sm_fleiss(aggregate_raters(codes, n_cat=3)[0]), abs=1e-12)
    assert s.krippendorff_nominal.value == pytest.approx(
        krippendorff.alpha(reliability_data=codes.T.astype(float), level_of_measurement="nominal"), abs=1e-12)
    ref = irr.CAC(pd.DataFrame(codes), categories=[0, 1, 2], digits=12).gwet()["est"]["coefficient_value"]
    assert s.gwet_ac1.value == pytest.approx(ref, abs=1e-9)
    assert s.gwet_ac1.value == pytest.approx(0.8864, abs=1e-4) and s.fleiss_kappa.value == pytest.approx(0.8642,
                                                                                                      abs=1e-4)
    assert (s.percent_agreement.k, s.percent_agreement.n) == (2757, 2997)
    assert s.gwet_ac1.ci_low < s.gwet_ac1.value < s.gwet_ac1.ci_high and not s.gwet_ac1.underpowered


def test_pandalm_labelers_and_consensus(pandalm):
    pytest.importorskip("crowdkit")
    audit = audit_labelers(pandalm, ItemBootstrap(pandalm.n_items, 200, 0), skill_model="dawid-skene")
    assert [r.n for r in audit.labelers] == [999, 999, 999]
    assert all(not r.flags for r in audit.labelers)  # three careful annotators, no timestamps: no drift test
    assert [round(r.agreement.value, 3) for r in audit.labelers] == [0.921, 0.915, 0.923]
    assert all(0.9 < r.skill < 1 for r in audit.labelers)
    c = weighted_consensus(pandalm, np.array([r.agreement.value for r in audit.labelers]))
    # the README's majority split: 105 ties / 422 response1 / 472 response2 (every item has a majority)
    assert np.bincount(c.majority[c.majority >= 0], minlength=3).tolist() == [422, 472, 105]
    assert c.n_changed == 0


def test_popquorn_alphas_against_krippendorff(popquorn):
    krippendorff = pytest.importorskip("krippendorff")
    df, ann = popquorn
    assert (ann.n, ann.n_annotators, ann.n_items) == (13036, 262, 1500)
    wide = df.pivot_table(index="user_id", columns="instance_id", values="offensiveness", aggfunc="first")
    s = agreement_summary(ann, ItemBootstrap(ann.n_items, 200, 0), ordered=True)
    for level, est in (("ordinal", s.krippendorff_ordinal), ("interval", s.krippendorff_interval),
                       ("nominal", s.krippendorff_nominal)):
        ref = krippendorff.alpha(reliability_data=wide.to_numpy(), level_of_measurement=level)
        assert est.value == pytest.approx(ref, abs=1e-10)
    assert round(s.krippendorff_ordinal.value, 4) == 0.2865 and round(s.krippendorff_interval.value, 4) == 0.2872
    graph = overlap_graph(ann)
    assert (graph.n_labelers, graph.n_components) == (262, 1)
    assert graph.n_pairs == 24863 and graph.n_possible_pairs == 262 * 261 // 2


def test_popquorn_groups_coverage_and_reliability(popquorn):
    df, ann = popquorn
    boot = ItemBootstrap(ann.n_items, 200, 0)
    race = group_report(ann, "race", boot)
    gaps = {g.group: g for g in race.gaps}
    # pandas: per comment, mean rating of Black annotators minus the mean of everyone else, averaged
    black = df.race == "Black or African American"
    m_in = df[black].groupby("instance_id").offensiveness.mean()
    m_out = df[~black].groupby("instance_id").offensiveness.mean()
    both = m_in.index.intersection(m_out.index)
    assert gaps["Black or African American"].gap.value == pytest.approx((m_in[both] - m_out[both]).mean())
    assert gaps["Black or African American"].gap.n == len(both) == 1067
    assert gaps["Black or African American"].gap.ci_low > 0.15  # rates comments as more offensive
    assert gaps["White"].gap.ci_high < 0
    age = {g.group: g.gap for g in group_report(ann, "age", boot).gaps}
    assert age["60-64"].ci_low > 0.3
    cov = coverage(ann, boot, ks=(2, 3))
    assert cov.single_labeler_items == 0 and cov.labelled_items == 1500
    assert cov.groups_k["race"][2].value == pytest.approx(0.91) and cov.groups_k["gender"][3].value == pytest.approx(
        0.2093, abs=1e-4)
    audit = audit_labelers(ann, boot)
    agree = np.array([r.agreement.value for r in audit.labelers])
    assert len(agree) == 262 and np.median(agree) == pytest.approx(0.6, abs=1e-9)
