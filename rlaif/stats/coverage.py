"""Coverage and selection bias: who labelled which topics, and which items only one kind of person saw.

- The labeler x topic matrix counts the distinct items each labeler labelled per topic (items without a
  topic are left out).
- Independence test of labeler and topic: Pearson's chi-square on that matrix (empty rows and columns
  dropped). When it is sparse (more than 20% of expected counts below 5, Cochran's rule) the asymptotic p is
  not trusted and a permutation p-value is used instead: topics are shuffled among items (each item keeps
  its labelers; the number of items per topic is fixed), the chi-square statistic recomputed, and
  p = (1 + #{perm >= observed}) / (1 + rounds). Cramér's V gives the effect size.
- Items seen by one labeler only (share of labelled items), and for each annotator-file column the share of
  items seen by at least k distinct groups, with a bootstrap interval over items.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.stats import chi2

from rlaif.stats.annotations import Annotations
from rlaif.stats.bootstrap import ItemBootstrap, ratio
from rlaif.stats.power import POWER_TARGET, Measure, powered


@dataclass
class IndependenceTest:
    statistic: float | None
    dof: int
    p_value: float | None
    method: str  # "chi-square" or "permutation (R rounds)"
    cramers_v: float | None
    sparse_share: float  # share of expected counts below 5


@dataclass
class Coverage:
    matrix: sparse.csr_matrix  # (annotators, topics) distinct items
    topic_names: tuple[str, ...]
    test: IndependenceTest | None  # None without topics
    single_labeler_items: int
    labelled_items: int
    single_labeler_share: Measure
    groups_k: dict[str, dict[int, Measure]]  # column -> k -> share of items seen by >= k distinct groups


def _chi2_stat(obs: np.ndarray) -> tuple[float, np.ndarray]:
    r = obs.sum(axis=1, keepdims=True)
    c = obs.sum(axis=0, keepdims=True)
    exp = r * c / obs.sum()
    return float(((obs - exp) ** 2 / exp).sum()), exp


def independence_test(who: np.ndarray, topic_of_item: np.ndarray, item: np.ndarray, n_annotators: int,
                      n_topics: int, *, rounds: int = 1000, seed: int = 0) -> IndependenceTest:
    """Test labeler x topic independence over (labeler, item) pairs; see the module docstring."""
    def table(topics):
        flat = np.bincount(who * n_topics + topics[item], minlength=n_annotators * n_topics)
        return flat.reshape(n_annotators, n_topics).astype(float)

    obs = table(topic_of_item)
    rows, cols = obs.sum(axis=1) > 0, obs.sum(axis=0) > 0
    if rows.sum() < 2 or cols.sum() < 2:
        return IndependenceTest(None, 0, None, "not testable (one labeler or one topic)", None, 0.0)
    stat, exp = _chi2_stat(obs[rows][:, cols])
    dof = int((rows.sum() - 1) * (cols.sum() - 1))
    sparse_share = float((exp < 5).mean())
    v = float(np.sqrt(stat / (obs.sum() * (min(rows.sum(), cols.sum()) - 1))))
    if sparse_share <= 0.2:
        return IndependenceTest(stat, dof, float(chi2.sf(stat, dof)), "chi-square", v, sparse_share)
    rng = np.random.default_rng(seed)
    has = np.flatnonzero(topic_of_item >= 0)
    hits = 0
    for _ in range(rounds):  # each round is one bincount over all pairs: no loop over annotations
        perm = topic_of_item.copy()
        perm[has] = rng.permutation(topic_of_item[has])
        t = table(perm)
        hits += _chi2_stat(t[rows][:, cols])[0] >= stat - 1e-9
    return IndependenceTest(stat, dof, (1 + hits) / (1 + rounds), f"permutation ({rounds} rounds)", v,
                            sparse_share)


def coverage(ann: Annotations, boot: ItemBootstrap, *, ks: tuple[int, ...] = (2, 3), rounds: int = 1000,
             seed: int = 0, target: float = POWER_TARGET) -> Coverage:
    """Labeler x topic matrix and test, single-labeler items, and group reach per annotator-file column."""
    f = ann.first
    has_topic = ann.topic[ann.item] >= 0
    pick = f & has_topic
    n_t = len(ann.topic_names)
    who, item = ann.annotator[pick], ann.item[pick]
    mat = sparse.csr_matrix((np.ones(item.size), (who, ann.topic[item])), shape=(ann.n_annotators, max(n_t, 0)))
    test = independence_test(who, ann.topic, item, ann.n_annotators, n_t, rounds=rounds, seed=seed) if n_t else None
    labellers = np.bincount(ann.item[f], minlength=ann.n_items)
    labelled = labellers > 0
    single = labellers == 1
    groups_k = {}
    for col, codes in ann.groups.items():
        g = codes[ann.annotator[f]]
        ok = g >= 0
        n_g = max(len(ann.group_names.get(col, ())), int(codes.max()) + 1 if codes.size else 0)
        distinct = np.unique(ann.item[f][ok] * n_g + g[ok]) // n_g
        per_item = np.bincount(distinct, minlength=ann.n_items)
        groups_k[col] = {k: powered(ratio(per_item >= k, labelled, boot=boot), target) for k in ks}
    return Coverage(matrix=mat, topic_names=ann.topic_names, test=test, single_labeler_items=int(single.sum()),
                    labelled_items=int(labelled.sum()),
                    single_labeler_share=powered(ratio(single, labelled, boot=boot), target), groups_k=groups_k)
