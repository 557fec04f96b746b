"""Power and multiplicity for crowd audits: underpowered marks, minimum detectable effects, Benjamini–Hochberg.

- `Measure` is an `Estimate` that also says whether its n can support it. The minimum detectable effect
  (MDE) is the smallest true difference from the value that a two-sided 5% test would detect with 80% power:
  (z_0.975 + z_0.8) * SE = 2.80 SE, with SE read off the item bootstrap's 95% interval (half-width / 1.96,
  so item clustering is accounted for). A result is *underpowered* when its MDE exceeds `target` (0.10 on a
  proportion or agreement scale by default), it has no interval, or n < MIN_N. For proportions
  (`grouped_ratios`) the MDE is at least the binomial one, so a degenerate bootstrap (all 0 or all 1 on a
  few items) cannot look precise.
- `grouped_ratios`: many ratios at once (one per labeler, window or level), sum(num)/sum(den) within each
  group, all bootstrapped over items in one sparse product (`ItemBootstrap.sparse_totals`).
- `bh`: Benjamini–Hochberg adjusted p-values (q-values), via scipy.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.stats import false_discovery_control, norm

from rlaif.stats.bootstrap import Estimate, ItemBootstrap, clean

POWER_TARGET = 0.10
MIN_N = 10  # below this many units no interval is trusted, however narrow the bootstrap makes it
Z_SE_TO_MDE = float(norm.ppf(0.975) + norm.ppf(0.80))  # 2.80


@dataclass
class Measure(Estimate):
    """An `Estimate` (value, 95% interval over items, n, k) with `mde` and `underpowered` (see module doc)."""

    mde: float | None = None
    underpowered: bool = True


def powered(est: Estimate, target: float = POWER_TARGET, floor: float = 0.0) -> Measure:
    """`est` as a `Measure`: its MDE from the interval (at least `floor`), underpowered when MDE > target,
    no interval or n < MIN_N."""
    mde = None
    if est.ci_low is not None and est.ci_high is not None:
        mde = max(floor, Z_SE_TO_MDE * (est.ci_high - est.ci_low) / 2 / float(norm.ppf(0.975)))
    return Measure(est.value, est.ci_low, est.ci_high, est.n, est.k, mde=clean(mde),
                   underpowered=mde is None or mde > target or est.n < MIN_N)


def mde_proportion(n: np.ndarray | float, p: np.ndarray | float) -> np.ndarray:
    """The binomial MDE for a proportion near p on n trials (two-sided 5%, 80% power); inf for n = 0."""
    n, p = np.asarray(n, dtype=float), np.clip(np.asarray(p, dtype=float), 0.01, 0.99)
    with np.errstate(divide="ignore"):
        return Z_SE_TO_MDE * np.sqrt(p * (1 - p) / n)


def grouped_ratios(item: np.ndarray, group: np.ndarray, num: np.ndarray, den: np.ndarray, n_groups: int,
                   boot: ItemBootstrap, target: float = POWER_TARGET) -> list[Measure]:
    """Per group g: sum(num)/sum(den) over the rows of g, with a bootstrap interval over items.

    Rows are annotations (or pairs) with their item; rows with group < 0 are left out. `k`/`n` are the
    sums when integral."""
    keep = group >= 0
    item, group = item[keep], group[keep]
    num, den = np.asarray(num, dtype=float)[keep], np.asarray(den, dtype=float)[keep]
    rows = np.concatenate([item, item])
    cols = np.concatenate([2 * group, 2 * group + 1])
    mat = sparse.csr_matrix((np.concatenate([num, den]), (rows, cols)), shape=(boot.n_items, 2 * n_groups))
    k_sum = np.bincount(group, weights=num, minlength=n_groups)
    n_sum = np.bincount(group, weights=den, minlength=n_groups)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = k_sum / n_sum
        lo = hi = np.full(n_groups, np.nan)
        if boot.rounds > 0:
            tot = boot.sparse_totals(mat)
            reps = tot[:, 0::2] / tot[:, 1::2]
            reps[~np.isfinite(reps)] = np.nan
            counted = np.isfinite(reps).any(axis=0)
            lo, hi = np.full(n_groups, np.nan), np.full(n_groups, np.nan)
            if counted.any():
                lo[counted], hi[counted] = np.nanquantile(reps[:, counted], [0.025, 0.975], axis=0)
    out = []
    for g in range(n_groups):
        k = int(k_sum[g]) if float(k_sum[g]).is_integer() else None
        est = Estimate(clean(value[g]), clean(lo[g]), clean(hi[g]), int(round(n_sum[g])), k)
        floor = float(mde_proportion(n_sum[g], value[g])) if est.value is not None else 0.0
        out.append(powered(est, target, floor) if est.value is not None else Measure(None, n=est.n, k=k))
    return out


def bh(p_values: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values; NaN (untested) entries stay NaN and do not count as tests."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = false_discovery_control(p[ok], method="bh")
    return out


def two_proportion_p(k1, n1, k2, n2, alternative: str = "two-sided") -> np.ndarray:
    """Pooled two-proportion z-test p-values (vectorized; NaN where a side has n = 0 or the pool is 0/1).
    `alternative`: "two-sided", "less" (p2 < p1) or "greater" (p2 > p1)."""
    k1, n1, k2, n2 = (np.asarray(x, dtype=float) for x in (k1, n1, k2, n2))
    with np.errstate(divide="ignore", invalid="ignore"):
        pool = (k1 + k2) / (n1 + n2)
        se = np.sqrt(pool * (1 - pool) * (1 / n1 + 1 / n2))
        z = (k2 / n2 - k1 / n1) / se
    z = np.where((n1 > 0) & (n2 > 0) & (se > 0), z, np.nan)
    if alternative == "less":
        return norm.cdf(z)
    if alternative == "greater":
        return norm.sf(z)
    return 2 * norm.sf(np.abs(z))
