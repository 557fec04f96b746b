"""Drift over time: agreement with consensus, tie and first-position (left) rates in windows, with a change test.

Windows: `window` = an int N gives each labeler consecutive windows of N of their annotations in time order
(the overall series uses ten equal-count windows of all annotations); "day" or "week" gives calendar windows
counted from the first timestamp. Annotations without a timestamp are left out (row order in an export is not
labeling order), so a table without timestamps has no drift test.

Change test (documented choice): the first window is the baseline. For each metric (agreement with the
leave-one-out consensus, tie rate, left rate) and each later window, a pooled two-proportion z-test compares
that window with the baseline (two-sided). A labeler's p-value is the smallest over metrics and windows,
Bonferroni-corrected for the number of tests made on that labeler; the change "fires" at the first window
whose corrected p is below `alpha`. Across labelers, `q_value` is Benjamini–Hochberg over all tested labelers
and `drifted` means q < alpha. Annotations are treated as independent (the test ignores item clustering);
windows with fewer than `min_n` annotations are not tested. Median lead time per window shows pace trends.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rlaif.stats.annotations import TIE, Annotations, grouped_median, loo_agreement
from rlaif.stats.intervals import wilson_interval
from rlaif.stats.power import bh, two_proportion_p

METRICS = ("agreement", "tie_rate", "left_rate")
SECONDS = {"day": 86_400.0, "week": 7 * 86_400.0}


@dataclass
class WindowPoint:
    window: int
    n: int  # annotations in the window
    agreement: float | None
    agreement_ci: tuple[float, float] | None  # Wilson 95% on the window's annotations with a consensus
    tie_rate: float | None
    left_rate: float | None
    median_lead_time: float | None


@dataclass
class DriftResult:
    """Drift of one labeler (`annotator` code) or of everyone (`annotator` None)."""

    annotator: int | None
    points: list[WindowPoint]
    p_value: float | None  # Bonferroni-corrected smallest p over metrics x later windows
    q_value: float | None  # Benjamini–Hochberg over the labelers tested (None for the overall series)
    fires_at: int | None  # first window where the corrected p < alpha
    metric: str | None  # the metric that fired there
    drifted: bool


def _window_index(ann: Annotations, window, by: np.ndarray | None) -> np.ndarray:
    """Window of each annotation (-1: none). `by`: group code per annotation for count windows (None: all)."""
    t = ann.time
    if isinstance(window, str):
        if window not in SECONDS:
            raise ValueError(f"unknown window {window!r}: use a count, 'day' or 'week'")
        ok = np.isfinite(t)
        if not ok.any():
            return np.full(ann.n, -1)
        return np.where(ok, np.floor((np.where(ok, t, 0) - t[ok].min()) / SECONDS[window]), -1).astype(np.int64)
    size = int(window)
    if size < 1:
        raise ValueError("window must be a positive count")
    ok = np.isfinite(t)
    g = np.zeros(ann.n, dtype=np.int64) if by is None else by
    g = np.where(ok, g, int(g.max()) + 1 if g.size else 0)  # untimed rows last, in a group of their own
    order = np.lexsort((np.arange(ann.n), np.where(ok, t, 0.0), g))
    counts = np.bincount(g)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(ann.n, dtype=np.int64)
    rank[order] = np.arange(ann.n) - starts[g[order]]
    return np.where(ok, rank // size, -1)


def _tallies(ann: Annotations, key: np.ndarray, n_keys: int) -> dict[str, np.ndarray]:
    agree_num, agree_den = loo_agreement(ann)
    left = ann.chose_first()
    labelled = ann.label >= 0
    ok = key >= 0
    k = key[ok]

    def tally(w):
        return np.bincount(k, weights=np.asarray(w, dtype=float)[ok], minlength=n_keys)

    return {"n": tally(np.ones(ann.n)),
            "agreement": (tally(agree_num), tally(agree_den)),
            "tie_rate": (tally(labelled & (ann.label == TIE)) if "tie" in ann.label_names else tally(0 * left),
                         tally(labelled)),
            "left_rate": (tally(left == 1), tally(left >= 0)),
            "lead": grouped_median(k, ann.lead_time[ok], n_keys)}


def _change_test(t: dict, n_groups: int, n_windows: int, min_n: int, alpha: float):
    """(p, fires_at, metric) per group from the (n_groups * n_windows) tallies."""
    ps = []
    for m in METRICS:
        num, den = (x.reshape(n_groups, n_windows) for x in t[m])
        p = two_proportion_p(num[:, :1], den[:, :1], num[:, 1:], den[:, 1:])
        p[(den[:, 1:] < min_n) | (den[:, :1] < min_n)] = np.nan
        ps.append(p)
    allp = np.stack(ps, axis=1)  # groups x metrics x later windows
    if allp.shape[2] == 0:
        return np.full(n_groups, np.nan), np.full(n_groups, -1), np.full(n_groups, -1)
    n_tests = np.isfinite(allp).sum(axis=(1, 2))
    adj = np.minimum(1.0, allp * np.maximum(n_tests, 1)[:, None, None])
    p_best = np.where(n_tests > 0, np.nanmin(np.where(np.isfinite(adj), adj, np.inf), axis=(1, 2)), np.nan)
    fire = np.where(np.isfinite(adj), adj, 1.0) < alpha  # groups x metrics x windows
    any_w = fire.any(axis=1)
    fires_at = np.where(any_w.any(axis=1), any_w.argmax(axis=1) + 1, -1)
    metric = np.where(fires_at > 0, fire[np.arange(n_groups), :, np.maximum(fires_at - 1, 0)].argmax(axis=1), -1)
    return p_best, fires_at, metric


def _points(t: dict, g: int, n_windows: int) -> list[WindowPoint]:
    out = []
    for w in range(n_windows):
        i = g * n_windows + w
        if t["n"][i] == 0:
            continue
        vals = {m: (t[m][0][i] / t[m][1][i] if t[m][1][i] > 0 else None) for m in METRICS}
        ci = wilson_interval(vals["agreement"], t["agreement"][1][i]) if vals["agreement"] is not None else None
        lead = t["lead"][i]
        out.append(WindowPoint(w, int(t["n"][i]), vals["agreement"], ci, vals["tie_rate"], vals["left_rate"],
                               float(lead) if np.isfinite(lead) else None))
    return out


def drift(ann: Annotations, window=50, *, min_n: int = 10, alpha: float = 0.05,
          series_for: str = "flagged") -> tuple[DriftResult, list[DriftResult]]:
    """The overall series and one result per labeler with annotations (window points only for labelers in
    `series_for`: "flagged" (drifted ones) or "all"; the test results are there for every labeler)."""
    # per labeler
    win = _window_index(ann, window, ann.annotator)
    n_w = int(win.max()) + 1 if win.size and win.max() >= 0 else 1
    key = np.where(win >= 0, ann.annotator * n_w + win, -1)
    t = _tallies(ann, key, ann.n_annotators * n_w)
    p, fires, metric = _change_test(t, ann.n_annotators, n_w, min_n, alpha)
    active = np.bincount(ann.annotator, minlength=ann.n_annotators) > 0
    q = bh(np.where(active, p, np.nan))
    per = []
    for a in np.flatnonzero(active):
        drifted = bool(np.isfinite(q[a]) and q[a] < alpha)
        pts = _points(t, a, n_w) if (series_for == "all" or drifted) else []
        per.append(DriftResult(int(a), pts, _f(p[a]), _f(q[a]), int(fires[a]) if drifted else None,
                               METRICS[metric[a]] if drifted else None, drifted))
    # overall
    if isinstance(window, str):
        win_all = _window_index(ann, window, None)
    else:
        win_all = _window_index(ann, max(1, -(-int(np.isfinite(ann.time).sum()) // 10)), None)
    n_all = int(win_all.max()) + 1 if win_all.size and win_all.max() >= 0 else 1
    t_all = _tallies(ann, win_all, n_all)
    p0, f0, m0 = _change_test(t_all, 1, n_all, min_n, alpha)
    fired = bool(f0[0] > 0)
    overall = DriftResult(None, _points(t_all, 0, n_all), _f(p0[0]), None, int(f0[0]) if fired else None,
                          METRICS[m0[0]] if fired else None, fired)
    return overall, per


def _f(x) -> float | None:
    return float(x) if np.isfinite(x) else None
