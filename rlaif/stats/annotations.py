"""A tidy table of human annotations, coded as numpy arrays, and the per-item tallies every crowd statistic uses.

One row per annotation (an annotator's verdict on an item; the same person labelling an item twice gives two
rows: a repeat is data). Codes, not strings, so that a million rows tally with `np.bincount`:

- `item`, `annotator`: 0-based codes into `item_names` / `annotator_names`.
- `label`: category code into `label_names`, -1 for none (a rating-only row). For pairwise preferences the
  convention of `rlaif.stats.bias` holds: 0 = a (model_a better), 1 = b, 2 = tie, in the item's canonical
  orientation.
- `time`: unix seconds (NaN unknown); `order`: which canonical side was shown first, 0 = model_a ("ab"),
  1 = model_b ("ba"), -1 unknown; `strength`: code into `strength_names` (stated strength or confidence,
  -1 none); `rating`: a numeric rating (NaN none); `lead_time`: seconds spent (NaN unknown).
- per item: `topic` (code into `topic_names`, -1 none), `gold` (the known label code, -1 none) and `longer`
  (which canonical side is the longer response: 0 = model_a, 1 = model_b, -1 unknown or within the margin).
- per annotator: `groups`, column name -> codes into `group_names[column]` (-1 unknown), from an annotator
  file (region, age band, vendor...).

Inter-rater statistics use each annotator's first annotation of an item (`first`); the later ones feed
intra-rater consistency.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from scipy import sparse

PREFERENCE_LABELS = ("a", "b", "tie")
A, B, TIE = 0, 1, 2


@dataclass(eq=False)
class Annotations:
    item: np.ndarray
    annotator: np.ndarray
    label: np.ndarray
    label_names: tuple[str, ...] = PREFERENCE_LABELS
    item_names: np.ndarray | None = None
    annotator_names: np.ndarray | None = None
    time: np.ndarray | None = None
    order: np.ndarray | None = None
    strength: np.ndarray | None = None
    strength_names: tuple[str, ...] = ()
    rating: np.ndarray | None = None
    lead_time: np.ndarray | None = None
    topic: np.ndarray | None = None
    topic_names: tuple[str, ...] = ()
    gold: np.ndarray | None = None
    longer: np.ndarray | None = None
    groups: dict[str, np.ndarray] = field(default_factory=dict)
    group_names: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self):
        self.item = np.asarray(self.item, dtype=np.int64)
        self.annotator = np.asarray(self.annotator, dtype=np.int64)
        self.label = np.asarray(self.label, dtype=np.int64)
        n = self.item.size
        if self.annotator.size != n or self.label.size != n:
            raise ValueError("item, annotator and label must have one entry per annotation")
        if n and (self.item.min() < 0 or self.annotator.min() < 0):
            raise ValueError("item and annotator codes must be >= 0")
        if n and (self.label.max() >= len(self.label_names) or self.label.min() < -1):
            raise ValueError(f"label codes must be in -1..{len(self.label_names) - 1}")
        if self.item_names is None:
            self.item_names = np.arange(int(self.item.max()) + 1 if n else 0)
        if self.annotator_names is None:
            self.annotator_names = np.arange(int(self.annotator.max()) + 1 if n else 0)
        for name, fill, dtype in (("time", np.nan, float), ("order", -1, np.int64), ("strength", -1, np.int64),
                                  ("rating", np.nan, float), ("lead_time", np.nan, float)):
            v = getattr(self, name)
            setattr(self, name, np.full(n, fill, dtype=dtype) if v is None else np.asarray(v, dtype=dtype))
            if getattr(self, name).size != n:
                raise ValueError(f"{name} must have one entry per annotation")
        for name in ("topic", "gold", "longer"):
            v = getattr(self, name)
            v = np.full(self.n_items, -1, dtype=np.int64) if v is None else np.asarray(v, dtype=np.int64)
            if v.size != self.n_items:
                raise ValueError(f"{name} must have one entry per item")
            setattr(self, name, v)
        for col, codes in self.groups.items():
            self.groups[col] = np.asarray(codes, dtype=np.int64)
            if self.groups[col].size != self.n_annotators:
                raise ValueError(f"group column {col!r} must have one entry per annotator")

    @property
    def n(self) -> int:
        return int(self.item.size)

    @property
    def n_items(self) -> int:
        return len(self.item_names)

    @property
    def n_annotators(self) -> int:
        return len(self.annotator_names)

    @property
    def n_labels(self) -> int:
        return len(self.label_names)

    @cached_property
    def first(self) -> np.ndarray:
        """Boolean mask: the annotator's first (earliest; row order breaks ties) annotation of the item."""
        key = self.item * self.n_annotators + self.annotator
        t = np.where(np.isnan(self.time), np.inf, self.time)
        idx = np.lexsort((np.arange(self.n), t, key))
        sk = key[idx]
        head = np.ones(self.n, dtype=bool)
        head[1:] = sk[1:] != sk[:-1]
        out = np.zeros(self.n, dtype=bool)
        out[idx[head]] = True
        return out

    @cached_property
    def voting(self) -> np.ndarray:
        """Mask of the annotations inter-rater statistics use: first per (item, annotator), with a label."""
        return self.first & (self.label >= 0)

    @cached_property
    def item_counts(self) -> np.ndarray:
        """(items, K) label counts over `voting` annotations."""
        m = self.voting
        k = self.n_labels
        flat = np.bincount(self.item[m] * k + self.label[m], minlength=self.n_items * k)
        return flat.reshape(self.n_items, k).astype(float)

    def incidence(self, mask: np.ndarray | None = None) -> sparse.csr_matrix:
        """(annotators, items) 0/1 matrix: who labelled what (among `mask`, default `voting`)."""
        m = self.voting if mask is None else mask
        mat = sparse.csr_matrix((np.ones(int(m.sum())), (self.annotator[m], self.item[m])),
                                shape=(self.n_annotators, self.n_items))
        mat.data[:] = 1.0
        return mat

    def chose_first(self) -> np.ndarray:
        """Per annotation: 1 if a decisive verdict picked the side shown first, 0 if the other, -1 when the
        verdict is a tie/none or the order is unknown (preference labels only)."""
        ok = (self.order >= 0) & ((self.label == A) | (self.label == B))
        return np.where(ok, (self.label == self.order).astype(np.int64), -1)

    @classmethod
    def from_frame(cls, df, annotators=None, *, label_names: tuple[str, ...] = PREFERENCE_LABELS,
                   strength_names: tuple[str, ...] | None = None) -> Annotations:
        """From a pandas DataFrame with columns `item`, `annotator`, `label` (a name in `label_names`, or
        empty), and optionally `time` (unix seconds or ISO 8601), `order` ("ab"/"ba" or 0/1), `strength`,
        `rating`, `lead_time`, `topic`, `gold`, `longer` ("a"/"b"/empty) (per-row copies of per-item values;
        the first wins).
        `annotators`: a DataFrame with an `annotator` column and one column per grouping."""
        import pandas as pd

        item_codes, item_names = pd.factorize(df["item"], sort=False)
        ann_codes, ann_names = pd.factorize(df["annotator"], sort=False)
        lookup = {name: i for i, name in enumerate(label_names)}
        label = _codes_of(df["label"], lookup, "label") if "label" in df else np.full(len(df), -1)
        kw: dict = {}
        if "time" in df:
            kw["time"] = _unix_seconds(df["time"])
        if "order" in df:
            kw["order"] = _codes_of(df["order"].astype(object).map(lambda v: {0: "ab", 1: "ba"}.get(v, v)),
                                    {"ab": 0, "ba": 1}, "order")
        if "strength" in df:
            names = tuple(strength_names or sorted(df["strength"].dropna().astype(str).unique()))
            kw["strength"] = _codes_of(df["strength"].astype(object).map(lambda v: v if pd.isna(v) else str(v)),
                                       {s: i for i, s in enumerate(names)}, "strength")
            kw["strength_names"] = names
        for col in ("rating", "lead_time"):
            if col in df:
                kw[col] = pd.to_numeric(df[col], errors="raise").to_numpy(dtype=float)
        first_row = pd.Series(np.arange(len(df))).groupby(item_codes).first().to_numpy()
        if "topic" in df:
            t_codes, t_names = pd.factorize(df["topic"].iloc[first_row], sort=True)
            kw["topic"], kw["topic_names"] = t_codes, tuple(str(x) for x in t_names)
        if "gold" in df:
            kw["gold"] = _codes_of(df["gold"].iloc[first_row], lookup, "gold")
        if "longer" in df:
            kw["longer"] = _codes_of(df["longer"].iloc[first_row], {"a": 0, "b": 1}, "longer")
        if annotators is not None:
            kw["groups"], kw["group_names"] = _groups(annotators, ann_names)
        return cls(item_codes, ann_codes, label, label_names=tuple(label_names), item_names=np.asarray(item_names),
                   annotator_names=np.asarray(ann_names), **kw)


