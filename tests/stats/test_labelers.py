"""Per-labeler audit: hand-computed rates on a tiny table, flags on planted labelers, crowd-kit skills."""
from __future__ import annotations

import numpy as np
import pytest

from rlaif.stats.annotations import Annotations
from rlaif.stats.bootstrap import ItemBootstrap
from rlaif.stats.labelers import audit_labelers


def test_rates_by_hand():
    # labeler 0: item 0 a (shown ab -> picked first), item 1 tie, item 2 b shown ab (picked second), and a
    # repeat of item 0 later saying a again (consistent); labeler 1: item 0 a, item 1 b, item 2 b.
    ann = Annotations(item=[0, 1, 2, 0, 0, 1, 2], annotator=[0, 0, 0, 0, 1, 1, 1], label=[0, 2, 1, 0, 0, 1, 1],
                      order=[0, 0, 0, 1, 1, 0, 0], time=[1, 2, 3, 9, 1, 2, 3], lead_time=[4, 8, 10, 1, 5, 5, 5],
                      gold=[0, -1, 1])
    audit = audit_labelers(ann, ItemBootstrap(3, 100, 0))
    r0, r1 = audit.labelers
    assert (r0.n, r0.n_items, r1.n) == (4, 3, 3)
    # agreement with the other's label: item 0 yes, item 1 no, item 2 yes
    assert (r0.agreement.k, r0.agreement.n) == (2, 3) and r1.agreement.value == pytest.approx(2 / 3)
    assert (r0.tie_rate.k, r0.tie_rate.n) == (1, 3)  # first labels only: the repeat is not a new item
    # decisive verdicts with a known order: a@ab first, b@ab second, repeat a@ba second -> 1 of 3
    assert (r0.first_rate.k, r0.first_rate.n) == (1, 3)
    assert (r1.first_rate.k, r1.first_rate.n) == (0, 3)
    assert (r0.consistency.k, r0.consistency.n) == (1, 1) and r1.consistency.n == 0
    assert (r0.gold_accuracy.k, r0.gold_accuracy.n) == (2, 2)
    assert r0.median_lead_time == pytest.approx(6.0)  # median of 4, 8, 10, 1
    assert r0.agreement.underpowered and not r0.flags
    assert audit.typical_agreement == pytest.approx(4 / 6)
    assert r0.longer_rate is None  # no response lengths given


def test_longer_rate_by_hand():
    # items 0..3; the longer side: a, b, unknown, a. Labeler 0 says a, b, a, tie -> decisive on items with a
    # longer side: item 0 (a = longer), item 1 (b = longer) -> 2 of 2; labeler 1 says b, b, a, b -> item 0 no,
    # item 1 yes, item 3 no -> 1 of 3 (item 2 has no longer side; ties never count).
    ann = Annotations(item=[0, 1, 2, 3, 0, 1, 2, 3], annotator=[0, 0, 0, 0, 1, 1, 1, 1],
                      label=[0, 1, 0, 2, 1, 1, 0, 1], longer=[0, 1, -1, 0])
    r0, r1 = audit_labelers(ann, ItemBootstrap(4, 50, 0)).labelers
    assert (r0.longer_rate.k, r0.longer_rate.n) == (2, 2)
    assert (r1.longer_rate.k, r1.longer_rate.n) == (1, 3) and r1.longer_rate.value == pytest.approx(1 / 3)


def _planted(seed=0, n_items=1500, n_ann=30):
    rng = np.random.default_rng(seed)
    truth = rng.choice(3, n_items, p=[0.45, 0.45, 0.1])
    item = np.repeat(np.arange(n_items), 6)
    who = np.concatenate([rng.choice(n_ann, 6, replace=False) for _ in range(n_items)])
    acc = np.full(n_ann, 0.85)
    acc[0] = 0.0  # spammer: uniform random labels
    label = np.where(rng.random(item.size) < acc[who], truth[item], rng.integers(0, 3, item.size))
    order = rng.integers(0, 2, item.size)
    biased = (who == 1) & (label != 2) & (rng.random(item.size) < 0.6)
    label = np.where(biased, order, label)  # labeler 1 picks the side shown first 60% of the time
    flip = who == 2  # labeler 2 swapped the sides (a reversal)
    label = np.where(flip & (label < 2), 1 - label, label)
    time = np.arange(item.size, dtype=float)
    late = (who == 3) & (time > time.max() / 2)  # labeler 3 starts answering "tie" half-way through
    label = np.where(late & (rng.random(item.size) < 0.6), 2, label)
    return Annotations(item, who, label, order=order, time=time), truth, acc


