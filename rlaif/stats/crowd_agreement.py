"""Agreement for sparse crowd data: Gwet's AC1, pairwise percent agreement, Fleiss, Krippendorff, overlap graph.

All coefficients come from the (items, K) label counts of `Annotations.item_counts` (each annotator's first
label of an item), so a million annotations never become an items x annotators matrix.

- Gwet's AC1 (Gwet 2008; multiple raters, missing ratings, as in his handbook and `irrCAC`):
  p_a = mean over items with r_i >= 2 of sum_k r_ik (r_ik - 1) / (r_i (r_i - 1));
  pi_k = mean over items with r_i >= 1 of r_ik / r_i;  p_e = sum_k pi_k (1 - pi_k) / (K - 1);
  AC1 = (p_a - p_e) / (1 - p_e). K is the number of label categories (not only those observed).
  Unlike kappa, its chance term shrinks when one category dominates, so tie-heavy or skewed data do not
  drive it towards 0 while raters mostly agree (the "kappa paradox").
- Pairwise percent agreement: every pair of different labelers on the same item counts once
  (`agreement.percent_agreement_counts`).
- Overlap graph: labelers are nodes, an edge joins two labelers who labelled a common item, weighted by the
  items shared and carrying their agreements on those items. Only pairs that share items are listed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from rlaif.stats.agreement import fleiss_kappa_counts, krippendorff_alpha_counts, percent_agreement_counts
from rlaif.stats.annotations import Annotations
from rlaif.stats.bootstrap import ItemBootstrap, sum_statistic
from rlaif.stats.power import POWER_TARGET, Measure, powered


def gwet_ac1_counts(counts: np.ndarray, *, boot: ItemBootstrap, n_categories: int | None = None,
                    target: float = POWER_TARGET) -> Measure:
    """Gwet's AC1 from (items, K) category counts; `n` = items with two or more ratings."""
    counts = np.asarray(counts, dtype=float)
    k = n_categories or counts.shape[1]
    r = counts.sum(axis=1)
    two = r >= 2
    one = r >= 1
    with np.errstate(divide="ignore", invalid="ignore"):
        pa_i = np.where(two, (counts * (counts - 1)).sum(axis=1) / (r * (r - 1)), 0.0)
        shares = np.where(one[:, None], counts / r[:, None], 0.0)
    per_item = np.concatenate([pa_i[:, None], two[:, None], one[:, None], shares], axis=1).astype(float)

    def fn(t):
        pa = t[..., 0] / t[..., 1]
        pi = t[..., 3:] / t[..., 2:3]
        pe = (pi * (1 - pi)).sum(axis=-1) / (k - 1)
        return np.where(pe < 1 - 1e-12, (pa - pe) / (1 - pe), np.nan)

    return powered(sum_statistic(per_item, fn, boot=boot, n=int(two.sum())), target)


@dataclass
class AgreementSummary:
    """Inter-rater agreement of one label set (each labeler's first label of an item)."""

    percent_agreement: Measure  # n = pairs of different labelers on the same item, k = agreeing pairs
    gwet_ac1: Measure  # n = items with >= 2 labels
    fleiss_kappa: Measure
    krippendorff_nominal: Measure
    krippendorff_ordinal: Measure | None  # when the label codes are ordered (ratings)
    krippendorff_interval: Measure | None  # when the codes are equally spaced ratings
    n_items: int  # items with >= 2 labels
    n_annotations: int


def agreement_summary(ann: Annotations, boot: ItemBootstrap, *, ordered: bool = False,
                      target: float = POWER_TARGET) -> AgreementSummary:
    """All coefficients on one shared resampling. `ordered`: the label codes are ranks of equally spaced
    values (e.g. ratings 1-5 coded 0-4), so ordinal and interval alpha apply."""
    c = ann.item_counts
    ordinal = interval = None
    if ordered:
        ordinal = powered(krippendorff_alpha_counts(c, "ordinal", boot=boot), target)
        interval = powered(krippendorff_alpha_counts(c, "interval", boot=boot), target)
    return AgreementSummary(
        percent_agreement=powered(percent_agreement_counts(c, boot=boot), target),
        gwet_ac1=gwet_ac1_counts(c, boot=boot, n_categories=ann.n_labels, target=target),
        fleiss_kappa=powered(fleiss_kappa_counts(c, boot=boot), target),
        krippendorff_nominal=powered(krippendorff_alpha_counts(c, "nominal", boot=boot), target),
        krippendorff_ordinal=ordinal, krippendorff_interval=interval,
        n_items=int((c.sum(axis=1) >= 2).sum()), n_annotations=int(ann.voting.sum()))


