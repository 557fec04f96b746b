"""Power helpers: MDE and underpowered marks, grouped ratios (by hand), BH and the z-test (statsmodels)."""
from __future__ import annotations

import numpy as np
import pytest

from rlaif.stats.bootstrap import Estimate, ItemBootstrap, ratio
from rlaif.stats.power import bh, grouped_ratios, mde_proportion, powered, two_proportion_p


def test_powered_mde_from_the_interval():
    # SE = 0.1 / 1.96 -> MDE = 2.80 * SE = 0.1429
    m = powered(Estimate(0.5, 0.4, 0.6, n=100))
    assert m.mde == pytest.approx((1.959964 + 0.841621) * 0.1 / 1.959964, abs=1e-5)
    assert m.underpowered  # 0.143 > 0.10
    assert not powered(Estimate(0.5, 0.48, 0.52, n=100)).underpowered
    assert powered(Estimate(0.5, 0.48, 0.52, n=5)).underpowered  # too few units, however narrow
    assert powered(Estimate(0.5, None, None, n=100)).underpowered
    assert mde_proportion(400, 0.5) == pytest.approx(2.801585 * 0.025, abs=1e-5)


def test_grouped_ratios_by_hand_and_against_ratio():
    item = np.array([0, 0, 1, 2, 3, 3, 4])
    group = np.array([0, 1, 0, 0, 1, 1, -1])
    num = np.array([1, 0, 1, 0, 1, 1, 1])
    den = np.ones(7)
    boot = ItemBootstrap(5, 300, 4)
    g0, g1 = grouped_ratios(item, group, num, den, 2, boot)
    assert (g0.value, g0.k, g0.n) == (pytest.approx(2 / 3), 2, 3)
    assert (g1.value, g1.k, g1.n) == (pytest.approx(2 / 3), 2, 3)
    # the same resampling as a per-item ratio restricted to the group's rows
    for g, est in ((0, g0), (1, g1)):
        keep = group == g
        per_num = np.bincount(item[keep], weights=num[keep], minlength=5)
        per_den = np.bincount(item[keep], weights=den[keep], minlength=5)
        ref = ratio(per_num, per_den, boot=boot)
        assert (est.ci_low, est.ci_high) == (pytest.approx(ref.ci_low, abs=1e-6), pytest.approx(ref.ci_high, abs=1e-6))
    assert g0.underpowered and g0.mde >= mde_proportion(3, 2 / 3)


def test_bh_and_z_test_against_statsmodels():
    from statsmodels.stats.multitest import multipletests
    from statsmodels.stats.proportion import proportions_ztest

    p = np.array([0.001, 0.04, 0.03, 0.2, np.nan, 0.012])
    q = bh(p)
    ok = np.isfinite(p)
    assert np.allclose(q[ok], multipletests(p[ok], method="fdr_bh")[1])
    assert np.isnan(q[4])
    # hand: sorted 0.001, 0.012, 0.03, 0.04, 0.2 with m = 5 -> 0.005, 0.03, 0.05, 0.05, 0.2
    assert np.allclose(np.sort(q[ok]), [0.005, 0.03, 0.05, 0.05, 0.2])
    ref = proportions_ztest([30, 45], [100, 100])[1]
    assert two_proportion_p(30, 100, 45, 100) == pytest.approx(ref)
    assert two_proportion_p(30, 100, 45, 100, "greater") == pytest.approx(ref / 2)
    assert np.isnan(two_proportion_p(0, 0, 3, 10))
