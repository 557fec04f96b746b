"""Dawid–Skene (1979) for pairwise verdicts: weights judges by their estimated reliability.

True classes are {a, b} (one response is better); judges may answer a, b or tie, so each judge
has a 2 x 3 confusion matrix [true, observed]. The EM itself is rlaif.stats.dawid_skene; this
module turns (item, rater, verdict) votes into its count tensor and its result into names.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rlaif.stats.dawid_skene import dawid_skene as _fit

TRUE = ("a", "b")
OBSERVED = ("a", "b", "tie")


@dataclass
class DawidSkeneFit:
    items: list[str]
    raters: list[str]
    posterior_a: dict[str, float]  # item -> P(true winner is a)
    prior_a: float
    confusion: dict[str, list[list[float]]]  # rater -> [true a, true b] x [obs a, obs b, obs tie]
    iterations: int
    converged: bool

    def accuracy(self, rater: str) -> float:
        """The rater's estimated chance of naming the true winner (weighted by the prior)."""
        c = self.confusion[rater]
        return self.prior_a * c[0][0] + (1 - self.prior_a) * c[1][1]


def dawid_skene(votes: list[tuple[str, str, str]], *, max_iter: int = 200, tol: float = 1e-10,
                smoothing: float = 0.01) -> DawidSkeneFit:
    """votes: (item, rater, observed) with observed in {"a", "b", "tie"}.

    `smoothing` adds that pseudo-count to every confusion cell so a judge seen on few items is
    not declared perfect (0 gives the classic maximum-likelihood estimate).
    """
    items = sorted({v[0] for v in votes})
    raters = sorted({v[1] for v in votes})
    if not items:
        return DawidSkeneFit([], [], {}, 0.5, {}, 0, True)
    ii = {x: n for n, x in enumerate(items)}
    rr = {x: n for n, x in enumerate(raters)}
    counts = np.zeros((len(items), len(raters), len(OBSERVED)))
    for item, rater, obs in votes:
        counts[ii[item], rr[rater], OBSERVED.index(obs)] += 1
    fit = _fit(counts, len(TRUE), max_iter=max_iter, tol=tol, smoothing=smoothing)
    return DawidSkeneFit(
        items=items, raters=raters,
        posterior_a={x: float(fit.posteriors[ii[x], 0]) for x in items},
        prior_a=float(fit.priors[0]),
        confusion={r: fit.confusion[rr[r]].tolist() for r in raters},
        iterations=fit.n_iter, converged=fit.converged,
    )
