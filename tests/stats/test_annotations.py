"""The annotation table: construction from pandas, first labels, leave-one-out agreement, grouped medians."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rlaif.stats.annotations import Annotations, grouped_median, loo_agreement


def test_from_frame_codes_everything():
    df = pd.DataFrame({
        "item": ["q1", "q1", "q2", "q1"], "annotator": ["ann", "bob", "ann", "ann"],
        "label": ["a", "tie", "b", "b"], "time": ["2024-01-01T00:00:00Z", "2024-01-01T00:01:00Z",
                                                 "2024-01-02T00:00:00Z", "2024-01-03T00:00:00Z"],
        "order": ["ab", "ba", 1, "ab"], "strength": ["slight", "clear", None, "clear"],
        "lead_time": [3, 4, 5, 6], "topic": ["math", "math", "code", "math"], "gold": ["a", "a", None, "a"]})
    people = pd.DataFrame({"annotator": ["bob", "ann", "eve"], "region": ["EU", "US", "EU"]})
    ann = Annotations.from_frame(df, people, strength_names=("slight", "clear"))
    assert list(ann.item) == [0, 0, 1, 0] and list(ann.annotator) == [0, 1, 0, 0]
    assert list(ann.label) == [0, 2, 1, 1] and list(ann.order) == [0, 1, 1, 0]
    assert list(ann.strength) == [0, 1, -1, 1]
    assert ann.time[1] - ann.time[0] == 60 and ann.time[0] == 1704067200
    assert list(ann.topic) == [1, 0] and ann.topic_names == ("code", "math")
    assert list(ann.gold) == [0, -1]
    assert ann.group_names["region"] == ("EU", "US") and list(ann.groups["region"]) == [1, 0]
    assert list(ann.first) == [True, True, True, False]  # ann's second label of q1 is a repeat
    assert ann.item_counts.tolist() == [[1, 0, 1], [0, 1, 0]]
    assert list(ann.chose_first()) == [1, -1, 1, 0]
    with pytest.raises(ValueError, match="unknown label 'x'"):
        Annotations.from_frame(pd.DataFrame({"item": [1], "annotator": [1], "label": ["x"]}))


def test_loo_agreement_by_hand():
    # item 0: labels a, a, b (three labelers); item 1: a, b (two); item 2: a alone
    ann = Annotations([0, 0, 0, 1, 1, 2], [0, 1, 2, 0, 1, 0], [0, 0, 1, 0, 1, 0])
    num, den = loo_agreement(ann)
    # item 0: the first a sees others (a, b): tie for the majority, a among them -> 1/2; same for the
    # second a; b sees (a, a) -> 0. Item 1: each sees one different label -> 0. Item 2: no others.
    assert num.tolist() == [0.5, 0.5, 0.0, 0.0, 0.0, 0.0]
    assert den.tolist() == [1, 1, 1, 1, 1, 0]


def test_grouped_median_against_pandas():
    rng = np.random.default_rng(0)
    key = rng.integers(0, 30, 500)
    val = rng.exponential(10, 500)
    val[rng.random(500) < 0.1] = np.nan
    got = grouped_median(key, val, 32)
    ref = pd.Series(val).groupby(key).median()
    assert np.allclose(got[ref.index], ref.to_numpy())
    assert np.isnan(got[30]) and np.isnan(got[31])
