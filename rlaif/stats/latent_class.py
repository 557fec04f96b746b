"""Labeler skill from latent-class models, fitted by crowd-kit (imported only when called).

crowd-kit (Toloka, Apache-2.0) holds the reference implementations; this module only turns `Annotations`
into its (task, worker, label) frame and reads one number per labeler back:

- "dawid-skene": accuracy sum_k prior_k P(label k | true k) from the fitted confusion matrices.
- "one-coin": the one-coin Dawid–Skene skill (one accuracy per labeler, errors spread evenly).
- "glad": GLAD's labeler expertise alpha (higher = better); item difficulty comes back as `item_score`
  (GLAD's beta: the inverse difficulty, low = hard).
- "mace": 1 - MACE's spamming probability (the chance the labeler answers from knowledge); `spammer`
  holds the spamming probability itself.
Each labeler's first label of an item is used. GLAD and MACE are much slower than Dawid–Skene on large
tables (tens of seconds per 20k labels at 50 iterations): pick them for audits of thousands, not millions.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rlaif.errors import MissingDependency
from rlaif.stats.annotations import Annotations

MODELS = ("dawid-skene", "one-coin", "glad", "mace")


@dataclass
class LatentClassFit:
    model: str
    skill: np.ndarray  # (annotators,) NaN for labelers without labels
    spammer: np.ndarray | None  # (annotators,) MACE's spamming probability
    item_score: np.ndarray | None  # (items,) GLAD's beta (inverse difficulty), NaN when unlabelled
    posteriors: np.ndarray  # (items, K) class probabilities; NaN rows for unlabelled items
    n_iter: int


def _frame(ann: Annotations):
    import pandas as pd

    m = ann.voting
    return pd.DataFrame({"task": ann.item[m], "worker": ann.annotator[m], "label": ann.label[m]})


def _per(index, values, size: int) -> np.ndarray:
    out = np.full(size, np.nan)
    out[np.asarray(index, dtype=np.int64)] = np.asarray(values, dtype=float)
    return out


def fit_latent_class(ann: Annotations, model: str = "one-coin", *, n_iter: int = 100, seed: int = 0
                     ) -> LatentClassFit:
    """Fit `model` (one of MODELS) with crowd-kit and return per-labeler skill."""
    if model not in MODELS:
        raise ValueError(f"unknown latent-class model {model!r}: use one of {', '.join(MODELS)}")
    try:
        from crowdkit import aggregation as ck
    except ImportError as e:
        raise MissingDependency("crowd-kit", "humans", "labeler skill from latent-class models") from e
    df = _frame(ann)
    spammer = item_score = None
    if model == "dawid-skene":
        fit = ck.DawidSkene(n_iter=n_iter).fit(df)
        err = fit.errors_  # index (worker, observed label), columns true label: P(observed | true)
        diag = err.stack().rename("p").reset_index()
        diag.columns = ["worker", "observed", "true", "p"]
        diag = diag[diag["observed"] == diag["true"]]
        acc = (diag["p"] * fit.priors_.reindex(diag["true"]).to_numpy()).groupby(diag["worker"]).sum()
        skill = _per(acc.index, acc.to_numpy(), ann.n_annotators)
    elif model == "one-coin":
        fit = ck.OneCoinDawidSkene(n_iter=n_iter).fit(df)
        skill = _per(fit.skills_.index, fit.skills_.to_numpy(), ann.n_annotators)
    elif model == "glad":
        fit = ck.GLAD(n_iter=n_iter).fit(df)
        skill = _per(fit.alphas_.index, fit.alphas_.to_numpy(), ann.n_annotators)
        item_score = _per(fit.betas_.index, fit.betas_.to_numpy(), ann.n_items)
    else:
        import pandas as pd

        fit = ck.MACE(n_iter=n_iter, random_state=seed).fit(df)
        workers = pd.factorize(df["worker"])[1]  # MACE's own worker order
        spammer = _per(workers, fit.spamming_[:, 0], ann.n_annotators)
        skill = 1 - spammer
    post = np.full((ann.n_items, ann.n_labels), np.nan)
    probas = fit.probas_
    cols = [int(c) for c in probas.columns]
    post[np.ix_(probas.index.to_numpy(dtype=np.int64), cols)] = probas.to_numpy(dtype=float)
    post[np.isfinite(post).any(axis=1)] = np.nan_to_num(post[np.isfinite(post).any(axis=1)])
    return LatentClassFit(model=model, skill=skill, spammer=spammer, item_score=item_score, posteriors=post,
                          n_iter=n_iter)