def ratings_as_labels(ann: Annotations) -> Annotations:
    """A copy whose labels are the distinct `rating` values in increasing order (codes 0..V-1), for
    ordinal/interval alpha and AC1 on ratings. Interval alpha on these codes needs equally spaced values."""
    from dataclasses import replace

    has = np.isfinite(ann.rating)
    values, codes = np.unique(ann.rating[has], return_inverse=True)
    label = np.full(ann.n, -1, dtype=np.int64)
    label[has] = codes
    steps = np.diff(values)
    if steps.size and not np.allclose(steps, steps[0]):
        raise ValueError(f"ratings {values.tolist()} are not equally spaced: interval alpha on codes would be wrong")
    out = replace(ann, label=label, label_names=tuple(f"{v:g}" for v in values), gold=None)
    return out


def strength_scale_labels(ann: Annotations) -> Annotations:
    """A copy whose labels are points of one ordinal preference scale built from a/b/tie and the stated
    strength (`strength_names` from weakest to strongest, S levels): b at the strongest level is 0, ...,
    b at the weakest S - 1, tie S, a at the weakest S + 1, ..., a at the strongest 2S. An a/b label without
    a strength is left out (-1). Use it with `agreement_summary(..., ordered=True)` for ordinal alpha."""
    from dataclasses import replace

    if ann.label_names[:3] != ("a", "b", "tie") or not ann.strength_names:
        raise ValueError("needs preference labels (a, b, tie) and strength levels")
    n_s = len(ann.strength_names)
    has = ann.strength >= 0
    label = np.full(ann.n, -1, dtype=np.int64)
    label[ann.label == 2] = n_s
    a, b = (ann.label == 0) & has, (ann.label == 1) & has
    label[a] = n_s + 1 + ann.strength[a]
    label[b] = n_s - 1 - ann.strength[b]
    names = ([f"b:{x}" for x in reversed(ann.strength_names)] + ["tie"] + [f"a:{x}" for x in ann.strength_names])
    return replace(ann, label=label, label_names=tuple(names), gold=None)


@dataclass
class OverlapGraph:
    """Which labelers share items. Arrays list only the pairs that share at least one item (a < b)."""

    n_labelers: int  # labelers with at least one label
    n_pairs: int  # labeler pairs that share >= 1 item (edges)
    n_possible_pairs: int
    density: float  # n_pairs / n_possible_pairs
    n_components: int  # connected groups of labelers (isolated labelers count as one each)
    largest_component: int  # labelers in the largest one
    n_isolated: int  # labelers who share no item with anyone
    a: np.ndarray  # labeler codes
    b: np.ndarray
    shared: np.ndarray  # items both labelled
    agree: np.ndarray  # of those, items where their (first) labels agree


def overlap_graph(ann: Annotations) -> OverlapGraph:
    """The overlap graph from sparse products: shared = M M^T, agree = sum_k M_k M_k^T (M_k: label k only)."""
    inc = ann.incidence()
    shared = sparse.triu(inc @ inc.T, k=1).tocoo()
    agree = sparse.csr_matrix(inc.shape[:1] * 2)
    for k in range(ann.n_labels):
        mk = ann.incidence(ann.voting & (ann.label == k))
        agree = agree + mk @ mk.T
    agree = sparse.triu(agree, k=1).tocsr()
    active = np.asarray(inc.sum(axis=1)).ravel() > 0
    n_active = int(active.sum())
    adj = (shared + shared.T).tocsr()
    _, comp = connected_components(adj[active][:, active], directed=False)
    sizes = np.bincount(comp) if n_active else np.zeros(0, dtype=int)
    degree = np.asarray((adj[active] > 0).sum(axis=1)).ravel()
    possible = n_active * (n_active - 1) // 2
    order = np.lexsort((shared.col, shared.row, -shared.data))
    a, b = shared.row[order], shared.col[order]
    agreed = agree[a, b] if a.size else np.zeros(0)
    agreed = agreed.toarray() if sparse.issparse(agreed) else agreed
    return OverlapGraph(n_labelers=n_active, n_pairs=int(shared.nnz), n_possible_pairs=possible,
                        density=shared.nnz / possible if possible else 0.0, n_components=int(sizes.size),
                        largest_component=int(sizes.max()) if sizes.size else 0,
                        n_isolated=int((degree == 0).sum()), a=a, b=b, shared=shared.data[order].astype(np.int64),
                        agree=np.asarray(agreed).ravel().astype(np.int64))
