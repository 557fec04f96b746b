"""Dawid–Skene (1979): rater confusion matrices and item classes estimated jointly by EM.

Use it to weight raters by measured reliability (juries, audits) when no gold
labels exist. Input is an items x raters matrix of category codes (-1 missing),
or an items x raters x L count tensor when a rater can label an item more than
once (e.g. a judge asked in both orders). L may exceed the K classes: labels
K..L-1 are answers that name no class (a "tie" between two responses), each rater
then has a K x L confusion matrix.

Model: each item has a hidden class z with prior pi; rater r reports l with
probability confusion[r, z, l], independently given z. EM starts from the soft
majority vote (which also fixes which class is which), alternates
  M: pi_k ∝ sum_i T_ik;  confusion[r,k,l] ∝ s + sum_i T_ik N_irl
  E: T_ik ∝ pi_k prod_{r,l} confusion[r,k,l]^N_irl
and stops when the log-likelihood improves by less than `tol` (relative).
`smoothing` s (a pseudo-count) keeps a rater who never used a label from
getting probability zero for it; s = 0 gives the plain maximum-likelihood EM.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class DawidSkeneResult:
    posteriors: np.ndarray  # (items, K): P(class k | all labels); uniform for items nobody labelled
    priors: np.ndarray  # (K,): class shares
    confusion: np.ndarray  # (raters, K, L): row = true class, column = label given; rows sum to 1
    reliability: np.ndarray  # (raters,): P(label = true class) = sum_k priors_k confusion[r, k, k]; NaN if unused
    n_labels: np.ndarray  # (raters,): labels each rater gave
    log_likelihood: float
    n_iter: int
    converged: bool

    @property
    def classes(self) -> np.ndarray:
        """The most probable class per item."""
        return self.posteriors.argmax(axis=1)


def label_counts(codes: np.ndarray, n_classes: int) -> np.ndarray:
    """(items, raters) codes with -1 missing -> (items, raters, K) one-hot counts."""
    codes = np.asarray(codes)
    if codes.ndim != 2:
        raise ValueError("codes must be a 2-D items x raters array")
    if codes.size and (codes.max() >= n_classes or codes.min() < -1):
        raise ValueError(f"codes must be in -1..{n_classes - 1}")
    return (codes[:, :, None] == np.arange(n_classes)[None, None, :]).astype(float)


def dawid_skene(codes: np.ndarray, n_classes: int, *, max_iter: int = 200, tol: float = 1e-8,
                smoothing: float = 0.01) -> DawidSkeneResult:
    """Fit Dawid–Skene by EM. `codes`: (items, raters) ints with -1 missing, or (items, raters, L) counts
    with L >= K (labels past the K classes, e.g. ties, count as a vote split evenly over the classes
    in the starting majority vote)."""
    counts = np.asarray(codes, dtype=float) if np.ndim(codes) == 3 else label_counts(codes, n_classes)
    n_items, n_raters, n_obs = counts.shape
    k = n_classes
    if n_obs < k:
        raise ValueError(f"count tensor has {n_obs} labels, fewer than the {k} classes")
    votes = counts.sum(axis=1)
    labelled = votes.sum(axis=1) > 0
    class_votes = votes[:, :k] + votes[:, k:].sum(axis=1, keepdims=True) / k
    post = np.where(labelled[:, None], class_votes / np.maximum(class_votes.sum(axis=1, keepdims=True), 1e-300),
                    1.0 / k)

    ll_prev = -np.inf
    converged = False
    n_iter = 0
    for n_iter in range(1, max_iter + 1):  # noqa: B007 (reported after the loop)
        priors, confusion = _m_step(post[labelled], counts[labelled], smoothing)
        log_conf = np.log(np.clip(confusion, 1e-300, None))
        # log P(labels of item i | class k) = sum_{r,l} N_irl log confusion[r,k,l]
        log_like = np.einsum("irl,rkl->ik", counts, log_conf) + np.log(np.clip(priors, 1e-300, None))
        mx = log_like.max(axis=1, keepdims=True)
        norm = mx[:, 0] + np.log(np.exp(log_like - mx).sum(axis=1))
        post = np.exp(log_like - norm[:, None])
        ll = float(norm[labelled].sum())
        if abs(ll - ll_prev) <= tol * max(1.0, abs(ll)):
            converged = True
            break
        ll_prev = ll
    priors, confusion = _m_step(post[labelled], counts[labelled], smoothing)
    n_labels = counts.sum(axis=(0, 2))
    reliability = np.einsum("k,rkk->r", priors, confusion[:, :, :k])
    reliability = np.where(n_labels > 0, reliability, np.nan)
    return DawidSkeneResult(posteriors=post, priors=priors, confusion=confusion, reliability=reliability,
                            n_labels=n_labels, log_likelihood=ll, n_iter=n_iter, converged=converged)


def _m_step(post: np.ndarray, counts: np.ndarray, smoothing: float) -> tuple[np.ndarray, np.ndarray]:
    k = post.shape[1]
    priors = post.sum(axis=0)
    priors = priors / priors.sum() if priors.sum() > 0 else np.full(k, 1.0 / k)
    conf = np.einsum("ik,irl->rkl", post, counts) + smoothing
    rows = conf.sum(axis=2, keepdims=True)
    conf = np.where(rows > 0, conf / np.where(rows > 0, rows, 1.0), 1.0 / counts.shape[2])
    return priors, conf
