"""The labeler audit's result (labelers.json) from the typed statistics of `rlaif.stats`: every measure with
its interval, n, minimum detectable effect and underpowered mark; codes turned back into names; the findings
(`rlaif.labelers.findings`) first."""
from __future__ import annotations

import numpy as np

from rlaif.annotations.annotators import Annotators
from rlaif.labelers.settings import LabelerAuditSettings
from rlaif.stats.annotations import Annotations
from rlaif.stats.bootstrap import Estimate, clean
from rlaif.stats.drift import DriftResult

MAX_PAIRS = 50  # labeler pairs listed (most shared items first); the graph's size says how many exist

DEFINITIONS = [
    ("agreement", "each labeler's first label of an item; percent agreement over pairs of different labelers on "
                  "the same item; Gwet's AC1, Fleiss' kappa and Krippendorff's alpha (nominal on a/b/tie; ordinal "
                  "on the scale b-clear < ... < tie < ... < a-clear when strengths are stated)"),
    ("labeler agreement", "agreement with the leave-one-out majority of the other labelers of each item (a tie "
                          "for the majority counts 1/(labels tied) when the labeler's label is among them)"),
    ("first_rate", "among decisive verdicts with a known display order, the share that picked the side shown "
                   "first (0.5 = no position bias)"),
    ("longer_rate", "among decisive verdicts on pairs whose lengths differ by more than the margin, the share "
                    "that picked the longer response"),
    ("rating_correlation", "ratings only: Pearson's r between the labeler's rating and the other labelers' mean "
                           "rating of the same items (Fisher-z interval); rating_offset = mean(own - others' mean)"),
    ("consistency", "intra-rater agreement over pairs of labels one labeler gave the same item (repeats)"),
    ("skill", "P(labeler's label = true label) under the latent-class model fitted by crowd-kit"),
    ("drift", "per labeler, agreement, tie and left rates in windows; change test of each later window against "
              "the first (two-proportion z), Bonferroni-corrected within the labeler, Benjamini-Hochberg across"),
    ("coverage", "labeler x topic counts of distinct items; chi-square (or permutation when sparse) test that "
                 "labelers pick topics independently; share of items seen by one labeler only"),
    ("groups", "in-group vs cross-group agreement over pairs of different labelers on one item; each group's "
               "gap = mean over shared items of (group mean score - others' mean score)"),
    ("calibration", "per stated level, share of other labelers of the item who agree with the verdict"),
    ("consensus", "per item, labels weighted by log((K-1) r / (1-r)) of each labeler's reliability r (skill, "
                  "else agreement); p_chosen = P(chosen side better) with ties split; changed = items whose "
                  "decided consensus differs from a decided plain majority"),
    ("intervals", "95% percentile bootstrap over items, seeded; underpowered = fewer than 10 units or a minimum "
                  "detectable effect (80% power) above 0.10"),
]


def m(x) -> dict | None:
    """A `Measure`/`Estimate` as JSON (value, ci_low, ci_high, n, k, mde, underpowered), None as None."""
    return None if x is None else x.to_dict() if isinstance(x, Estimate) else x


def _series(d: DriftResult | None) -> dict | None:
    if d is None:
        return None
    return {"drifted": d.drifted, "p_value": d.p_value, "q_value": d.q_value, "fires_at": d.fires_at,
            "metric": d.metric, "points": [{"window": p.window, "n": p.n, "agreement": p.agreement,
                                            "agreement_ci": list(p.agreement_ci) if p.agreement_ci else None,
                                            "tie_rate": p.tie_rate, "left_rate": p.left_rate,
                                            "median_lead_time": p.median_lead_time} for p in d.points]}


def _labelers(audit) -> list[dict]:
    rows = []
    for r in audit.labelers:
        rows.append({
            "annotator": r.annotator, "n": r.n, "n_items": r.n_items, "agreement": m(r.agreement),
            "gold_accuracy": m(r.gold_accuracy), "skill": r.skill, "spammer_score": r.spammer_score,
            "tie_rate": m(r.tie_rate), "first_rate": m(r.first_rate), "longer_rate": m(r.longer_rate),
            "median_lead_time": r.median_lead_time, "consistency": m(r.consistency),
            "rating_correlation": m(r.rating_correlation), "rating_offset": r.rating_offset,
            "flags": [{"name": f.name, "p_value": clean(f.p_value), "q_value": clean(f.q_value),
                       "evidence": f.evidence} for f in r.flags]})
    rows.sort(key=lambda x: (-len(x["flags"]), -x["n"], x["annotator"]))
    return rows


def _agreement(ann: Annotations, stats: dict) -> dict:
    a, g = stats["agreement"], stats["overlap"]
    order = np.argsort(-g.shared, kind="stable")[:MAX_PAIRS]
    names = ann.annotator_names
    return {
        "percent_agreement": m(a.percent_agreement), "gwet_ac1": m(a.gwet_ac1), "fleiss_kappa": m(a.fleiss_kappa),
        "krippendorff_nominal": m(a.krippendorff_nominal), "krippendorff_ordinal": m(stats["ordinal_alpha"]),
        "krippendorff_interval": m(a.krippendorff_interval),
        # the coefficient the fit-to-train finding reads: interval alpha on ratings, nominal on a/b/tie
        "primary": "krippendorff_interval" if stats["ratings"] else "krippendorff_nominal",
        "n_items": a.n_items, "n_annotations": a.n_annotations,
        "overlap": {"n_labelers": g.n_labelers, "n_pairs": g.n_pairs, "n_possible_pairs": g.n_possible_pairs,
                    "density": g.density, "n_components": g.n_components,
                    "largest_component": g.largest_component, "n_isolated": g.n_isolated},
        "pairs": [{"a": str(names[g.a[i]]), "b": str(names[g.b[i]]), "shared": int(g.shared[i]),
                   "agree": int(g.agree[i]), "agreement": float(g.agree[i] / g.shared[i])} for i in order]}