def _codes_of(values, lookup: dict, what: str) -> np.ndarray:
    import pandas as pd

    s = pd.Series(values).reset_index(drop=True)
    codes = s.map(lambda v: -1 if pd.isna(v) or v == "" else lookup.get(v, lookup.get(str(v), -2)))
    bad = codes == -2
    if bad.any():
        raise ValueError(f"unknown {what} {s[bad].iloc[0]!r} (row {int(np.flatnonzero(bad)[0])}); "
                         f"expected one of {sorted(lookup)}")
    return codes.to_numpy(dtype=np.int64)


def _unix_seconds(values) -> np.ndarray:
    import pandas as pd

    s = pd.Series(values).reset_index(drop=True)
    num = pd.to_numeric(s, errors="coerce")
    if num.notna().sum() == s.notna().sum():
        return num.to_numpy(dtype=float)
    ts = pd.to_datetime(s, utc=True, format="ISO8601")
    return ((ts - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)).to_numpy(dtype=float)


def _groups(annotators, names) -> tuple[dict[str, np.ndarray], dict[str, tuple[str, ...]]]:
    import pandas as pd

    table = annotators.drop_duplicates("annotator").set_index("annotator")
    rows = table.reindex(pd.Index(names))
    groups, group_names = {}, {}
    for col in table.columns:
        codes, uniques = pd.factorize(rows[col], sort=True)
        groups[col], group_names[col] = codes, tuple(str(u) for u in uniques)
    return groups, group_names


