"""Seeded bootstrap over items for statistics that are functions of per-item sums.

Most agreement statistics (Cohen's and Fleiss' kappa, Krippendorff's alpha, percent
agreement) depend on the data only through a sum over items of a small per-item
vector. Resampling items with replacement then amounts to weighting those vectors
by multinomial counts, so all bootstrap rounds are one matrix product instead of
a loop: `totals = counts @ per_item`.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

DEFAULT_ROUNDS = 1000
DEFAULT_SEED = 0


@dataclass
class Estimate:
    """A statistic with its percentile bootstrap 95% interval and the count it rests on.

    `value`, `ci_low`, `ci_high` are None (JSON null) when undefined, never NaN. For a
    proportion, `k` is the numerator and `n` the denominator; otherwise `n` counts items.
    """

    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int = 0
    k: int | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        if d["k"] is None:
            del d["k"]
        return d


def clean(x) -> float | None:
    """A float, or None for None/NaN/inf (JSON has no NaN)."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def percentile_ci(samples: np.ndarray, level: float = 0.95) -> tuple[float | None, float | None]:
    """Percentile interval of bootstrap replicates, ignoring undefined (NaN) ones."""
    s = np.asarray(samples, dtype=float)
    s = s[np.isfinite(s)]
    if s.size == 0:
        return None, None
    a = (1 - level) / 2
    lo, hi = np.quantile(s, [a, 1 - a])
    return clean(lo), clean(hi)


class ItemBootstrap:
    """Resampling of a fixed list of items, shared by every statistic computed on them.

    Round r draws the items with replacement; `totals(X)` returns, per round, the sum
    of the rows of X weighted by how often each item was drawn. The counts depend
    only on (n_items, rounds, seed), so statistics computed on the same items use the
    same resamples (their intervals are jointly consistent) and results are reproducible.
    """

    _CACHE_LIMIT = 20_000_000  # counts kept in memory up to this many entries, else redrawn per call

    def __init__(self, n_items: int, rounds: int = DEFAULT_ROUNDS, seed: int = DEFAULT_SEED, chunk: int = 100):
        self.n_items, self.rounds, self.seed, self.chunk = n_items, rounds, seed, chunk
        self._cached: list[np.ndarray] | None = None

    def _chunks(self):
        if self._cached is not None:
            yield from self._cached
            return
        out = []
        seeds = np.random.SeedSequence(self.seed).spawn(max(1, -(-self.rounds // self.chunk)))
        for c, start in enumerate(range(0, self.rounds, self.chunk)):
            size = min(self.chunk, self.rounds - start)
            rng = np.random.default_rng(seeds[c])
            n = self.n_items
            idx = rng.integers(0, n, size=(size, n)) + (np.arange(size) * n)[:, None]
            counts = np.bincount(idx.ravel(), minlength=size * n).reshape(size, n).astype(np.float32)
            out.append(counts)
            yield counts
        if self.rounds * self.n_items <= self._CACHE_LIMIT:
            self._cached = out

    def totals(self, per_item: np.ndarray) -> np.ndarray:
        """(rounds, d) resampled sums of the (n_items, d) rows."""
        per_item = np.asarray(per_item, dtype=float)
        if per_item.shape[0] != self.n_items:
            raise ValueError(f"expected {self.n_items} rows, got {per_item.shape[0]}")
        if self.n_items == 0 or self.rounds == 0:
            return np.zeros((self.rounds, per_item.shape[1]))
        return np.concatenate([c @ per_item for c in self._chunks()], axis=0)

    def sparse_totals(self, per_item) -> np.ndarray:
        """`totals` of a scipy sparse (n_items, d) matrix: per-labeler or per-window sums of a crowd audit,
        where most of the n_items x d entries are zero."""
        if per_item.shape[0] != self.n_items:
            raise ValueError(f"expected {self.n_items} rows, got {per_item.shape[0]}")
        if self.n_items == 0 or self.rounds == 0:
            return np.zeros((self.rounds, per_item.shape[1]))
        t = per_item.T.tocsr().astype(np.float32)
        return np.concatenate([(t @ c.T).T for c in self._chunks()], axis=0).astype(float)


def sum_statistic(per_item: np.ndarray, fn: Callable[[np.ndarray], np.ndarray], *, rounds: int = DEFAULT_ROUNDS,
                  seed: int = DEFAULT_SEED, n: int | None = None, k: int | None = None,
                  boot: ItemBootstrap | None = None) -> Estimate:
    """Estimate `fn(sum over items of per_item)` with a bootstrap over items.

    `per_item` is (n_items, d); `fn` maps (..., d) totals to (...) values and must be
    vectorized (NaN where undefined). Rows of items that do not take part are zeros.
    `n` (default: the number of rows) and `k` are reported as given. `boot` shares one
    resampling among statistics on the same items; without it one is made from `rounds`, `seed`.
    """
    per_item = np.asarray(per_item, dtype=float)
    if per_item.ndim == 1:
        per_item = per_item[:, None]
    n_rows = per_item.shape[0]
    n = n_rows if n is None else n
    if n_rows == 0 or n == 0:
        return Estimate(None, None, None, n, k)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = clean(fn(per_item.sum(axis=0)))
        lo = hi = None
        boot = boot or ItemBootstrap(n_rows, rounds, seed)
        if boot.rounds > 0 and value is not None:
            lo, hi = percentile_ci(fn(boot.totals(per_item)))
    return Estimate(value, lo, hi, n, k)


def ratio(num: np.ndarray, den: np.ndarray, *, boot: ItemBootstrap | None = None, rounds: int = DEFAULT_ROUNDS,
          seed: int = DEFAULT_SEED) -> Estimate:
    """sum(num) / sum(den) over items, bootstrapped over items (a clustered proportion when
    num counts successes and den trials per item). `k`, `n` are the sums when they are integers."""
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    k_sum, n_sum = num.sum(), den.sum()
    k_out = int(k_sum) if float(k_sum).is_integer() else None
    return sum_statistic(np.stack([num, den], axis=1), lambda t: t[..., 0] / t[..., 1], n=int(round(n_sum)),
                         k=k_out, boot=boot, rounds=rounds, seed=seed)
