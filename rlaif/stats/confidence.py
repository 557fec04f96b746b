"""Calibration of stated confidence: does "clearly better" mean more than "slightly better"?

For each strength/confidence level, over every labeler's first label of an item at that level and every
*other* labeler of the same item: the share of those others whose label equals the verdict (pairs of
different labelers on the same item; an item with m labels gives the verdict m - 1 chances). Each level's
rate, and the difference between the last and the first level (levels in `strength_names` order, so list
them from least to most confident), come with bootstrap intervals over items. A well-calibrated scale has
rates rising with the level and a positive difference.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rlaif.stats.annotations import Annotations
from rlaif.stats.bootstrap import ItemBootstrap, sum_statistic
from rlaif.stats.power import POWER_TARGET, Measure, grouped_ratios, powered


@dataclass
class LevelAgreement:
    level: str
    labels: int  # verdicts stated at this level that have another labeler on the item
    agreement: Measure  # n = (verdict, other labeler) pairs, k = agreeing ones


@dataclass
class Calibration:
    levels: list[LevelAgreement]
    difference: Measure | None  # last level's rate - first level's rate


def confidence_calibration(ann: Annotations, boot: ItemBootstrap, *, target: float = POWER_TARGET) -> Calibration:
    """Per stated level, how often another labeler agrees with the verdict; see the module docstring."""
    v = ann.voting & (ann.strength >= 0)
    others = ann.item_counts.sum(axis=1)[ann.item] - 1
    agree = ann.item_counts[ann.item, np.maximum(ann.label, 0)] - 1
    use = v & (others > 0)
    lv = np.where(use, ann.strength, -1)
    n_lv = len(ann.strength_names)
    rates = grouped_ratios(ann.item, lv, np.where(use, agree, 0), np.where(use, others, 0), n_lv, boot, target)
    counts = np.bincount(lv[use], minlength=n_lv)
    levels = [LevelAgreement(str(ann.strength_names[j]), int(counts[j]), rates[j]) for j in range(n_lv)]
    diff = None
    if n_lv >= 2:
        cols = []
        for j in (n_lv - 1, 0):
            m = use & (ann.strength == j)
            cols += [np.bincount(ann.item[m], weights=agree[m], minlength=ann.n_items),
                     np.bincount(ann.item[m], weights=others[m], minlength=ann.n_items)]
        per_item = np.stack(cols, axis=1)
        est = sum_statistic(per_item, lambda t: t[..., 0] / t[..., 1] - t[..., 2] / t[..., 3], boot=boot,
                            n=int(min(per_item[:, 1].sum(), per_item[:, 3].sum())))
        diff = powered(est, target)
    return Calibration(levels, diff)