def test_flags_find_the_planted_labelers():
    ann, _, _ = _planted()
    audit = audit_labelers(ann, ItemBootstrap(ann.n_items, 100, 0), window=50)
    flags = {r.code: sorted(f.name for f in r.flags) for r in audit.labelers if r.flags}
    assert sorted(flags) == [0, 1, 2, 3]  # the 26 honest labelers raise nothing
    assert flags[0] == ["likely spammer"]
    assert "position-biased" in flags[1] and "likely spammer" not in flags[1]
    assert flags[2] == ["disagrees with everyone"]  # below chance: a reversal, not noise
    assert "drifted" in flags[3]
    spam = next(f for f in audit.labelers[0].flags)
    assert "chance level" in spam.evidence and spam.q_value < 0.05
    assert "Benjamini–Hochberg" in audit.fdr
    drifted = audit.labelers[3].flags[0]
    assert "changed from the first window by window 3" in drifted.evidence  # the change starts in window 3


@pytest.mark.parametrize("model", ["dawid-skene", "one-coin"])
def test_latent_class_skill_matches_crowd_kit_and_the_truth(model):
    ck = pytest.importorskip("crowdkit.aggregation")
    import pandas as pd

    from rlaif.stats.dawid_skene import dawid_skene
    from rlaif.stats.latent_class import fit_latent_class

    ann, truth, acc = _planted(1, n_items=600)
    fit = fit_latent_class(ann, model)
    df = pd.DataFrame({"task": ann.item, "worker": ann.annotator, "label": ann.label})
    if model == "one-coin":
        ref = ck.OneCoinDawidSkene(n_iter=100).fit(df).skills_.sort_index().to_numpy()
        assert np.allclose(fit.skill, ref)
    else:
        codes = np.full((ann.n_items, ann.n_annotators), -1)
        codes[ann.item, ann.annotator] = ann.label
        ours = dawid_skene(codes, 3, smoothing=0.0).reliability
        assert np.corrcoef(ours, fit.skill)[0, 1] > 0.99  # the same model fitted by two implementations
    empirical = np.bincount(ann.annotator, weights=ann.label == truth[ann.item]) / np.bincount(ann.annotator)
    # the spammer (0) and the labeler who swapped sides (2) are the two least skilled
    assert set(np.argsort(fit.skill)[:2]) == {0, 2} and np.corrcoef(fit.skill, empirical)[0, 1] > 0.9
    assert (fit.posteriors.argmax(axis=1) == truth).mean() > 0.9


def test_mace_and_glad_small():
    ck = pytest.importorskip("crowdkit.aggregation")
    import pandas as pd

    from rlaif.stats.latent_class import fit_latent_class

    ann, _, _ = _planted(2, n_items=150, n_ann=12)
    # rows in an order where labeler codes do not appear as 0, 1, 2...: the mapping back must hold
    perm = np.random.default_rng(0).permutation(ann.n)
    ann = Annotations(ann.item[perm], ann.annotator[perm], ann.label[perm])
    df = pd.DataFrame({"task": ann.item, "worker": ann.annotator, "label": ann.label})
    mace = fit_latent_class(ann, "mace", n_iter=12)
    ref = ck.MACE(n_iter=12, random_state=0).fit(df)
    workers = pd.factorize(df["worker"])[1]
    assert np.allclose(mace.spammer[workers], ref.spamming_[:, 0])
    assert set(np.argsort(-mace.spammer)[:2]) == {0, 2} and mace.spammer[0] > 0.5
    glad = fit_latent_class(ann, "glad", n_iter=12)
    ref = ck.GLAD(n_iter=12).fit(df)
    assert np.allclose(glad.skill[ref.alphas_.index.to_numpy()], ref.alphas_.to_numpy())
    assert np.allclose(glad.item_score[ref.betas_.index.to_numpy()], ref.betas_.to_numpy())
    assert set(np.argsort(glad.skill)[:2]) == {0, 2} and np.isfinite(glad.item_score).all()
    with pytest.raises(ValueError, match="unknown latent-class model"):
        fit_latent_class(ann, "zen")
