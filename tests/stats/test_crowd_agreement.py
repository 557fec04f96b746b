"""Crowd agreement: Gwet's AC1 (hand, Gwet's handbook example, irrCAC), pairwise agreement, Fleiss and
Krippendorff from sparse tallies (statsmodels, krippendorff), and the overlap graph (by hand)."""
from __future__ import annotations

import numpy as np
import pytest

from rlaif.stats.annotations import Annotations
from rlaif.stats.bootstrap import ItemBootstrap
from rlaif.stats.crowd_agreement import (
    agreement_summary,
    gwet_ac1_counts,
    overlap_graph,
    ratings_as_labels,
    strength_scale_labels,
)

NAN = np.nan
# Gwet, Handbook of Inter-Rater Reliability (4th ed.), the 4 raters x 12 units example with missing ratings
# (also irrCAC's `raw_4raters`): AC1 = 0.7754 over categories 1-5.
GWET = np.array([
    [1, 1, NAN, 1], [2, 2, 3, 2], [3, 3, 3, 3], [3, 3, 3, 3], [2, 2, 2, 2], [1, 2, 3, 4],
    [4, 4, 4, 4], [1, 1, 2, 1], [2, 2, 2, 2], [NAN, 5, 5, 5], [NAN, NAN, 1, 1], [NAN, NAN, 3, NAN],
])


def _from_matrix(values: np.ndarray, names=("1", "2", "3", "4", "5")) -> Annotations:
    items, raters = np.nonzero(np.isfinite(values))
    return Annotations(items, raters, values[items, raters].astype(int) - 1, label_names=names,
                       item_names=np.arange(values.shape[0]))


def test_gwet_ac1_hand_computed():
    # two items, 3 categories: item 0 votes (a, a, b), item 1 votes (a, a).
    # p_a = mean(2*1/(3*2), 2*1/(2*1)) = (1/3 + 1) / 2 = 2/3
    # pi = mean((2/3, 1/3, 0), (1, 0, 0)) = (5/6, 1/6, 0); p_e = (5/6*1/6 + 1/6*5/6) / 2 = 5/36
    # AC1 = (2/3 - 5/36) / (1 - 5/36) = (19/36) / (31/36) = 19/31
    counts = np.array([[2, 1, 0], [2, 0, 0]])
    est = gwet_ac1_counts(counts, boot=ItemBootstrap(2, 50, 0))
    assert est.value == pytest.approx(19 / 31) and est.n == 2
    assert est.underpowered  # two items support nothing


def test_gwet_handbook_example_and_irrcac():
    ann = _from_matrix(GWET)
    s = agreement_summary(ann, ItemBootstrap(ann.n_items, 200, 0))
    assert s.gwet_ac1.value == pytest.approx(0.7754, abs=5e-5)
    irr = pytest.importorskip("irrCAC.raw")
    import pandas as pd

    ref = irr.CAC(pd.DataFrame(GWET), categories=[1, 2, 3, 4, 5], digits=10)
    assert s.gwet_ac1.value == pytest.approx(ref.gwet()["est"]["coefficient_value"], abs=1e-9)
    # (irrCAC's Fleiss on missing data pools category shares over single-rated items too; ours, like
    # statsmodels on complete data, over items with two or more ratings: 0.76077 vs 0.76117 here)
    assert s.n_items == 11 and s.n_annotations == 41


@pytest.mark.parametrize("seed", [0, 1])
def test_sparse_crowd_against_libraries(seed):
    krippendorff = pytest.importorskip("krippendorff")
    irr = pytest.importorskip("irrCAC.raw")
    import pandas as pd
    from statsmodels.stats.inter_rater import aggregate_raters
    from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss

    rng = np.random.default_rng(seed)
    n_items, n_raters = 120, 15
    truth = rng.choice(3, n_items, p=[0.6, 0.3, 0.1])
    values = np.where(rng.random((n_items, n_raters)) < 0.7, truth[:, None], rng.integers(0, 3, (n_items, n_raters)))
    values = np.where(rng.random((n_items, n_raters)) < 0.75, NAN, values.astype(float))  # sparse: ~4 per item
    values[:, 0] = truth  # nobody's item has fewer than one label
    ann = _from_matrix(values + 1, names=("a", "b", "tie"))
    s = agreement_summary(ann, ItemBootstrap(ann.n_items, 0, 0))
    ref = irr.CAC(pd.DataFrame(values), categories=[0.0, 1.0, 2.0], digits=12)
    assert s.gwet_ac1.value == pytest.approx(ref.gwet()["est"]["coefficient_value"], abs=1e-9)
    assert s.krippendorff_nominal.value == pytest.approx(
        krippendorff.alpha(reliability_data=values.T, level_of_measurement="nominal"), abs=1e-10)
    # statsmodels' Fleiss needs the same number of ratings per item: compare on items rated by exactly 4
    m = np.isfinite(values).sum(axis=1)
    four = values[m == 4]
    dense = np.array([row[np.isfinite(row)] for row in four]).astype(int)
    sub = _from_matrix(np.where(np.isfinite(four), four + 1, NAN), names=("a", "b", "tie"))
    mine = agreement_summary(sub, ItemBootstrap(sub.n_items, 0, 0)).fleiss_kappa.value
    assert mine == pytest.approx(sm_fleiss(aggregate_raters(dense, n_cat=3)[0]), abs=1e-10)
    # pairwise agreement by brute force over pairs of different raters on the same item
    agree = pairs = 0
    for row in values:
        v = row[np.isfinite(row)]
        for i in range(v.size):
            for j in range(i + 1, v.size):
                pairs += 1
                agree += v[i] == v[j]
    assert (s.percent_agreement.k, s.percent_agreement.n) == (agree, pairs)


