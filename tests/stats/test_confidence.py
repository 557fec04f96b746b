"""Calibration of stated confidence by hand."""
from __future__ import annotations

import pytest

from rlaif.stats.annotations import Annotations
from rlaif.stats.bootstrap import ItemBootstrap
from rlaif.stats.confidence import confidence_calibration


def test_agreement_per_level_by_hand():
    # item 0: a (clear), a (slight), b (slight); item 1: b (clear), b (clear); item 2: a (slight) alone
    ann = Annotations(item=[0, 0, 0, 1, 1, 2], annotator=[0, 1, 2, 0, 1, 0], label=[0, 0, 1, 1, 1, 0],
                      strength=[1, 0, 0, 1, 1, 0], strength_names=("slight", "clear"))
    cal = confidence_calibration(ann, ItemBootstrap(3, 200, 0))
    slight, clear = cal.levels
    # slight: item 0's a has 1 of 2 others agreeing, its b 0 of 2; item 2 has no others -> 1 of 4
    assert (slight.agreement.k, slight.agreement.n, slight.labels) == (1, 4, 2)
    # clear: item 0's a 1 of 2; item 1 each 1 of 1 -> 3 of 4
    assert (clear.agreement.k, clear.agreement.n, clear.labels) == (3, 4, 3)
    assert cal.difference.value == pytest.approx(0.75 - 0.25)
    assert clear.agreement.underpowered
