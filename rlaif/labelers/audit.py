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
from rlaif.labelers.table import LabelTable
from rlaif.records import Label, Preference
from rlaif.stats.annotations import A, Annotations, B
from rlaif.stats.bootstrap import ItemBootstrap


def _strength_levels(values: set[str]) -> tuple[str, ...]:
    """Stated levels from weakest to strongest: numbers in order, known words in `STRENGTH_ORDER`."""
    try:
        return tuple(sorted(values, key=float))
    except ValueError:
        known = {w: i for i, w in enumerate(STRENGTH_ORDER)}
        return tuple(sorted(values, key=lambda v: (known.get(v.lower(), len(known)), v)))


def audit_frame(table: LabelTable, gold: str | None, gold_labels: Sequence[Label]):
    """(the rows to audit as a DataFrame, item -> gold winner or None): gold from a file, or the rater named
    `gold`, whose labels then leave the audited rows."""
    frame = table.frame()
    if gold_labels:
        return frame, {g.item: g.winner for g in gold_labels}
    if gold is None:
        return frame, None
    mine = frame[(frame["rater"] == gold) & frame["winner"].notna()]
    if mine.empty:
        raters = sorted(frame["rater"].unique())
        raise ConfigError(f"--gold {gold!r} is neither a file nor a rater of the labels. Fix: name a gold label "
                          f"file or one of the raters: {', '.join(raters[:10])}" + (" ..." if len(raters) > 10 else ""))
    return frame[frame["rater"] != gold], dict(zip(mine["item"], mine["winner"], strict=True))


def annotations_of(frame, *, annotators: Annotators | None = None, gold: dict[str, str] | None = None) -> Annotations:
    """The `Annotations` of a `LabelTable` frame: a/b/tie verdicts (or ratings, when no label has a verdict) in
    each item's canonical orientation, times, orders, stated strength (else confidence) in order, lead times,
    topics, the longer side, gold, and the annotator file's groups."""
    import pandas as pd

    ratings = frame["rating"].notna().any() and not frame["winner"].notna().any()
    stated = frame["strength"] if frame["strength"].notna().any() else frame["confidence"]
    data = pd.DataFrame({
        "item": frame["item"], "annotator": frame["rater"], "label": frame["winner"].fillna(""),
        "rating": pd.to_numeric(frame["rating"]), "order": frame["order"], "strength": stated,
        "lead_time": pd.to_numeric(frame["lead_time_s"]), "topic": frame["topic"], "longer": frame["longer"],
        "time": (pd.to_datetime(frame["created_at"], utc=True, format="ISO8601") - pd.Timestamp(0, tz="UTC"))
        / pd.Timedelta(seconds=1)})
    if gold is not None:
        data["gold"] = data["item"].map(gold).fillna("")
    levels = _strength_levels(set(stated.dropna().unique()))
    people = None
    if annotators is not None:
        people = pd.DataFrame([{"annotator": who, **attrs} for who, attrs in annotators.attributes.items()],
                              columns=["annotator", *annotators.columns]).replace("", None)
    if not ratings:
        return Annotations.from_frame(data.drop(columns="rating"), people, strength_names=levels or None)
    from rlaif.stats.crowd_agreement import ratings_as_labels

    ann = Annotations.from_frame(data.drop(columns="label"), people, label_names=(), strength_names=levels or None)
    try:
        return ratings_as_labels(ann)
    except ValueError as e:  # interval alpha needs equally spaced values
        raise ConfigError(f"{e}. Fix: rate on an evenly spaced scale (e.g. 1-5), or map the values onto one") from None


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


def consensus_preferences(table: LabelTable, ann: Annotations, consensus) -> list[Preference]:
    """TRL-format preferences of the items whose weighted consensus is a or b, with its `p_chosen`; `judges`
    lists the labelers of the item."""
    decided = np.flatnonzero(np.isin(consensus.label, (A, B)))
    m = ann.voting & np.isin(ann.item, decided)
    order = np.lexsort((ann.annotator[m], ann.item[m]))
    items, who = ann.item[m][order], ann.annotator[m][order]
    cuts = np.flatnonzero(np.diff(items)) + 1
    raters = {int(g[0]): sorted({str(ann.annotator_names[w]) for w in ws})
              for g, ws in zip(np.split(items, cuts), np.split(who, cuts), strict=True) if g.size}
    out = []
    for code in decided:
        lb = table.texts.get(str(ann.item_names[code]))
        if lb is None or lb.response_a is None or lb.response_b is None or lb.prompt is None:
            continue
        a_won = int(consensus.label[code]) == A
        out.append(Preference(
            prompt=lb.prompt, chosen=lb.response_a if a_won else lb.response_b,
            rejected=lb.response_b if a_won else lb.response_a, p_chosen=float(consensus.p_chosen[code]),
            prompt_id=lb.item, chosen_policy=lb.model_a if a_won else lb.model_b,
            rejected_policy=lb.model_b if a_won else lb.model_a, judges=raters.get(int(code)),
            agreement=float(consensus.probabilities[code, consensus.label[code]])))
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


def run_labeler_audit(table: LabelTable, out: str | Path, *, annotators: Annotators | None = None,
                      gold: str | None = None, gold_labels: Sequence[Label] = (),
                      settings: LabelerAuditSettings = LabelerAuditSettings()) -> LabelerAuditRun:
    """`rlaif audit` for human labelers: the statistics, the findings, and the four files in OUT. `table` was
    read with the same settings' topic field and length margin (`LabelTable.read`)."""
    from rlaif.labelers.result import labeler_result
    from rlaif.records import write_json, write_jsonl, write_text
    from rlaif.report.labeler_page import example_items, render_labelers_html, render_labelers_md

    out = Path(out)
    check_topic_field(table, settings)
    frame, gold_map = audit_frame(table, gold, gold_labels)
    if frame.empty:
        raise InputError(table.source or "labels", None, "no labels left to audit", "pass the annotators' labels")
    ann = annotations_of(frame, annotators=annotators, gold=gold_map)
    del frame
    stats = labeler_statistics(ann, settings)
    prefs = consensus_preferences(table, ann, stats["consensus"])
    result = labeler_result(ann, stats, settings, annotators=annotators, preferences_written=len(prefs))
    out.mkdir(parents=True, exist_ok=True)
    write_jsonl(out / "consensus.jsonl", prefs)
    write_text(out / "labelers.md", render_labelers_md(result))
    write_text(out / "labelers.html", render_labelers_html(result, table.texts,
                                                           table.labels_of(example_items(result))))
    write_json(out / "labelers.json", result)
    return LabelerAuditRun(result, out)


def check_topic_field(table: LabelTable, settings: LabelerAuditSettings) -> None:
    """A --topic-field that no label fills would silently skip the coverage test: refuse it instead."""
    if settings.topic_field != "topic" and not any(t is not None for t in table.columns["topic"]):
        raise InputError(table.source or "labels", None, f"no label sets {settings.topic_field!r}",
                         f"pick a field the labels fill ({', '.join(TOPIC_FIELDS)}) or leave --topic-field out")
