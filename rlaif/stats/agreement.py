"""Inter-rater agreement: percent agreement, Cohen's kappa, Fleiss' kappa, Krippendorff's alpha.

Data is an items x raters matrix. Categorical data are integer codes 0..K-1 with
-1 for missing; interval data are floats with NaN for missing. Every statistic
comes as an `Estimate` with a seeded percentile bootstrap 95% interval over items
(see `rlaif.stats.bootstrap`: each statistic is a function of per-item sums, so
all rounds are one matrix product).

Definitions (checked against scikit-learn, statsmodels and the `krippendorff`
package in tests/test_stats_agreement.py):
- percent agreement (MT-Bench's): every pair of votes by two different raters on
  the same item counts once; the share of those pairs that agree. `exclude` drops
  votes in the given categories first (e.g. ties, for "agreement without ties").
- Cohen's kappa: (p_o - p_e) / (1 - p_e) over the items both raters coded.
- Fleiss' kappa, generalized to items with different numbers of ratings (items
  with fewer than two are dropped): mean per-item agreement P_i against
  sum_k p_k^2 from the pooled category shares; equals Fleiss' formula when every
  item has the same number of ratings.
- Krippendorff's alpha, 1 - D_o / D_e, from the coincidence matrix of pairable
  values (units with at least two values); nominal, ordinal (categories ordered by
  code) and interval metrics.
"""
from __future__ import annotations

import numpy as np

from rlaif.stats.bootstrap import DEFAULT_ROUNDS, DEFAULT_SEED, Estimate, ItemBootstrap, sum_statistic

# ---- per-item building blocks ----


def category_counts(codes: np.ndarray, n_categories: int) -> np.ndarray:
    """(items, K) counts of each category per item, missing (-1) ignored."""
    codes = np.asarray(codes)
    out = np.zeros((codes.shape[0], n_categories), dtype=float)
    for k in range(n_categories):
        out[:, k] = (codes == k).sum(axis=1)
    return out


# ---- percent agreement ----

def _pa_fn(t):
    return t[..., 0] / t[..., 1]


def percent_agreement(codes: np.ndarray, n_categories: int, *, exclude: tuple[int, ...] = (),
                      rounds: int = DEFAULT_ROUNDS, seed: int = DEFAULT_SEED, boot: ItemBootstrap | None = None
                      ) -> Estimate:
    """Share of agreeing vote pairs among all pairs of votes on the same item (each pair once).

    `n` is the number of vote pairs; `k` the number that agree.
    """
    return percent_agreement_counts(category_counts(codes, n_categories), exclude=exclude, rounds=rounds,
                                    seed=seed, boot=boot)


def percent_agreement_counts(counts: np.ndarray, *, exclude: tuple[int, ...] = (), rounds: int = DEFAULT_ROUNDS,
                             seed: int = DEFAULT_SEED, boot: ItemBootstrap | None = None) -> Estimate:
    """`percent_agreement` from (items, K) category counts (sparse crowd data builds them with bincount)."""
    counts = np.array(counts, dtype=float)
    if exclude:
        counts[:, list(exclude)] = 0
    m = counts.sum(axis=1)
    agree = (counts * (counts - 1) / 2).sum(axis=1)
    pairs = m * (m - 1) / 2
    return sum_statistic(np.stack([agree, pairs], axis=1), _pa_fn, rounds=rounds, seed=seed, boot=boot,
                         n=int(pairs.sum()), k=int(agree.sum()))


# ---- Cohen's kappa ----

def _kappa_from_table(t: np.ndarray) -> np.ndarray:
    """Cohen's kappa from (..., K, K) contingency tables (NaN where p_e = 1)."""
    total = t.sum(axis=(-1, -2))
    po = np.trace(t, axis1=-2, axis2=-1) / total
    pe = (t.sum(axis=-1) * t.sum(axis=-2)).sum(axis=-1) / total**2
    return np.where(pe < 1 - 1e-12, (po - pe) / np.where(pe < 1 - 1e-12, 1 - pe, 1.0), np.nan)


