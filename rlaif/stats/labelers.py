"""Per-labeler audit: volume, agreement with the others, gold accuracy, latent-class skill, biases, repeats, flags.

Per labeler (rates are `Measure`s: value, 95% bootstrap interval over items, n, MDE, underpowered):
- `agreement`: with the leave-one-out consensus of the other labelers of each item (`loo_agreement`).
- `gold_accuracy`: share of first labels equal to the gold label, on gold items.
- `tie_rate`: share of labels that are ties; `first_rate`: among decisive verdicts with a known order, the
  share that picked the side shown first (0.5 = no position bias); `longer_rate`: among decisive verdicts on
  items whose responses differ in length (`Annotations.longer`), the share that picked the longer one (0.5 =
  no length preference); `median_lead_time` in seconds.
- `consistency`: intra-rater agreement over pairs of labels the same person gave the same item.
- `skill`: from a latent-class model fitted by crowd-kit (`latent_class`), when asked for.

Flags, each with its evidence (tests treat annotations as independent; labelers with too few labels for a
test are not tested):
- position-biased: two-sided binomial test of first_rate = 0.5;
- disagrees with everyone: one-sided z-test that the labeler's agreement is more than `margin` (default the
  power target, 0.10) below the pooled agreement of all other labelers (with a million labels every
  labeler below average is "significantly" below it; the margin keeps the flag for the ones that matter);
- likely spammer: disagrees with everyone (as above) *and* agreement at chance level: neither significantly
  above nor below it (one-sided z-tests, p >= alpha each, against the agreement a labeler guessing from
  their own label shares would get on the same items). Significantly *below* chance is not noise but a
  systematic reversal (e.g. swapped sides): that stays "disagrees with everyone";
- drifted: the change test of `rlaif.stats.drift`.
On ratings (`Annotations.rating`), exact agreement punishes a labeler who rates consistently one step above
everyone as if they guessed, so reliability is also measured as `rating_correlation`: Pearson's r between the
labeler's rating and the mean rating of the other labelers of the same item (items with at least one other
rating), with a Fisher-z 95% interval, and `rating_offset`, the mean of (own - others' mean). There, "likely
spammer" means r is not significantly above 0 (one-sided t-test, BH-adjusted), and a labeler whose exact
agreement is low but whose ratings do track the others' is "disagrees with everyone" (an offset or a scale
of their own: calibrate, do not drop).
With many labelers, p-values of each test are Benjamini–Hochberg adjusted across the labelers tested
(`q_value`); a flag is raised when q < alpha. The audit's `fdr` field says so.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.stats import binom, norm
from scipy.stats import t as student_t

from rlaif.stats.annotations import TIE, A, Annotations, B, grouped_median, loo_agreement, loo_agreement_if
from rlaif.stats.bootstrap import ItemBootstrap
from rlaif.stats.drift import DriftResult, drift
from rlaif.stats.power import POWER_TARGET, Measure, bh, grouped_ratios


@dataclass
class Flag:
    name: str  # "position-biased", "disagrees with everyone", "likely spammer", "drifted"
    p_value: float
    q_value: float  # Benjamini–Hochberg adjusted over the labelers tested
    evidence: str


@dataclass
class LabelerRecord:
    annotator: str
    code: int
    n: int  # annotations (repeats included)
    n_items: int  # distinct items
    agreement: Measure
    gold_accuracy: Measure | None
    tie_rate: Measure | None
    first_rate: Measure
    longer_rate: Measure | None
    consistency: Measure  # n = pairs of repeated labels of one item
    median_lead_time: float | None
    skill: float | None = None
    spammer_score: float | None = None
    rating_correlation: Measure | None = None  # ratings only; n = items rated by the labeler and someone else
    rating_offset: float | None = None
    flags: list[Flag] = field(default_factory=list)


@dataclass
class LabelerAudit:
    labelers: list[LabelerRecord]
    typical_agreement: float | None  # pooled agreement with the leave-one-out consensus, everyone
    fdr: str  # how multiplicity was controlled
    skill_model: str | None
    drift_overall: DriftResult | None
    drift_by_labeler: dict[int, DriftResult] = field(default_factory=dict)  # code -> its test (and series)


def _consistency(ann: Annotations) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(item, annotator, agreeing pairs, pairs) for every (item, annotator) labelled more than once."""
    ok = ann.label >= 0
    k = ann.n_labels
    cell = ann.item[ok] * ann.n_annotators + ann.annotator[ok]
    keys, c = np.unique(cell * k + ann.label[ok], return_counts=True)
    cells, inv = np.unique(keys // k, return_inverse=True)
    agree = np.bincount(inv, weights=c * (c - 1) / 2)
    total_labels = np.bincount(inv, weights=c)
    pairs = total_labels * (total_labels - 1) / 2
    rep = pairs > 0
    cells = cells[rep]
    return cells // ann.n_annotators, cells % ann.n_annotators, agree[rep], pairs[rep]


def _rates(ann: Annotations, boot: ItemBootstrap, target: float) -> dict[str, list[Measure] | None]:
    n_a = ann.n_annotators
    num, den = loo_agreement(ann)
    first = ann.chose_first()
    v = ann.voting
    out = {"agreement": grouped_ratios(ann.item, ann.annotator, num, den, n_a, boot, target),
           "first_rate": grouped_ratios(ann.item, ann.annotator, first == 1, first >= 0, n_a, boot, target)}
    out["tie_rate"] = None
    if "tie" in ann.label_names:
        out["tie_rate"] = grouped_ratios(ann.item, np.where(v, ann.annotator, -1), ann.label == TIE, v, n_a, boot,
                                         target)
    gold = ann.gold[ann.item]
    out["gold_accuracy"] = None
    if (ann.gold >= 0).any():
        on_gold = v & (gold >= 0)
        out["gold_accuracy"] = grouped_ratios(ann.item, np.where(on_gold, ann.annotator, -1), ann.label == gold,
                                              on_gold, n_a, boot, target)
    out["longer_rate"] = None
    longer = ann.longer[ann.item]
    if (ann.longer >= 0).any():
        dec = v & ((ann.label == A) | (ann.label == B)) & (longer >= 0)
        out["longer_rate"] = grouped_ratios(ann.item, np.where(dec, ann.annotator, -1), ann.label == longer, dec,
                                            n_a, boot, target)
    it, who, agree, pairs = _consistency(ann)
    out["consistency"] = grouped_ratios(it, who, agree, pairs, n_a, boot, target)
    return out


def _tests(ann: Annotations, alpha: float, min_n: int, margin: float
           ) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """name -> (p, q, evidence values) per labeler for the position, disagreement and chance tests."""
    n_a = ann.n_annotators
    first = ann.chose_first()
    k_left = np.bincount(ann.annotator, weights=first == 1, minlength=n_a)
    n_dec = np.bincount(ann.annotator, weights=first >= 0, minlength=n_a)
    p_pos = np.minimum(1.0, 2 * np.minimum(binom.cdf(k_left, n_dec, 0.5), binom.sf(k_left - 1, n_dec, 0.5)))
    p_pos[n_dec < min_n] = np.nan

    num, den = loo_agreement(ann)
    k_ag = np.bincount(ann.annotator, weights=num, minlength=n_a)
    n_ag = np.bincount(ann.annotator, weights=den, minlength=n_a)
    with np.errstate(divide="ignore", invalid="ignore"):
        rest = (k_ag.sum() - k_ag) / (n_ag.sum() - n_ag)
        bar = np.clip(rest - margin, 1e-6, 1 - 1e-6)
        z = (k_ag - n_ag * bar) / np.sqrt(n_ag * bar * (1 - bar))
        p_dis = np.where(n_ag >= min_n, norm.cdf(z), np.nan)
        # chance: a labeler guessing from their own label shares, on the same items and against the same
        # others (so the tie-break share of `loo_agreement` counts alike)
        idx, if_label, has = loo_agreement_if(ann)
        idx, if_label = idx[has], if_label[has]
        who = ann.annotator[idx]
        own = np.zeros((n_a, ann.n_labels))
        np.add.at(own, (who, ann.label[idx]), 1.0)
        own /= own.sum(axis=1, keepdims=True)
        sums = np.stack([np.bincount(who, weights=if_label[:, k], minlength=n_a) for k in range(ann.n_labels)], 1)
        chance = (own * sums).sum(axis=1) / n_ag
        z_c = (k_ag - n_ag * chance) / np.sqrt(n_ag * chance * (1 - chance))
        p_above_chance = np.where(n_ag >= min_n, norm.sf(z_c), np.nan)
        p_below_chance = np.where(n_ag >= min_n, norm.cdf(z_c), np.nan)
    return {"position-biased": (p_pos, bh(p_pos), k_left / np.maximum(n_dec, 1)),
            "disagrees with everyone": (p_dis, bh(p_dis), rest),
            "chance": (p_above_chance, p_below_chance, chance), "rating correlation": rating_correlation(ann, min_n)}


def rating_correlation(ann: Annotations, min_n: int) -> dict[str, np.ndarray] | None:
    """Per labeler: r, n, Fisher-z interval, one-sided p (r > 0) and offset against the others' mean rating of
    each item (each labeler's first rating of an item); None without ratings."""
    use = ann.first & np.isfinite(ann.rating)
    if not use.any():
        return None
    x, it, who = ann.rating[use], ann.item[use], ann.annotator[use]
    s_i = np.bincount(it, weights=x, minlength=ann.n_items)
    c_i = np.bincount(it, minlength=ann.n_items)
    keep = c_i[it] > 1
    x, it, who = x[keep], it[keep], who[keep]
    y = (s_i[it] - x) / (c_i[it] - 1)
    n_a = ann.n_annotators

    def total(v):
        return np.bincount(who, weights=v, minlength=n_a)

    n = total(np.ones_like(x))
    with np.errstate(divide="ignore", invalid="ignore"):
        mx, my = total(x) / n, total(y) / n
        sxy, sxx, syy = total(x * y) / n - mx * my, total(x * x) / n - mx * mx, total(y * y) / n - my * my
        r = np.clip(sxy / np.sqrt(sxx * syy), -1.0, 1.0)
        t = r * np.sqrt((n - 2) / np.maximum(1 - r * r, 1e-12))
        p = np.where((n >= max(min_n, 4)) & np.isfinite(r), student_t.sf(t, n - 2), np.nan)
        half = 1.959963984540054 / np.sqrt(n - 3)
        z = np.arctanh(np.clip(r, -0.999999, 0.999999))
        lo, hi = np.tanh(z - half), np.tanh(z + half)
    return {"r": r, "n": n, "lo": lo, "hi": hi, "p": p, "q": bh(p), "offset": mx - my}


def _correlation_measure(rc: dict | None, a: int, target: float) -> Measure | None:
    if rc is None or not rc["n"][a]:
        return None
    r, n, lo, hi = (float(rc[k][a]) for k in ("r", "n", "lo", "hi"))
    ok = np.isfinite(r) and n > 3
    mde = float(hi - lo) / 2 * 2.8 / 1.96 if ok else None
    return Measure(r if np.isfinite(r) else None, lo if ok else None, hi if ok else None, int(n), mde=mde,
                   underpowered=not ok or mde > target or n < 10)


def _flags_for(a: int, rec: LabelerRecord, tests: dict, drift_by: dict, alpha: float) -> list[Flag]:
    flags = []
    p, q, left = (x[a] for x in tests["position-biased"])
    if q < alpha:
        flags.append(Flag("position-biased", float(p), float(q),
                          f"picked the side shown first in {left:.0%} of {rec.first_rate.n} decisive verdicts"))
    p, q, rest = (x[a] for x in tests["disagrees with everyone"])
    rc = tests.get("rating correlation")
    if rc is not None:
        return flags + _rating_flags(a, rec, rc, q < alpha, rest, alpha) + _drift_flag(drift_by.get(a))
    if q < alpha:
        pc, pb, chance = (x[a] for x in tests["chance"])
        ag = rec.agreement.value or 0.0
        name = "likely spammer" if not (pc < alpha or pb < alpha) else "disagrees with everyone"
        flags.append(Flag(name, float(p), float(q),
                          f"agrees with the others' consensus {ag:.0%} of {rec.agreement.n} times vs {rest:.0%} "
                          f"for everyone else; chance level {chance:.0%} (p above chance {pc:.2g})"))
    return flags + _drift_flag(drift_by.get(a))


def _rating_flags(a: int, rec: LabelerRecord, rc: dict, disagrees: bool, rest: float, alpha: float) -> list[Flag]:
    r, n, p, q, off = (float(rc[k][a]) for k in ("r", "n", "p", "q", "offset"))
    if not np.isfinite(p):
        return []
    tracks = f"ratings correlate r = {r:.2f} with the others' mean over {int(n)} items (offset {off:+.2f})"
    if q >= alpha:
        return [Flag("likely spammer", p, q, f"{tracks}: not significantly above 0 (one-sided p {p:.2g}, "
                     f"BH-adjusted {q:.2g})")]
    if disagrees:
        ag = rec.agreement.value or 0.0
        return [Flag("disagrees with everyone", p, q, f"gives the others' most common rating {ag:.0%} of "
                     f"{rec.agreement.n} times vs {rest:.0%} for everyone else, though {tracks}: calibrate")]
    return []


def _drift_flag(d: DriftResult | None) -> list[Flag]:
    if d is None or not d.drifted:
        return []
    return [Flag("drifted", d.p_value, d.q_value, f"{d.metric} changed from the first window by window "
                 f"{d.fires_at} (Bonferroni-corrected p {d.p_value:.2g})")]


def audit_labelers(ann: Annotations, boot: ItemBootstrap, *, skill_model: str | None = None, window=50,
                   alpha: float = 0.05, min_n: int = 10, target: float = POWER_TARGET,
                   drift_series: str = "flagged") -> LabelerAudit:
    """One record per labeler with annotations; see the module docstring for every field and flag.
    `drift_series`: which labelers' drift results keep their window points ("flagged": drifted ones, "all")."""
    rates = _rates(ann, boot, target)
    tests = _tests(ann, alpha, min_n, target)
    overall, per = drift(ann, window, min_n=min_n, alpha=alpha, series_for=drift_series)
    drift_by = {d.annotator: d for d in per}
    skill = spam = None
    if skill_model:
        from rlaif.stats.latent_class import fit_latent_class

        fit = fit_latent_class(ann, skill_model)
        skill, spam = fit.skill, fit.spammer
    n = np.bincount(ann.annotator, minlength=ann.n_annotators)
    n_items = np.bincount(ann.annotator[ann.first], minlength=ann.n_annotators)
    lead = grouped_median(ann.annotator, ann.lead_time, ann.n_annotators)
    records = []
    for a in np.flatnonzero(n):
        rec = LabelerRecord(
            annotator=str(ann.annotator_names[a]), code=int(a), n=int(n[a]), n_items=int(n_items[a]),
            agreement=rates["agreement"][a], first_rate=rates["first_rate"][a],
            longer_rate=rates["longer_rate"][a] if rates["longer_rate"] else None,
            gold_accuracy=rates["gold_accuracy"][a] if rates["gold_accuracy"] else None,
            tie_rate=rates["tie_rate"][a] if rates["tie_rate"] else None, consistency=rates["consistency"][a],
            median_lead_time=float(lead[a]) if np.isfinite(lead[a]) else None,
            # a labeler who shares no item with anyone has no measurable skill, whatever the model returns
            skill=float(skill[a]) if skill is not None and np.isfinite(skill[a]) and rates["agreement"][a].n
            else None,
            spammer_score=float(spam[a]) if spam is not None and np.isfinite(spam[a]) else None)
        rc = tests["rating correlation"]
        if rc is not None:
            rec.rating_correlation = _correlation_measure(rc, a, target)
            rec.rating_offset = float(rc["offset"][a]) if np.isfinite(rc["offset"][a]) else None
        rec.flags = _flags_for(a, rec, tests, drift_by, alpha)
        records.append(rec)
    num, den = loo_agreement(ann)
    n_tested = int(np.isfinite(tests["disagrees with everyone"][0]).sum())
    fdr = (f"Benjamini–Hochberg at q < {alpha} across the labelers tested for each flag ({n_tested} with "
           f">= {min_n} labels for the agreement tests); drift p-values Bonferroni-corrected within a labeler")
    return LabelerAudit(records, float(num.sum() / den.sum()) if den.sum() else None, fdr, skill_model, overall,
                        drift_by)
