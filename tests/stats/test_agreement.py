"""Agreement statistics: hand-computed values, published examples, and reference libraries on random data."""
from __future__ import annotations

import numpy as np
import pytest

from rlaif.stats.agreement import (
    cohen_kappa,
    cohen_kappa_table,
    fleiss_kappa,
    krippendorff_alpha,
    krippendorff_alpha_interval,
    percent_agreement,
)
from rlaif.stats.bootstrap import ItemBootstrap, ratio
from rlaif.stats.dawid_skene import dawid_skene

NAN = np.nan
# Krippendorff (2011), "Computing Krippendorff's alpha-reliability": 4 coders x 12 units, values 1-5,
# missing data. Published: alpha = 0.743 nominal, 0.815 ordinal, 0.849 interval.
KRIPP = np.array([
    [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
    [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
])


def _codes(values_raters_by_units):
    return np.where(np.isnan(values_raters_by_units), -1, values_raters_by_units - 1).astype(int).T


def test_cohen_kappa_hand_computed():
    # p_o = 35/50 = 0.7; p_e = (25*30 + 25*20) / 50^2 = 0.5; kappa = 0.2 / 0.5 = 0.4
    assert cohen_kappa_table([[20, 5], [10, 15]]) == pytest.approx(0.40)
    x = np.array([0] * 20 + [0] * 5 + [1] * 10 + [1] * 15)
    y = np.array([0] * 20 + [1] * 5 + [0] * 10 + [1] * 15)
    est = cohen_kappa(x, y, 2, rounds=200)
    assert est.value == pytest.approx(0.40) and est.n == 50
    assert est.ci_low < 0.40 < est.ci_high
    assert cohen_kappa_table([[5, 0], [0, 0]]) is None  # p_e = 1: undefined, not NaN


def test_krippendorff_published_example():
    codes = _codes(KRIPP)
    assert krippendorff_alpha(codes, 5, "nominal").value == pytest.approx(0.743, abs=5e-4)
    assert krippendorff_alpha(codes, 5, "ordinal").value == pytest.approx(0.815, abs=5e-4)
    assert krippendorff_alpha(codes, 5, "interval").value == pytest.approx(0.849, abs=5e-4)
    assert krippendorff_alpha_interval(KRIPP.T).value == pytest.approx(0.849, abs=5e-4)
    assert krippendorff_alpha(codes, 5).n == 11  # unit 12 has a single value: not pairable


def _random_codes(rng, n_items, n_raters, k, missing):
    truth = rng.integers(0, k, n_items)
    codes = np.where(rng.random((n_items, n_raters)) < 0.6, truth[:, None], rng.integers(0, k, (n_items, n_raters)))
    codes[rng.random((n_items, n_raters)) < missing] = -1
    return codes


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_against_reference_libraries(seed):
    krippendorff = pytest.importorskip("krippendorff")
    from sklearn.metrics import cohen_kappa_score
    from statsmodels.stats.inter_rater import aggregate_raters
    from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss

    rng = np.random.default_rng(seed)
    codes = _random_codes(rng, 150, 4, 3, missing=0.25)
    values = np.where(codes < 0, NAN, codes.astype(float))
    for level in ("nominal", "ordinal", "interval"):
        ref = krippendorff.alpha(reliability_data=values.T, level_of_measurement=level)
        assert krippendorff_alpha(codes, 3, level, rounds=0).value == pytest.approx(ref, abs=1e-10)
    soft = np.where(codes < 0, NAN, rng.random(codes.shape))
    ref = krippendorff.alpha(reliability_data=soft.T, level_of_measurement="interval")
    assert krippendorff_alpha_interval(soft, rounds=0).value == pytest.approx(ref, abs=1e-10)

    x, y = codes[:, 0], codes[:, 1]
    both = (x >= 0) & (y >= 0)
    assert cohen_kappa(x, y, 3, rounds=0).value == pytest.approx(cohen_kappa_score(x[both], y[both]), abs=1e-12)

    full = _random_codes(rng, 120, 5, 3, missing=0.0)
    table, _ = aggregate_raters(full, n_cat=3)
    assert fleiss_kappa(full, 3, rounds=0).value == pytest.approx(sm_fleiss(table, method="fleiss"), abs=1e-12)


def test_percent_agreement_counts_every_vote_pair_once():
    # item 1: votes a, a, b -> 3 pairs, 1 agrees; item 2: a, tie -> 1 pair, 0 agree; item 3: one vote
    codes = np.array([[0, 0, 1], [0, 2, -1], [1, -1, -1]])
    est = percent_agreement(codes, 3, rounds=0)
    assert (est.k, est.n) == (1, 4) and est.value == pytest.approx(0.25)
    no_ties = percent_agreement(codes, 3, exclude=(2,), rounds=0)
    assert (no_ties.k, no_ties.n) == (1, 3)


def test_bootstrap_is_seeded_and_shared():
    rng = np.random.default_rng(5)
    k = rng.integers(0, 3, 80)
    n = np.full(80, 2)
    a = ratio(k, n, boot=ItemBootstrap(80, 300, seed=7))
    b = ratio(k, n, boot=ItemBootstrap(80, 300, seed=7))
    c = ratio(k, n, boot=ItemBootstrap(80, 300, seed=8))
    assert a == b and a.ci_low != c.ci_low
    assert a.k == k.sum() and a.n == 160 and a.ci_low < a.value < a.ci_high
    assert ratio(np.zeros(3), np.zeros(3)).value is None


@pytest.mark.filterwarnings("ignore")  # crowd-kit triggers pandas deprecation warnings
def test_dawid_skene_matches_crowdkit_and_recovers_reliability():
    rng = np.random.default_rng(1)
    n, k = 300, 3
    acc = np.array([0.9, 0.8, 0.6, 0.5, 0.4])
    truth = rng.integers(0, k, n)
    codes = np.where(rng.random((n, 5)) < acc, truth[:, None], rng.integers(0, k, (n, 5)))
    codes[rng.random((n, 5)) < 0.2] = -1
    res = dawid_skene(codes, k, smoothing=0.0, tol=1e-12, max_iter=2000)
    assert res.converged
    assert (res.classes == truth).mean() > 0.85
    expected = acc + (1 - acc) / k  # right with prob acc, else uniformly random
    assert np.abs(res.reliability - expected).max() < 0.08
    assert np.all(np.diff(res.reliability) < 0)  # the ordering of raters is recovered
    assert np.allclose(res.confusion.sum(axis=2), 1)

    crowdkit = pytest.importorskip("crowdkit.aggregation")
    import pandas as pd

    rows = [(i, r, int(codes[i, r])) for i in range(n) for r in range(5) if codes[i, r] >= 0]
    ref = crowdkit.DawidSkene(n_iter=2000, tol=1e-12).fit(pd.DataFrame(rows, columns=["task", "worker", "label"]))
    probas = ref.probas_.sort_index().reindex(columns=range(k)).to_numpy()
    assert np.abs(probas - res.posteriors).max() < 1e-4

    # a count tensor (a rater labelling an item twice) is accepted too
    twice = np.stack([codes, codes], axis=2)
    counts = (twice[..., None] == np.arange(k)).sum(axis=2)
    res2 = dawid_skene(counts, k)
    assert (res2.classes == res.classes).mean() > 0.95