def cohen_kappa_table(table) -> float | None:
    """Cohen's kappa of a K x K contingency table (rows: rater 1, columns: rater 2)."""
    v = _kappa_from_table(np.asarray(table, dtype=float))
    return None if not np.isfinite(v) else float(v)


def cohen_kappa(x, y, n_categories: int, *, rounds: int = DEFAULT_ROUNDS, seed: int = DEFAULT_SEED,
                boot: ItemBootstrap | None = None) -> Estimate:
    """Cohen's kappa between two raters' codes (-1 = missing); `n` items coded by both."""
    x, y = np.asarray(x), np.asarray(y)
    both = np.flatnonzero((x >= 0) & (y >= 0))
    k = n_categories
    onehot = np.zeros((x.size, k * k))
    onehot[both, x[both] * k + y[both]] = 1.0
    return sum_statistic(onehot, lambda t: _kappa_from_table(t.reshape(t.shape[:-1] + (k, k))),
                         rounds=rounds, seed=seed, boot=boot, n=len(both))


# ---- Fleiss' kappa ----

def fleiss_kappa(codes: np.ndarray, n_categories: int, *, rounds: int = DEFAULT_ROUNDS,
                 seed: int = DEFAULT_SEED, boot: ItemBootstrap | None = None) -> Estimate:
    """Fleiss' kappa over the `n` items with two or more ratings (see the module docstring)."""
    return fleiss_kappa_counts(category_counts(codes, n_categories), rounds=rounds, seed=seed, boot=boot)


def fleiss_kappa_counts(counts: np.ndarray, *, rounds: int = DEFAULT_ROUNDS, seed: int = DEFAULT_SEED,
                        boot: ItemBootstrap | None = None) -> Estimate:
    """`fleiss_kappa` from (items, K) category counts."""
    counts = np.array(counts, dtype=float)
    m = counts.sum(axis=1)
    keep = m >= 2
    counts[~keep] = 0
    p_i = np.where(keep, (counts * (counts - 1)).sum(axis=1) / np.where(keep, m * (m - 1), 1), 0.0)
    per_item = np.concatenate([p_i[:, None], keep[:, None].astype(float), counts], axis=1)

    def fn(t):
        p_bar = t[..., 0] / t[..., 1]
        shares = t[..., 2:] / t[..., 2:].sum(axis=-1, keepdims=True)
        pe = (shares**2).sum(axis=-1)
        return np.where(pe < 1 - 1e-12, (p_bar - pe) / np.where(pe < 1 - 1e-12, 1 - pe, 1.0), np.nan)

    return sum_statistic(per_item, fn, rounds=rounds, seed=seed, boot=boot, n=int(keep.sum()))


# ---- Krippendorff's alpha ----

def _coincidences(counts: np.ndarray, n_categories: int) -> np.ndarray:
    """(pairable units, K*K) per-unit coincidence contributions n_uc n_uk / (m_u - 1), c != k pairs
    counted both ways and c == k as n_uc (n_uc - 1), from (units, K) category counts."""
    counts = np.array(counts, dtype=float)
    m = counts.sum(axis=1)
    keep = m >= 2
    counts[~keep] = 0
    o = counts[:, :, None] * counts[:, None, :]
    idx = np.arange(n_categories)
    o[:, idx, idx] -= counts
    return (o / np.where(keep, m - 1, 1)[:, None, None]).reshape(len(m), -1), int(keep.sum())


