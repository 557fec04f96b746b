"""Drift: windows by count and by calendar, the change test by hand (statsmodels' z-test), where it fires."""
from __future__ import annotations

import numpy as np
import pytest

from rlaif.stats.annotations import Annotations
from rlaif.stats.drift import _window_index, drift


def test_window_index_by_count_and_day():
    t = np.array([5.0, 1.0, 3.0, np.nan, 2.0, 86_400.0 * 8])
    ann = Annotations([0, 1, 2, 3, 4, 5], [0, 0, 0, 0, 1, 1], [0] * 6, time=t)
    # labeler 0 in time order: rows 1 (t=1), 2 (t=3), 0 (t=5); row 3 has no time
    assert _window_index(ann, 2, ann.annotator).tolist() == [1, 0, 0, -1, 0, 0]
    assert _window_index(ann, "day", None).tolist() == [0, 0, 0, -1, 0, 7]
    assert _window_index(ann, "week", None).tolist() == [0, 0, 0, -1, 0, 1]
    with pytest.raises(ValueError, match="unknown window"):
        _window_index(ann, "month", None)


def _two_labelers(tie_late: int) -> Annotations:
    """Labeler 0 says a, a, ... then ties in the last 20 of 60 labels; labeler 1 never changes. Both label
    every item, with two more labelers always saying a, so the others' majority stays a."""
    n = 60
    items = np.arange(n)
    lab0 = np.where(items >= n - tie_late, 2, 0)
    item = np.tile(items, 4)
    who = np.repeat([0, 1, 2, 3], n)
    label = np.concatenate([lab0, np.zeros(3 * n, int)])
    return Annotations(item, who, label, time=np.tile(items, 4).astype(float))


def test_change_fires_where_the_labeler_changed():
    from statsmodels.stats.proportion import proportions_ztest

    overall, per = drift(_two_labelers(20), window=20, min_n=5)
    d0 = {d.annotator: d for d in per}[0]
    assert d0.drifted and d0.fires_at == 2 and d0.metric == "agreement"
    # by hand: window 0 agrees 20/20, window 2 0/20 (tie rate 0 vs 1 too). Window 1 equals window 0 with a
    # pooled rate of 0 or 1 (no variance: untestable), the left rate has no order: 2 finite tests
    p = proportions_ztest([20, 0], [20, 20])[1]
    assert d0.p_value == pytest.approx(2 * p)
    assert [pt.agreement for pt in d0.points] == [1.0, 1.0, 0.0]
    assert [pt.tie_rate for pt in d0.points] == [0.0, 0.0, 1.0]
    assert d0.points[0].agreement_ci[1] == 1.0
    assert not {d.annotator: d for d in per}[1].drifted
    assert {d.annotator: d for d in per}[1].points == []  # series only for flagged labelers by default


def test_no_drift_without_change_or_without_time():
    _, per = drift(_two_labelers(0), window=20, min_n=5)
    assert not any(d.drifted for d in per)
    ann = _two_labelers(20)
    ann.time[:] = np.nan
    overall, per = drift(ann, window=20, min_n=5)
    assert not overall.drifted and all(d.p_value is None for d in per)
