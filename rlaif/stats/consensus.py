"""Consensus that uses the measurements: labels weighted by each labeler's measured reliability.

Weights follow the one-coin model (each labeler right with probability r, wrong labels spread evenly over
the K - 1 others): the log-likelihood ratio of a vote is w = log((K - 1) r / (1 - r)), so
P(class k | votes) ∝ exp(sum of w over the votes for k), with a uniform prior. r is clipped to
[1/K, 0.99]: a labeler at or below chance gets weight 0 instead of a negative one (a spammer's vote carries
no information; a negative weight would trust them to be wrong), and nobody gets infinite weight.
Reliabilities can come from anywhere: agreement with the leave-one-out consensus, gold accuracy, a
latent-class skill; AI judges and checkers take part as further labelers with their own measured r.

`p_chosen`, for preference labels (a, b, tie): P(a) + P(tie)/2 is the soft probability that model_a is
better; `p_chosen` is that of the consensus winner (>= 0.5). Plain majority vote uses every labeler's first
label with weight 1; `n_changed` counts items both decide (no tie for first place) but differently.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rlaif.stats.annotations import TIE, A, Annotations, B


@dataclass
class Consensus:
    probabilities: np.ndarray  # (items, K) weighted posterior; uniform where nobody voted
    label: np.ndarray  # (items,) weighted consensus, -1 when nobody voted or the top classes tie exactly
    majority: np.ndarray  # (items,) plain majority, -1 on a tie for first place or no votes
    p_chosen: np.ndarray | None  # (items,) for preference labels: P(consensus side is better)
    weights: np.ndarray  # (annotators,) vote weights used
    n_items: int  # items with at least one vote
    n_changed: int  # items whose decided consensus differs from a decided majority
    n_resolved: int  # majority tied but weighted consensus decides


def _top(scores: np.ndarray, voted: np.ndarray) -> np.ndarray:
    best = scores.max(axis=1, keepdims=True)
    unique = (np.isclose(scores, best, rtol=0, atol=1e-9).sum(axis=1) == 1) & voted
    return np.where(unique, scores.argmax(axis=1), -1)


def weighted_consensus(ann: Annotations, reliability: np.ndarray) -> Consensus:
    """Consensus per item from `reliability` (annotators,) in [0, 1] (NaN: weight 0)."""
    k = ann.n_labels
    r = np.clip(np.nan_to_num(np.asarray(reliability, dtype=float), nan=1.0 / k), 1.0 / k, 0.99)
    w = np.log((k - 1) * r / (1 - r))
    m = ann.voting
    flat = ann.item[m] * k + ann.label[m]
    size = ann.n_items * k
    score = np.bincount(flat, weights=w[ann.annotator[m]], minlength=size).reshape(ann.n_items, k)
    votes = ann.item_counts
    voted = votes.sum(axis=1) > 0
    z = score - score.max(axis=1, keepdims=True)
    prob = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    label, majority = _top(score, voted), _top(votes, voted)
    p_chosen = None
    if ann.label_names[:3] == ("a", "b", "tie"):
        p_a = prob[:, A] + prob[:, TIE] / 2
        p_chosen = np.where(label == B, 1 - p_a, p_a)
        p_chosen = np.where(label == TIE, 0.5, np.maximum(p_chosen, 0.0))
    both = (label >= 0) & (majority >= 0)
    return Consensus(probabilities=prob, label=label, majority=majority, p_chosen=p_chosen, weights=w,
                     n_items=int(voted.sum()), n_changed=int((both & (label != majority)).sum()),
                     n_resolved=int(((majority < 0) & voted & (label >= 0)).sum()))
