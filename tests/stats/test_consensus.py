"""Reliability-weighted consensus by hand."""
from __future__ import annotations

import numpy as np
import pytest

from rlaif.stats.annotations import Annotations
from rlaif.stats.consensus import weighted_consensus


def test_weights_posteriors_and_changes_by_hand():
    # item 0: two weak labelers say a, one strong says b; item 1: a vs b (majority tied); item 2: nobody
    ann = Annotations(item=[0, 0, 0, 1, 1], annotator=[0, 1, 2, 0, 2], label=[0, 0, 1, 0, 1],
                      item_names=np.arange(3))
    rel = np.array([0.5, 0.5, 0.95])
    c = weighted_consensus(ann, rel)
    w_weak, w_strong = np.log(2 * 0.5 / 0.5), np.log(2 * 0.95 / 0.05)
    assert c.weights == pytest.approx([w_weak, w_weak, w_strong])
    # item 0: scores a = 2 w_weak, b = w_strong, tie = 0 -> softmax
    s = np.array([2 * w_weak, w_strong, 0.0])
    assert c.probabilities[0] == pytest.approx(np.exp(s) / np.exp(s).sum())
    assert c.majority.tolist() == [0, -1, -1] and c.label.tolist() == [1, 1, -1]
    assert (c.n_items, c.n_changed, c.n_resolved) == (2, 1, 1)
    p = c.probabilities[0]
    assert c.p_chosen[0] == pytest.approx(1 - (p[0] + p[2] / 2))
    assert c.probabilities[2] == pytest.approx([1 / 3] * 3)


def test_chance_level_labelers_get_no_weight():
    ann = Annotations(item=[0, 0], annotator=[0, 1], label=[0, 1])
    c = weighted_consensus(ann, np.array([0.2, np.nan]))
    assert c.weights == pytest.approx([0.0, 0.0], abs=1e-12) and c.label.tolist() == [-1]