def _topics(ann: Annotations, cov) -> list[dict]:
    """Per topic: items, distinct labelers, the busiest labeler and their share of the topic's labels, items
    seen by one labeler only."""
    f = ann.first & (ann.label >= 0)
    per_item = np.bincount(ann.item[f], minlength=ann.n_items)
    topic_of = ann.topic[ann.item]
    out = []
    for t, name in enumerate(cov.topic_names):
        items = np.flatnonzero((ann.topic == t) & (per_item > 0))
        by = np.bincount(ann.annotator[f & (topic_of == t)], minlength=ann.n_annotators)
        top = int(by.argmax()) if by.sum() else None
        out.append({"topic": name, "items": int(items.size), "labelers": int((by > 0).sum()),
                    "top_labeler": None if top is None else str(ann.annotator_names[top]),
                    "top_share": float(by.max() / by.sum()) if by.sum() else None,
                    "single_labeler_items": int((per_item[items] == 1).sum())})
    return out


def _coverage(ann: Annotations, cov) -> dict:
    t = cov.test
    return {"topics": _topics(ann, cov),
            "independence": None if t is None else {
                "statistic": t.statistic, "dof": t.dof, "p_value": t.p_value, "method": t.method,
                "cramers_v": t.cramers_v, "sparse_share": t.sparse_share},
            "single_labeler_items": cov.single_labeler_items, "labelled_items": cov.labelled_items,
            "single_labeler_share": m(cov.single_labeler_share),
            "groups_k": {col: {str(k): m(v) for k, v in ks.items()} for col, ks in cov.groups_k.items()}}


def _group(ann: Annotations, rep, top: int = 10) -> dict:
    names = ann.group_names.get(rep.column, ())
    items = []
    for i in range(min(top, rep.top_items.size)):
        means = {str(names[g]) if g < len(names) else str(g): clean(v) for g, v in enumerate(rep.top_means[i])}
        items.append({"item": str(ann.item_names[rep.top_items[i]]), "spread": clean(rep.top_spread[i]),
                      "means": {k: v for k, v in means.items() if v is not None}})
    return {"column": rep.column, "score": rep.score, "in_group": m(rep.in_group),
            "cross_group": m(rep.cross_group), "difference": m(rep.difference),
            "gaps": [{"group": gg.group, "n_labelers": gg.n_labelers, "gap": m(gg.gap)} for gg in rep.gaps],
            "divisive_items": items}


def labeler_result(ann: Annotations, stats: dict, settings: LabelerAuditSettings, *,
                   annotators: Annotators | None, preferences_written: int = 0) -> dict:
    """labelers.json: every statistic with its interval and n, led by the findings."""
    audit, cons, cal = stats["labelers"], stats["consensus"], stats["calibration"]
    flagged = {r.code for r in audit.labelers if r.flags}
    v = ann.voting
    result = {
        "kind": "labelers", "scale": "ratings" if stats["ratings"] else "preferences", "n_annotations": ann.n,
        "n_items": ann.n_items,
        "n_labelers": int(np.unique(ann.annotator).size), "n_repeats": int((~ann.first).sum()),
        "verdicts": {name: int((ann.label[v] == code).sum()) for code, name in enumerate(ann.label_names)},
        "strength_levels": list(ann.strength_names),
        "settings": {"rounds": settings.rounds, "seed": settings.seed, "window": settings.window,
                     "topic_field": settings.topic_field, "skill_model": settings.skill_model,
                     "length_margin": settings.length_margin, "alpha": settings.alpha, "min_n": settings.min_n},
        "agreement": _agreement(ann, stats), "typical_agreement": audit.typical_agreement, "fdr": audit.fdr,
        "labelers": _labelers(audit),
        "drift": {"overall": _series(audit.drift_overall),
                  "labelers": {str(ann.annotator_names[c]): _series(d) for c, d in
                               sorted(audit.drift_by_labeler.items()) if c in flagged and d.points}},
        "coverage": _coverage(ann, stats["coverage"]),
        "groups": [_group(ann, g) for g in stats["groups"]],
        "calibration": None if cal is None else {
            "levels": [{"level": lv.level, "labels": lv.labels, "agreement": m(lv.agreement)} for lv in cal.levels],
            "difference": m(cal.difference)},
        "consensus": {"n_items": cons.n_items, "preferences_written": preferences_written,
                      "n_changed": cons.n_changed, "n_resolved": cons.n_resolved,
                      "weights_from": f"skill ({settings.skill_model})" if settings.skill_model else "agreement"},
        "annotators_file": None if annotators is None else {
            "path": annotators.path, "columns": annotators.columns,
            "unknown": annotators.unknown(str(x) for x in ann.annotator_names),
            "unlabeled": len(annotators.unlabeled(str(x) for x in ann.annotator_names))},
        "definitions": dict(DEFINITIONS)}
    from rlaif.labelers.findings import findings

    result["findings"] = findings(result)
    return result