def _delta2(n_c: np.ndarray, level: str) -> np.ndarray:
    """(..., K, K) squared distances; `n_c` (..., K) are the pooled category totals (ordinal needs them)."""
    k = n_c.shape[-1]
    if level == "nominal":
        return np.broadcast_to(1.0 - np.eye(k), n_c.shape[:-1] + (k, k))
    if level == "ordinal":
        cum = np.cumsum(n_c, axis=-1)
        lo = np.minimum.outer(np.arange(k), np.arange(k))
        hi = np.maximum.outer(np.arange(k), np.arange(k))
        # sum_{g=lo..hi} n_g - (n_lo + n_hi) / 2
        cum_pad = np.concatenate([np.zeros(n_c.shape[:-1] + (1,)), cum], axis=-1)
        span = cum_pad[..., hi + 1] - cum_pad[..., lo]
        d = span - (n_c[..., lo] + n_c[..., hi]) / 2
        return d**2
    if level == "interval":
        v = np.arange(k, dtype=float)
        return np.broadcast_to((v[:, None] - v[None, :]) ** 2, n_c.shape[:-1] + (k, k))
    raise ValueError(f"unknown level {level!r}: use nominal, ordinal or interval")


def _alpha_from_coincidence(o: np.ndarray, level: str) -> np.ndarray:
    n_c = o.sum(axis=-1)
    n = n_c.sum(axis=-1)
    d2 = _delta2(n_c, level)
    d_o = (o * d2).sum(axis=(-1, -2))
    d_e = (n_c[..., :, None] * n_c[..., None, :] * d2).sum(axis=(-1, -2)) / (n - 1)
    return np.where(d_e > 0, 1 - d_o / np.where(d_e > 0, d_e, 1.0), np.nan)


def krippendorff_alpha(codes: np.ndarray, n_categories: int, level: str = "nominal", *,
                       rounds: int = DEFAULT_ROUNDS, seed: int = DEFAULT_SEED, boot: ItemBootstrap | None = None
                       ) -> Estimate:
    """Krippendorff's alpha for categorical codes (items x raters, -1 missing).

    `level`: "nominal", "ordinal" (codes in rank order) or "interval" (codes as equally spaced
    numbers). `n` is the number of pairable units (two or more values).
    """
    return krippendorff_alpha_counts(category_counts(codes, n_categories), level, rounds=rounds, seed=seed,
                                     boot=boot)


def krippendorff_alpha_counts(counts: np.ndarray, level: str = "nominal", *, rounds: int = DEFAULT_ROUNDS,
                              seed: int = DEFAULT_SEED, boot: ItemBootstrap | None = None) -> Estimate:
    """`krippendorff_alpha` from (units, K) category counts."""
    k = np.shape(counts)[1]
    _delta2(np.zeros(k), level)  # validate level early
    per_unit, n_units = _coincidences(counts, k)
    return sum_statistic(per_unit, lambda t: _alpha_from_coincidence(t.reshape(t.shape[:-1] + (k, k)), level),
                         rounds=rounds, seed=seed, boot=boot, n=n_units)


def krippendorff_alpha_interval(values: np.ndarray, *, rounds: int = DEFAULT_ROUNDS,
                                seed: int = DEFAULT_SEED, boot: ItemBootstrap | None = None) -> Estimate:
    """Krippendorff's alpha, interval metric, for real values (items x raters, NaN missing).

    Uses sufficient statistics instead of a coincidence matrix over distinct values:
    within a unit, sum_{i != j} (v_i - v_j)^2 = 2 (m S2 - S1^2).
    """
    v = np.asarray(values, dtype=float)
    present = np.isfinite(v)
    m = present.sum(axis=1)
    keep = m >= 2
    v = np.where(present & keep[:, None], v, 0.0)
    m = np.where(keep, m, 0).astype(float)
    s1 = v.sum(axis=1)
    s2 = (v**2).sum(axis=1)
    within = np.where(keep, 2 * (m * s2 - s1**2) / np.where(keep, m - 1, 1), 0.0)
    per_unit = np.stack([m, s1, s2, within], axis=1)

    def fn(t):
        n, s1_, s2_, w = t[..., 0], t[..., 1], t[..., 2], t[..., 3]
        d_o = w / n
        d_e = 2 * (n * s2_ - s1_**2) / (n * (n - 1))
        return np.where(d_e > 1e-15, 1 - d_o / np.where(d_e > 1e-15, d_e, 1.0), np.nan)

    return sum_statistic(per_unit, fn, rounds=rounds, seed=seed, boot=boot, n=int(keep.sum()))
