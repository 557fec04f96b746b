"""Judge and labeler biases: position, length, calibration.

Inputs are per-label arrays for one rater:
- `item`: index of the label's item in the audit's item list (the bootstrap resamples items,
  so the two orders of a pair stay together),
- `winner`: 0 = a, 1 = b, 2 = tie, -1 = invalid (no verdict),
- `order`: 0 = a shown first ("ab"), 1 = b shown first ("ba"), -1 = unknown.
Rates come back as `Estimate`s with k (numerator), n (denominator) and a bootstrap 95%
interval over items, from a shared `ItemBootstrap`.

Definitions:
- first-position rate: among decisive verdicts with a known order, the share won by the
  response shown first (0.5 = no position bias).
- position consistency: among pairs judged validly in both orders, the share with the same
  winner in both (LLMBar's "positional agreement").
- preference fairness (Shi et al. 2024, "Judging the Judges"): over pairs judged validly in
  both orders, (pairs that favour the second-shown position — its response won in both orders,
  or won once with a tie the other time — minus pairs that favour the first-shown position
  likewise) / pairs. In [-1, 1]; negative means first-position bias, 0 none.
- longer preferred: among decisive verdicts on pairs whose lengths differ by more than
  `margin` characters, the share won by the longer response.
- ECE of p_a (probability that a is better) against gold outcomes a/b (gold ties left out):
  ten equal-width bins, sum over bins of (bin share) * |mean p_a - share of a wins|.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rlaif.stats.bootstrap import Estimate, ItemBootstrap, ratio, sum_statistic

A, B, TIE, INVALID = 0, 1, 2, -1
AB, BA = 0, 1


def _per_item(item: np.ndarray, values: np.ndarray, n_items: int) -> np.ndarray:
    return np.bincount(item, weights=np.asarray(values, dtype=float), minlength=n_items)


def winner_position(winner: np.ndarray, order: np.ndarray) -> np.ndarray:
    """-1 when the response shown first won, +1 when the second did, 0 for a tie; 9 when
    the verdict is invalid or the order unknown."""
    winner, order = np.asarray(winner), np.asarray(order)
    pos = np.full(winner.shape, 9)
    known = (order >= 0) & (winner >= 0)
    pos[known & (winner == TIE)] = 0
    decisive = known & (winner != TIE)
    first = np.where(order == AB, A, B)
    pos[decisive & (winner == first)] = -1
    pos[decisive & (winner != first)] = 1
    return pos


def first_position_rate(item, winner, order, boot: ItemBootstrap) -> Estimate:
    pos = winner_position(winner, order)
    decisive = (pos == -1) | (pos == 1)
    n = boot.n_items
    return ratio(_per_item(item, decisive & (pos == -1), n), _per_item(item, decisive, n), boot=boot)


@dataclass
class OrderPairs:
    """Pairs a rater judged in both orders: the first valid verdict in each order (codes as above)."""

    item: np.ndarray
    w_ab: np.ndarray
    w_ba: np.ndarray
    n_shown_both: int  # pairs with a label in both orders, valid or not


def order_pairs(item, winner, order) -> OrderPairs:
    item, winner, order = np.asarray(item), np.asarray(winner), np.asarray(order)
    first_valid: dict[tuple[int, int], int] = {}
    shown: dict[int, set[int]] = {}
    for i, w, o in zip(item.tolist(), winner.tolist(), order.tolist(), strict=True):
        if o < 0:
            continue
        shown.setdefault(i, set()).add(o)
        if w >= 0 and (i, o) not in first_valid:
            first_valid[(i, o)] = w
    both = sorted(i for i in shown if (i, AB) in first_valid and (i, BA) in first_valid)
    return OrderPairs(np.array(both, dtype=np.int64), np.array([first_valid[(i, AB)] for i in both], dtype=np.int64),
                      np.array([first_valid[(i, BA)] for i in both], dtype=np.int64),
                      sum(1 for s in shown.values() if len(s) == 2))


def position_consistency(pairs: OrderPairs, boot: ItemBootstrap) -> Estimate:
    n = boot.n_items
    return ratio(_per_item(pairs.item, pairs.w_ab == pairs.w_ba, n), _per_item(pairs.item, np.ones(len(pairs.item)), n),
                 boot=boot)


def preference_fairness(pairs: OrderPairs, boot: ItemBootstrap) -> Estimate:
    pos_ab = winner_position(pairs.w_ab, np.full(len(pairs.item), AB))
    pos_ba = winner_position(pairs.w_ba, np.full(len(pairs.item), BA))
    lean = np.sign(pos_ab + pos_ba)  # +1 favours the second-shown position, -1 the first, 0 neither
    n = boot.n_items
    return ratio(_per_item(pairs.item, lean, n), _per_item(pairs.item, np.ones(len(pairs.item)), n), boot=boot)


def longer_preferred_rate(item, winner, len_a, len_b, boot: ItemBootstrap, margin: int = 30) -> Estimate:
    winner = np.asarray(winner)
    la, lb = np.asarray(len_a, dtype=float), np.asarray(len_b, dtype=float)
    ok = np.isfinite(la) & np.isfinite(lb) & (np.abs(la - lb) > margin) & ((winner == A) | (winner == B))
    longer = np.where(la > lb, A, B)
    n = boot.n_items
    return ratio(_per_item(item, ok & (winner == longer), n), _per_item(item, ok, n), boot=boot)


@dataclass
class Calibration:
    ece: Estimate
    brier: Estimate
    bins: list[dict]  # per non-empty bin: lower, upper, n, mean_p, share_a


def calibration(item, p_a, gold_a, boot: ItemBootstrap, n_bins: int = 10) -> Calibration:
    """ECE and Brier score of p_a against gold outcomes (`gold_a`: 1 if a is better, 0 if b)."""
    item = np.asarray(item)
    p = np.asarray(p_a, dtype=float)
    y = np.asarray(gold_a, dtype=float)
    bin_of = np.minimum((p * n_bins).astype(int), n_bins - 1)
    n = boot.n_items
    cols = []
    for b in range(n_bins):
        sel = bin_of == b
        cols += [_per_item(item[sel], p[sel], n), _per_item(item[sel], y[sel], n),
                 _per_item(item[sel], np.ones(sel.sum()), n)]
    per_item = np.stack(cols, axis=1)

    def ece(t):
        t = t.reshape(t.shape[:-1] + (n_bins, 3))
        return np.abs(t[..., 0] - t[..., 1]).sum(axis=-1) / t[..., 2].sum(axis=-1)

    brier = ratio(_per_item(item, (p - y) ** 2, n), _per_item(item, np.ones(len(p)), n), boot=boot)
    brier.k = None
    bins = []
    for b in range(n_bins):
        sel = bin_of == b
        if sel.any():
            bins.append({"lower": b / n_bins, "upper": (b + 1) / n_bins, "n": int(sel.sum()),
                         "mean_p": float(p[sel].mean()), "share_a": float(y[sel].mean())})
    return Calibration(sum_statistic(per_item, ece, boot=boot, n=len(p)), brier, bins)
