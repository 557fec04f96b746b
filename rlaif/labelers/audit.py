"""`rlaif audit LABELS --annotators FILE`: the audit of human labelers (issue 20), as one command function.

Labels (from `rlaif convert -f csv|label-studio|argilla|prodigy`) become an `Annotations` table; every
analysis of `rlaif.stats` runs on one shared bootstrap over items; `labeler_findings` turns the results into
the few sentences a labeling lead acts on; `run_labeler_audit` writes labelers.json, labelers.md,
labelers.html and consensus.jsonl (TRL-format preferences weighted by the measured reliabilities).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rlaif.annotations.annotators import Annotators
from rlaif.errors import ConfigError, InputError
from rlaif.labelers.settings import STRENGTH_ORDER, TOPIC_FIELDS, LabelerAuditSettings
from rlaif.records import Label, Preference
from rlaif.stats.annotations import A, Annotations, B
from rlaif.stats.bootstrap import ItemBootstrap


def is_human_annotation(labels: Sequence[Label]) -> bool:
    """Labels imported from an annotation tool carry when they were made (or how long it took): those are
    audited as human labelers rather than as judges."""
    return any(lb.created_at is not None or lb.lead_time_s is not None or lb.rating is not None for lb in labels)


def is_rating_data(labels: Sequence[Label]) -> bool:
    """Ratings of single responses (and no pairwise verdict): agreement is on the rating scale."""
    return any(lb.rating is not None for lb in labels) and not any(lb.winner is not None for lb in labels)


def _strength_levels(values: set[str]) -> tuple[str, ...]:
    """Stated levels from weakest to strongest: numbers in order, known words in `STRENGTH_ORDER`."""
    try:
        return tuple(sorted(values, key=float))
    except ValueError:
        known = {w: i for i, w in enumerate(STRENGTH_ORDER)}
        return tuple(sorted(values, key=lambda v: (known.get(v.lower(), len(known)), v)))


def _level(v) -> str | None:
    if v is None:
        return None
    return f"{v:g}" if isinstance(v, float) else str(v)


def _longer(lb: Label, margin: int) -> str:
    if lb.response_a is None or lb.response_b is None:
        return ""
    d = len(lb.response_a) - len(lb.response_b)
    return "a" if d > margin else "b" if d < -margin else ""


def annotations_of(labels: Sequence[Label], settings: LabelerAuditSettings, *, annotators: Annotators | None = None,
                   gold: dict[str, str] | None = None) -> Annotations:
    """The `Annotations` table of `labels`: a/b/tie verdicts in each item's canonical orientation, times,
    orders, stated strength (else confidence), lead times, topics, the longer side, gold, and groups."""
    import pandas as pd

    ratings = is_rating_data(labels)
    use_strength = any(lb.strength is not None for lb in labels)
    stated = [_level(lb.strength if use_strength else lb.confidence) for lb in labels]
    frame = pd.DataFrame({
        "item": [lb.item for lb in labels], "annotator": [lb.rater for lb in labels],
        "label": [lb.winner or "" for lb in labels],
        "rating": [np.nan if lb.rating is None else lb.rating for lb in labels],
        "time": pd.to_datetime([lb.created_at for lb in labels], utc=True, format="ISO8601"),
        "order": [lb.order for lb in labels], "strength": stated,
        "lead_time": [np.nan if lb.lead_time_s is None else lb.lead_time_s for lb in labels],
        "topic": [_level(getattr(lb, settings.topic_field)) for lb in labels],
        "longer": [_longer(lb, settings.length_margin) for lb in labels]})
    frame["time"] = (frame["time"] - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)
    if gold is not None:
        frame["gold"] = frame["item"].map(gold).fillna("")
    levels = _strength_levels({s for s in stated if s is not None})
    table = None
    if annotators is not None:
        table = pd.DataFrame([{"annotator": who, **attrs} for who, attrs in annotators.attributes.items()],
                             columns=["annotator", *annotators.columns]).replace("", None)
    if not ratings:
        return Annotations.from_frame(frame.drop(columns="rating"), table, strength_names=levels or None)
    from rlaif.stats.crowd_agreement import ratings_as_labels

    ann = Annotations.from_frame(frame.drop(columns="label"), table, label_names=(), strength_names=levels or None)
    try:
        return ratings_as_labels(ann)
    except ValueError as e:  # interval alpha needs equally spaced values
        raise ConfigError(f"{e}. Fix: rate on an evenly spaced scale (e.g. 1-5), or map the values onto one") from None


def gold_verdicts(labels: Sequence[Label], gold: str | None, gold_labels: Sequence[Label]
                  ) -> tuple[list[Label], dict[str, str] | None]:
    """(the labels to audit, item -> gold winner): gold from a file, or the rater named `gold` (whose labels
    then leave the audited set)."""
    if gold_labels:
        return list(labels), {g.item: g.winner for g in gold_labels}
    if gold is None:
        return list(labels), None
    mine = [lb for lb in labels if lb.rater == gold and lb.winner is not None]
    if not mine:
        raters = sorted({lb.rater for lb in labels})
        raise ConfigError(f"--gold {gold!r} is neither a file nor a rater of the labels. Fix: name a gold label "
                          f"file or one of the raters: {', '.join(raters[:10])}" + (" ..." if len(raters) > 10 else ""))
    return [lb for lb in labels if lb.rater != gold], {lb.item: lb.winner for lb in mine}


def labeler_statistics(ann: Annotations, settings: LabelerAuditSettings) -> dict:
    """Every analysis of issue 20 section 2 on one shared `ItemBootstrap`, as typed results by name."""
    from rlaif.stats.confidence import confidence_calibration
    from rlaif.stats.consensus import weighted_consensus
    from rlaif.stats.coverage import coverage
    from rlaif.stats.crowd_agreement import agreement_summary, overlap_graph, strength_scale_labels
    from rlaif.stats.groups import group_report
    from rlaif.stats.labelers import audit_labelers

    boot = ItemBootstrap(ann.n_items, settings.rounds, settings.seed)
    labelers = audit_labelers(ann, boot, skill_model=settings.skill_model, window=settings.window,
                              alpha=settings.alpha, min_n=settings.min_n, drift_series="all")
    reliability = np.full(ann.n_annotators, np.nan)
    for r in labelers.labelers:
        value = r.skill if r.skill is not None else r.agreement.value
        reliability[r.code] = np.nan if value is None else value
    # a labeler who shares no item with anyone is unmeasured: count them as a typical labeler, not as noise
    measured = np.isfinite(reliability)
    if measured.any():
        reliability[~measured] = np.median(reliability[measured])
    ratings = ann.label_names[:3] != ("a", "b", "tie")
    agreement = agreement_summary(ann, boot, ordered=ratings)
    ordinal = agreement.krippendorff_ordinal
    if not ratings and ann.strength_names and (ann.strength >= 0).any():
        ordinal = agreement_summary(strength_scale_labels(ann), boot, ordered=True).krippendorff_ordinal
    return {
        "agreement": agreement, "ordinal_alpha": ordinal, "overlap": overlap_graph(ann), "ratings": ratings,
        "labelers": labelers, "coverage": coverage(ann, boot, rounds=settings.rounds, seed=settings.seed),
        "groups": [group_report(ann, col, boot) for col in ann.groups],
        "calibration": confidence_calibration(ann, boot) if (ann.strength >= 0).any() else None,
        "consensus": weighted_consensus(ann, reliability)}


def consensus_preferences(labels: Sequence[Label], ann: Annotations, consensus) -> list[Preference]:
    """TRL-format preferences of the items whose weighted consensus is a or b, with its `p_chosen`."""
    by_item: dict[str, Label] = {}
    for lb in labels:
        if lb.prompt is not None and lb.response_a is not None and lb.response_b is not None:
            by_item.setdefault(lb.item, lb)
    raters: dict[str, set[str]] = {}
    for lb in labels:
        raters.setdefault(lb.item, set()).add(lb.rater)
    out = []
    for code, name in enumerate(ann.item_names):
        lb, label = by_item.get(str(name)), int(consensus.label[code])
        if lb is None or label not in (A, B):
            continue
        a_won = label == A
        out.append(Preference(
            prompt=lb.prompt, chosen=lb.response_a if a_won else lb.response_b,
            rejected=lb.response_b if a_won else lb.response_a, p_chosen=float(consensus.p_chosen[code]),
            prompt_id=lb.item, chosen_policy=lb.model_a if a_won else lb.model_b,
            rejected_policy=lb.model_b if a_won else lb.model_a, judges=sorted(raters[lb.item]),
            agreement=float(consensus.probabilities[code, label])))
    return out


@dataclass(frozen=True)
class LabelerAuditRun:
    """What `run_labeler_audit` wrote: labelers.json's content and the folder holding labelers.json, .md,
    .html and consensus.jsonl."""

    result: dict
    out: Path

    @property
    def summary(self) -> str:
        r = self.result
        flagged = sum(1 for x in r["labelers"] if x["flags"])
        return (f"audited {r['n_labelers']} labelers on {r['n_items']} items ({r['n_annotations']} annotations); "
                f"{flagged} flagged -> {self.out}/labelers.json, labelers.md, labelers.html, consensus.jsonl")


def run_labeler_audit(labels: Sequence[Label], out: str | Path, *, annotators: Annotators | None = None,
                      gold: str | None = None, gold_labels: Sequence[Label] = (),
                      settings: LabelerAuditSettings = LabelerAuditSettings(), source: str = "") -> LabelerAuditRun:
    """`rlaif audit` for human labelers: the statistics, the findings, and the four files in OUT."""
    from rlaif.labelers.result import labeler_result
    from rlaif.records import write_json, write_jsonl, write_text
    from rlaif.report.labeler_page import render_labelers_html, render_labelers_md

    out = Path(out)
    labels, gold_map = gold_verdicts(labels, gold, gold_labels)
    check_topic_field(labels, settings, source)
    if not labels:
        raise InputError(source or "labels", None, "no labels left to audit", "pass the annotators' labels")
    ann = annotations_of(labels, settings, annotators=annotators, gold=gold_map)
    stats = labeler_statistics(ann, settings)
    prefs = consensus_preferences(labels, ann, stats["consensus"])
    result = labeler_result(ann, stats, settings, annotators=annotators, preferences_written=len(prefs))
    out.mkdir(parents=True, exist_ok=True)
    write_jsonl(out / "consensus.jsonl", prefs)
    write_text(out / "labelers.md", render_labelers_md(result))
    write_text(out / "labelers.html", render_labelers_html(result, labels))
    write_json(out / "labelers.json", result)
    return LabelerAuditRun(result, out)


def check_topic_field(labels: Sequence[Label], settings: LabelerAuditSettings, source: str) -> None:
    """A --topic-field that no label fills would silently skip the coverage test: refuse it instead."""
    if settings.topic_field != "topic" and not any(getattr(lb, settings.topic_field) is not None for lb in labels):
        raise InputError(source, None, f"no label sets {settings.topic_field!r}",
                         f"pick a field the labels fill ({', '.join(TOPIC_FIELDS)}) or leave --topic-field out")