def loo_agreement(ann: Annotations) -> tuple[np.ndarray, np.ndarray]:
    """Per annotation: agreement with the leave-one-out consensus of the other labelers of its item, and
    whether there is one (1.0) or not (0.0; also for non-`voting` rows).

    The consensus is the others' majority label; when several labels tie for the majority, agreement is
    1 / (number tied) if the annotation's label is among them (the chance of matching a random tie-break)."""
    idx, if_label, has = loo_agreement_if(ann)
    num, den = np.zeros(ann.n), np.zeros(ann.n)
    num[idx] = if_label[np.arange(idx.size), ann.label[idx]]
    den[idx] = has
    return num, den


def loo_agreement_if(ann: Annotations) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, (rows, K) agreement each label would have had, has-others) for the `voting` rows: what
    `loo_agreement` would give had the annotation said k (the chance level of a labeler who guesses)."""
    idx = np.flatnonzero(ann.voting)
    others = ann.item_counts[ann.item[idx]].copy()
    others[np.arange(idx.size), ann.label[idx]] -= 1
    top = others.max(axis=1)
    has = top > 0
    tied = (others == top[:, None]) & has[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        if_label = np.where(tied, 1.0 / tied.sum(axis=1, keepdims=True), 0.0)
    return idx, if_label, has


def grouped_median(key: np.ndarray, values: np.ndarray, n_keys: int) -> np.ndarray:
    """Median of `values` per key (NaN values ignored; NaN for keys without values), without a Python loop."""
    ok = np.isfinite(values)
    key, values = key[ok], values[ok]
    order = np.lexsort((values, key))
    key, values = key[order], values[order]
    counts = np.bincount(key, minlength=n_keys)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    out = np.full(n_keys, np.nan)
    has = counts > 0
    lo = starts[has] + (counts[has] - 1) // 2
    hi = starts[has] + counts[has] // 2
    out[has] = (values[lo] + values[hi]) / 2
    return out
