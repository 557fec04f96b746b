"""Groups: in-group vs cross-group agreement and gaps by hand; POPQUORN-like ratings."""
from __future__ import annotations

import numpy as np
import pytest

from rlaif.stats.annotations import Annotations
from rlaif.stats.bootstrap import ItemBootstrap
from rlaif.stats.groups import group_report


def _tiny() -> Annotations:
    # labelers 0, 1 in group x; 2, 3 in group y.
    # item 0: 0:a 1:a 2:b 3:b   item 1: 0:a 2:a 3:tie   item 2: 1:b 3:b
    return Annotations(item=[0, 0, 0, 0, 1, 1, 1, 2, 2], annotator=[0, 1, 2, 3, 0, 2, 3, 1, 3],
                       label=[0, 0, 1, 1, 0, 0, 2, 1, 1], groups={"side": [0, 0, 1, 1]},
                       group_names={"side": ("x", "y")})


def test_in_and_cross_group_agreement_by_hand():
    rep = group_report(_tiny(), "side", ItemBootstrap(3, 200, 0))
    # same-group pairs: item 0 (0,1) agree, (2,3) agree; item 1 (2,3) disagree -> 2 of 3
    assert (rep.in_group.k, rep.in_group.n) == (2, 3)
    # cross pairs: item 0 four pairs, none agree; item 1 (0,2) agree, (0,3) not; item 2 (1,3) agree -> 2 of 7
    assert (rep.cross_group.k, rep.cross_group.n) == (2, 7)
    assert rep.difference.value == pytest.approx(2 / 3 - 2 / 7)


def test_group_gaps_by_hand():
    rep = group_report(_tiny(), "side", ItemBootstrap(3, 200, 0))
    assert rep.score.startswith("preference")
    # scores a=+1 b=-1 tie=0. x minus y: item 0: 1 - (-1) = 2; item 1: 1 - 0.5 = 0.5; item 2: -1 - (-1) = 0
    x, y = rep.gaps
    assert (x.group, x.n_labelers) == ("x", 2)
    assert x.gap.value == pytest.approx(2.5 / 3) and x.gap.n == 3
    assert y.gap.value == pytest.approx(-2.5 / 3)
    assert rep.top_items[0] == 0 and rep.top_spread[0] == pytest.approx(2.0)
    assert rep.top_means[0].tolist() == [1.0, -1.0]


def test_rating_gap_finds_a_planted_difference():
    rng = np.random.default_rng(0)
    n_items, n_ann = 400, 40
    group = np.arange(n_ann) % 2
    item = np.repeat(np.arange(n_items), 6)
    who = np.concatenate([rng.choice(n_ann, 6, replace=False) for _ in range(n_items)])
    base = rng.integers(1, 5, n_items)
    rating = base[item] + 0.5 * group[who] + rng.normal(0, 0.5, item.size)
    ann = Annotations(item, who, np.full(item.size, -1), label_names=(), rating=rating,
                      groups={"g": group}, group_names={"g": ("lo", "hi")})
    rep = group_report(ann, "g", ItemBootstrap(n_items, 200, 0))
    lo, hi = rep.gaps
    assert rep.score == "rating"
    assert hi.gap.ci_low < 0.5 < hi.gap.ci_high and lo.gap.value == pytest.approx(-hi.gap.value)
