"""Coverage: the labeler x topic matrix, chi-square (scipy) and the permutation test, reach of groups."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chi2_contingency

from rlaif.stats.annotations import Annotations
from rlaif.stats.bootstrap import ItemBootstrap
from rlaif.stats.coverage import coverage, independence_test


def test_matrix_single_items_and_group_reach_by_hand():
    # items 0, 1 topic 0; item 2 topic 1; item 3 no topic. Labelers 0, 1 (group x), 2 (group y).
    ann = Annotations(item=[0, 0, 1, 2, 2, 3, 0], annotator=[0, 2, 0, 1, 2, 1, 0], label=[0] * 7,
                      topic=[0, 0, 1, -1], topic_names=("math", "code"),
                      groups={"g": [0, 0, 1]}, group_names={"g": ("x", "y")})
    cov = coverage(ann, ItemBootstrap(4, 100, 0), ks=(1, 2))
    assert cov.matrix.toarray().tolist() == [[2, 0], [0, 1], [1, 1]]  # labeler 0's repeat of item 0 counts once
    assert (cov.single_labeler_items, cov.labelled_items) == (2, 4)  # items 1 and 3
    assert cov.single_labeler_share.value == 0.5
    # distinct groups per item: item 0 {x, y}, 1 {x}, 2 {x, y}, 3 {x}
    assert cov.groups_k["g"][1].value == 1.0 and cov.groups_k["g"][2].value == 0.5


def test_chi_square_matches_scipy_when_dense():
    rng = np.random.default_rng(0)
    n_items = 3000
    topic = rng.integers(0, 3, n_items)
    item = np.repeat(np.arange(n_items), 2)
    # labeler 0 prefers topic 0, the others pick at random
    who = np.where((topic[item] == 0) & (rng.random(item.size) < 0.5), 0, rng.integers(0, 4, item.size))
    res = independence_test(who, topic, item, 4, 3)
    table = np.zeros((4, 3))
    np.add.at(table, (who, topic[item]), 1)
    stat, p, dof, _ = chi2_contingency(table, correction=False)
    assert res.method == "chi-square"
    assert (res.statistic, res.p_value, res.dof) == (pytest.approx(stat), pytest.approx(p), dof)
    assert res.cramers_v == pytest.approx(np.sqrt(stat / (table.sum() * 2)))


def test_permutation_when_sparse():
    rng = np.random.default_rng(1)
    n_items = 60
    topic = rng.integers(0, 6, n_items)
    item = np.arange(n_items)
    indep = independence_test(rng.integers(0, 20, n_items), topic, item, 20, 6, rounds=300)
    assert indep.method.startswith("permutation") and indep.sparse_share > 0.2
    assert indep.p_value > 0.05
    picky = independence_test(topic * 3 + rng.integers(0, 3, n_items), topic, item, 20, 6, rounds=300)
    assert picky.p_value == pytest.approx(1 / 301)  # each labeler sees one topic only: no permutation beats it
