"""Groups of labelers (an annotator-file column such as region, age band or vendor): do they see items alike?

- In-group vs cross-group agreement: over pairs of different labelers on the same item (each labeler's first
  label), the share that agree when both are in the same group, when they are in different groups, and the
  difference (in - cross), each bootstrapped over items. Labelers with an unknown group are left out.
- Each group's gap to the rest: on every item labelled by the group and by someone outside it,
  (mean score of the group) - (mean score of the others); the gap is the mean over those items, with a
  bootstrap interval over items (comparing on the same items keeps topic choice out of the gap). The score
  is the `rating` when the table has ratings, else the preference for model_a (a = +1, tie = 0, b = -1).
- Items the groups disagree on most: per item, the spread (max - min) of the group mean scores over groups
  with at least `min_per_group` labelers on it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rlaif.stats.annotations import A, Annotations, B
from rlaif.stats.bootstrap import ItemBootstrap, sum_statistic
from rlaif.stats.power import POWER_TARGET, Measure, grouped_ratios, powered


@dataclass
class GroupGap:
    group: str
    n_labelers: int
    gap: Measure  # n = items compared


@dataclass
class GroupReport:
    column: str
    in_group: Measure  # n = same-group pairs
    cross_group: Measure  # n = cross-group pairs
    difference: Measure  # in - cross
    gaps: list[GroupGap]
    score: str  # "rating" or "preference for model_a (+1 a, 0 tie, -1 b)"
    top_items: np.ndarray  # item codes, largest spread first
    top_spread: np.ndarray
    top_means: np.ndarray  # (len(top_items), groups) group mean scores, NaN where a group is absent


def _pair_tallies(ann: Annotations, g: np.ndarray, n_g: int) -> np.ndarray:
    """(items, 4): agreeing same-group pairs, same-group pairs, agreeing cross pairs, cross pairs."""
    k = ann.n_labels
    m = ann.voting & (g >= 0)
    it, gg, lab = ann.item[m], g[m], ann.label[m]

    def pairs_by_item(keys, item_of_key):
        u, c = np.unique(keys, return_counts=True)
        return np.bincount(item_of_key(u), weights=c * (c - 1) / 2, minlength=ann.n_items)

    agree_all = pairs_by_item(it * k + lab, lambda u: u // k)
    pairs_all = pairs_by_item(it, lambda u: u)
    agree_in = pairs_by_item((it * n_g + gg) * k + lab, lambda u: u // (k * n_g))
    pairs_in = pairs_by_item(it * n_g + gg, lambda u: u // n_g)
    return np.stack([agree_in, pairs_in, agree_all - agree_in, pairs_all - pairs_in], axis=1)


def _score(ann: Annotations) -> tuple[np.ndarray, str]:
    if np.isfinite(ann.rating).any():
        return ann.rating, "rating"
    s = np.where(ann.label == A, 1.0, np.where(ann.label == B, -1.0, 0.0))
    return np.where(ann.label >= 0, s, np.nan), "preference for model_a (+1 a, 0 tie, -1 b)"


def _cell_means(ann: Annotations, g: np.ndarray, n_g: int, score: np.ndarray):
    """Per (item, group) cell: sum, count; and per item: sum, count (first labels with a score and group)."""
    m = ann.first & (g >= 0) & np.isfinite(score)
    cell = ann.item[m] * n_g + g[m]
    size = ann.n_items * n_g
    s_cell = np.bincount(cell, weights=score[m], minlength=size).reshape(ann.n_items, n_g)
    n_cell = np.bincount(cell, minlength=size).reshape(ann.n_items, n_g).astype(float)
    return s_cell, n_cell


def group_report(ann: Annotations, column: str, boot: ItemBootstrap, *, top: int = 20, min_per_group: int = 1,
                 target: float = POWER_TARGET) -> GroupReport:
    """In/cross-group agreement, per-group gaps and the most divisive items for one annotator-file column."""
    codes = ann.groups[column]
    names = ann.group_names.get(column, ())
    n_g = max(len(names), int(codes.max()) + 1 if codes.size else 0)
    g = codes[ann.annotator]
    tallies = _pair_tallies(ann, g, n_g)
    n_in, n_cross = int(tallies[:, 1].sum()), int(tallies[:, 3].sum())
    in_e = sum_statistic(tallies[:, :2], lambda t: t[..., 0] / t[..., 1], boot=boot, n=n_in,
                         k=int(tallies[:, 0].sum()))
    cross_e = sum_statistic(tallies[:, 2:], lambda t: t[..., 0] / t[..., 1], boot=boot, n=n_cross,
                            k=int(tallies[:, 2].sum()))
    diff = sum_statistic(tallies, lambda t: t[..., 0] / t[..., 1] - t[..., 2] / t[..., 3], boot=boot,
                         n=min(n_in, n_cross))
    score, score_name = _score(ann)
    s_cell, n_cell = _cell_means(ann, g, n_g, score)
    s_tot, n_tot = s_cell.sum(axis=1, keepdims=True), n_cell.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_g = s_cell / n_cell
        mean_rest = (s_tot - s_cell) / (n_tot - n_cell)
    both = (n_cell > 0) & (n_tot - n_cell > 0)
    it, gi = np.nonzero(both)
    gap_m = grouped_ratios(it, gi, (mean_g - mean_rest)[it, gi], np.ones(it.size), n_g, boot, target)
    labelers = np.bincount(codes[codes >= 0], minlength=n_g)
    gaps = [GroupGap(str(names[j]) if j < len(names) else str(j), int(labelers[j]), gap_m[j]) for j in range(n_g)]
    present = np.where(n_cell >= min_per_group, mean_g, np.nan)
    enough = (np.isfinite(present).sum(axis=1) >= 2)
    spread = np.full(ann.n_items, -np.inf)
    spread[enough] = np.nanmax(present[enough], axis=1) - np.nanmin(present[enough], axis=1)
    order = np.argsort(-spread, kind="stable")[: min(top, int(enough.sum()))]
    return GroupReport(column=column, in_group=powered(in_e, target), cross_group=powered(cross_e, target),
                       difference=powered(diff, target), gaps=gaps, score=score_name, top_items=order,
                       top_spread=spread[order], top_means=present[order])
