"""A small Dawid–Skene (1979) EM for pairwise verdicts: weights judges by their estimated reliability.

True classes are {a, b} (one response is better); judges may answer a, b or tie, so each judge
has a 2 x 3 confusion matrix pi[j, true, observed]. Initialized from the (soft) majority vote,
then alternating M-step (prior and confusion matrices from the current posteriors) and E-step
(posterior per item from the prior and every judge's confusion row), as in the original paper.
With no ties and no smoothing this is exactly the classic K x K model (tested against crowd-kit).

Self-contained numpy, so labeling does not wait on rlaif.stats; the lead may swap in the audit
area's implementation once both exist.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TRUE = ("a", "b")
OBSERVED = ("a", "b", "tie")
_EPS = 1e-10


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


def dawid_skene(votes: list[tuple[str, str, str]], *, max_iter: int = 100, tol: float = 1e-6,
                smoothing: float = 0.01) -> DawidSkeneFit:
    """votes: (item, rater, observed) with observed in {"a", "b", "tie"}.

    `smoothing` adds that pseudo-count to every confusion cell so a judge seen on few items is
    not declared perfect (0 gives the classic maximum-likelihood estimate).
    """
    items = sorted({v[0] for v in votes})
    raters = sorted({v[1] for v in votes})
    ii = {x: n for n, x in enumerate(items)}
    rr = {x: n for n, x in enumerate(raters)}
    counts = np.zeros((len(items), len(raters), len(OBSERVED)))
    for item, rater, obs in votes:
        counts[ii[item], rr[rater], OBSERVED.index(obs)] += 1
    if not items:
        return DawidSkeneFit([], [], {}, 0.5, {}, 0, True)

    # Soft majority vote: a tie vote counts half for each side; an item with only ties is 50/50.
    per_item = counts.sum(axis=1)
    a_votes = per_item[:, 0] + 0.5 * per_item[:, 2]
    total = per_item.sum(axis=1)
    t = np.empty((len(items), 2))
    t[:, 0] = np.where(total > 0, a_votes / np.maximum(total, 1), 0.5)
    t[:, 1] = 1 - t[:, 0]

    converged = False
    steps = 0
    for steps in range(1, max_iter + 1):  # noqa: B007 (the count is reported)
        prior = np.clip(t.mean(axis=0), _EPS, None)
        # pi[j, k, l] = sum_i T[i, k] * n[i, j, l], normalized over l
        pi = np.einsum("ik,ijl->jkl", t, counts) + smoothing
        pi = np.clip(pi, _EPS, None)
        pi /= pi.sum(axis=2, keepdims=True)
        log_t = np.log(prior)[None, :] + np.einsum("ijl,jkl->ik", counts, np.log(pi))
        log_t -= log_t.max(axis=1, keepdims=True)
        new_t = np.exp(log_t)
        new_t /= new_t.sum(axis=1, keepdims=True)
        delta = float(np.abs(new_t - t).max())
        t = new_t
        if delta < tol:
            converged = True
            break
    prior = t.mean(axis=0)
    return DawidSkeneFit(
        items=items, raters=raters,
        posterior_a={x: float(t[ii[x], 0]) for x in items},
        prior_a=float(prior[0]),
        confusion={r: pi[rr[r]].tolist() for r in raters},
        iterations=steps, converged=converged,
    )