def test_repeats_do_not_count_as_inter_rater_pairs():
    # labeler 0 labels item 0 twice (a, then b); labeler 1 says a. Only labeler 0's first label (a) counts.
    ann = Annotations([0, 0, 0], [0, 0, 1], [0, 1, 0], time=[1.0, 2.0, 1.5])
    s = agreement_summary(ann, ItemBootstrap(1, 0, 0))
    assert (s.percent_agreement.k, s.percent_agreement.n) == (1, 1)


def test_ratings_ordinal_interval_alpha_against_krippendorff():
    krippendorff = pytest.importorskip("krippendorff")
    rng = np.random.default_rng(3)
    truth = rng.integers(1, 6, 80)
    values = np.clip(truth[:, None] + rng.integers(-1, 2, (80, 6)), 1, 5).astype(float)
    values[rng.random(values.shape) < 0.5] = NAN
    items, raters = np.nonzero(np.isfinite(values))
    ann = Annotations(items, raters, np.full(items.size, -1), label_names=(), rating=values[items, raters])
    s = agreement_summary(ratings_as_labels(ann), ItemBootstrap(80, 0, 0), ordered=True)
    for level, est in (("ordinal", s.krippendorff_ordinal), ("interval", s.krippendorff_interval)):
        ref = krippendorff.alpha(reliability_data=values.T, level_of_measurement=level)
        assert est.value == pytest.approx(ref, abs=1e-10)
    ann.rating[0] = 2.5  # no longer equally spaced
    with pytest.raises(ValueError, match="not equally spaced"):
        ratings_as_labels(ann)


def test_overlap_graph_by_hand():
    # items: 0 by {0, 1, 2} votes (a, a, b); 1 by {0, 1} votes (b, b); 2 by {3, 4} votes (a, b); 3 by {5}
    ann = Annotations([0, 0, 0, 1, 1, 2, 2, 3], [0, 1, 2, 0, 1, 3, 4, 5], [0, 0, 1, 1, 1, 0, 1, 0])
    g = overlap_graph(ann)
    assert (g.n_labelers, g.n_pairs, g.n_possible_pairs) == (6, 4, 15)
    assert (g.n_components, g.largest_component, g.n_isolated) == (3, 3, 1)
    pairs = {(int(a), int(b)): (int(s), int(k)) for a, b, s, k in zip(g.a, g.b, g.shared, g.agree, strict=True)}
    assert pairs == {(0, 1): (2, 2), (0, 2): (1, 0), (1, 2): (1, 0), (3, 4): (1, 0)}
    assert (int(g.a[0]), int(g.b[0])) == (0, 1)  # most shared first


def test_strength_scale_for_ordinal_alpha():
    krippendorff = pytest.importorskip("krippendorff")
    # labels a/b/tie with strengths slight (0) / clear (1): b:clear=0 b:slight=1 tie=2 a:slight=3 a:clear=4
    ann = Annotations(item=[0, 0, 1, 1, 2, 2, 3], annotator=[0, 1, 0, 1, 0, 1, 0], label=[0, 0, 1, 2, 0, 1, 1],
                      strength=[1, 0, 1, -1, 0, 0, -1], strength_names=("slight", "clear"))
    scaled = strength_scale_labels(ann)
    assert scaled.label.tolist() == [4, 3, 0, 2, 3, 1, -1]
    assert scaled.label_names == ("b:clear", "b:slight", "tie", "a:slight", "a:clear")
    s = agreement_summary(scaled, ItemBootstrap(4, 0, 0), ordered=True)
    data = np.array([[4, 0, 3, NAN], [3, 2, 1, NAN]])
    ref = krippendorff.alpha(reliability_data=data, level_of_measurement="ordinal")
    assert s.krippendorff_ordinal.value == pytest.approx(ref, abs=1e-12)


def test_one_labeler_has_no_pairs_and_no_coefficients():
    ann = Annotations([0, 1], [0, 0], [0, 1])
    g = overlap_graph(ann)
    assert (g.n_labelers, g.n_pairs, g.n_components, g.n_isolated, g.agree.size) == (1, 0, 1, 1, 0)
    s = agreement_summary(ann, ItemBootstrap(2, 20, 0))
    assert s.gwet_ac1.value is None and s.gwet_ac1.underpowered and s.percent_agreement.n == 0
