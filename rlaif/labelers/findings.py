"""The findings that lead the labeler audit: the sentences a labeling lead acts on, read from labelers.json.

Each finding is tagged `act` (do something), `watch` (look before you trust it) or `ok`:
- who to retrain or drop: flagged labelers, worst first, with each flag's evidence;
- whether the labels are fit to train on, by Krippendorff's rule of thumb on nominal alpha (>= 0.800
  reliable, >= 0.667 tentative conclusions only, below that not as hard labels);
- which topics need other labelers: a topic with fewer than 3 labelers, or one where a single labeler gave
  more than half of the labels; whether labelers choose topics independently; items seen by one labeler;
- groups (annotator-file columns) whose labelers agree more within than across groups, or whose
  preference differs from the rest (intervals that exclude 0, not underpowered);
- whether stated confidence means something (the calibration difference and its interval);
- drift of the whole crowd; how many items the reliability-weighted consensus changes; unknown annotators.
A statistic marked underpowered never makes an `ok` or `act` finding on its own: it says so instead.
"""
from __future__ import annotations

ALPHA_RELIABLE, ALPHA_TENTATIVE = 0.800, 0.667  # Krippendorff (2004), Content Analysis, section 12.7
TOP_SHARE = 0.5
MIN_TOPIC_LABELERS = 3
LISTED = 10  # names listed in one finding; the JSON has all


def _ci(e: dict | None, digits: int = 2) -> str:
    if not e or e.get("value") is None:
        return "n/a"
    s = f"{e['value']:.{digits}f}"
    if e.get("ci_low") is not None:
        s += f" [{e['ci_low']:.{digits}f}, {e['ci_high']:.{digits}f}]"
    return s


def _excludes_zero(e: dict | None) -> bool:
    return bool(e and e.get("ci_low") is not None and not e.get("underpowered") and
                (e["ci_low"] > 0 or e["ci_high"] < 0))


def _names(names: list[str]) -> str:
    more = len(names) - LISTED
    return ", ".join(names[:LISTED]) + (f" and {more} more" if more > 0 else "")


def _labelers(r: dict) -> list[dict]:
    out = []
    by_flag: dict[str, list[dict]] = {}
    for row in r["labelers"]:
        for f in row["flags"]:
            by_flag.setdefault(f["name"], []).append({"annotator": row["annotator"], **f})
    action = {"likely spammer": "drop or re-qualify", "disagrees with everyone": "review and retrain",
              "position-biased": "retrain (randomize and remind of the display order)",
              "drifted": "check the drift plot and retrain"}
    for name, rows in sorted(by_flag.items(), key=lambda kv: -len(kv[1])):
        rows.sort(key=lambda x: x["q_value"] if x["q_value"] is not None else 1.0)
        out.append({"level": "act", "topic": "labelers",
                    "text": f"{len(rows)} labeler(s) {name} ({action.get(name, 'review')}): "
                            f"{_names([x['annotator'] for x in rows])}. E.g. {rows[0]['annotator']}: "
                            f"{rows[0]['evidence']}.",
                    "who": [x["annotator"] for x in rows]})
    if not by_flag:
        out.append({"level": "ok", "topic": "labelers", "text": f"No labeler flagged ({r['fdr']})."})
    return out


def _fit(r: dict) -> dict:
    a = r["agreement"]
    alpha = a[a["primary"]]
    level = a["primary"].split("_")[1]
    detail = (f"Krippendorff's alpha ({level}) {_ci(alpha)}, Gwet's AC1 {_ci(a['gwet_ac1'])}, Fleiss' kappa "
              f"{_ci(a['fleiss_kappa'])} on {a['n_items']} items with two or more labelers")
    if not alpha or alpha.get("value") is None:
        return {"level": "watch", "topic": "agreement",
                "text": "Agreement cannot be measured: no item has two labelers. Have some items labelled twice."}
    v = alpha["value"]
    if alpha.get("underpowered"):
        return {"level": "watch", "topic": "agreement", "text": f"Agreement is underpowered: {detail}."}
    if v >= ALPHA_RELIABLE:
        return {"level": "ok", "topic": "agreement", "text": f"Labels are reliable enough to train on: {detail}."}
    if v >= ALPHA_TENTATIVE:
        return {"level": "watch", "topic": "agreement",
                "text": f"Labels support tentative conclusions only (alpha between {ALPHA_TENTATIVE} and "
                        f"{ALPHA_RELIABLE}): {detail}. Train on the consensus's soft p_chosen."}
    return {"level": "act", "topic": "agreement",
            "text": f"Labels are not fit to train on as hard labels (alpha below {ALPHA_TENTATIVE}): {detail}. "
                    "Relabel, tighten the guidelines, or train only on consensus.jsonl's soft labels."}


def _coverage(r: dict) -> list[dict]:
    c = r["coverage"]
    out = []
    thin = [t for t in c["topics"] if t["items"] and (t["labelers"] < MIN_TOPIC_LABELERS or
                                                     (t["top_share"] or 0) > TOP_SHARE)]
    if thin:
        out.append({"level": "act", "topic": "coverage",
                    "text": f"{len(thin)} topic(s) need other labelers (fewer than {MIN_TOPIC_LABELERS} labelers, "
                            f"or one labeler gave over {TOP_SHARE:.0%} of the labels): "
                            + _names([f"{t['topic']} ({t['labelers']} labelers, top {t['top_labeler']} "
                                      f"{t['top_share']:.0%})" for t in thin]) + ".",
                    "who": [t["topic"] for t in thin]})
    t = c["independence"]
    if t and t["p_value"] is not None and t["p_value"] < r["settings"]["alpha"]:
        out.append({"level": "watch", "topic": "coverage",
                    "text": f"Labelers do not choose topics independently ({t['method']} p = {t['p_value']:.2g}, "
                            f"Cramér's V {t['cramers_v']:.2f}): selection bias; assign items at random."})
    single = c["single_labeler_share"]
    if single and single.get("value"):
        out.append({"level": "act" if single["value"] > 0.2 else "watch", "topic": "coverage",
                    "text": f"{c['single_labeler_items']} of {c['labelled_items']} items ({single['value']:.0%}) "
                            "were seen by one labeler only: their labels cannot be checked against anyone."})
    for col, ks in c["groups_k"].items():
        two = ks.get("2")
        if two and two.get("value") is not None:
            out.append({"level": "watch" if two["value"] < 0.5 else "ok", "topic": "coverage",
                        "text": f"{two['value']:.0%} of items were seen by labelers of two or more {col} groups."})
    return out


def _groups(r: dict) -> list[dict]:
    out = []
    for g in r["groups"]:
        if _excludes_zero(g["difference"]):
            out.append({"level": "watch", "topic": "groups",
                        "text": f"By {g['column']}: labelers agree {_ci(g['in_group'])} within a group vs "
                                f"{_ci(g['cross_group'])} across (difference {_ci(g['difference'])})."})
        gaps = [x for x in g["gaps"] if _excludes_zero(x["gap"])]
        if gaps:
            out.append({"level": "act", "topic": "groups",
                        "text": f"By {g['column']}, groups score items differently from the rest ({g['score']}): "
                                + "; ".join(f"{x['group']} {_ci(x['gap'])}" for x in gaps[:LISTED])
                                + ". Balance the labeler pool across these groups.",
                        "who": [x["group"] for x in gaps]})
        elif g["gaps"]:
            out.append({"level": "ok", "topic": "groups",
                        "text": f"By {g['column']}: no group's scores differ from the rest beyond chance."})
    return out


def _rest(r: dict) -> list[dict]:
    out = []
    cal = r["calibration"]
    if cal and cal["difference"]:
        d = cal["difference"]
        lv = cal["levels"]
        good = _excludes_zero(d) and d["value"] > 0
        out.append({"level": "ok" if good else "watch", "topic": "calibration",
                    "text": f"Stated confidence {'means' if good else 'does not clearly mean'} something: others "
                            f"agree with '{lv[-1]['level']}' verdicts {_ci(lv[-1]['agreement'])} vs "
                            f"'{lv[0]['level']}' {_ci(lv[0]['agreement'])} (difference {_ci(d)})."})
    overall = r["drift"]["overall"]
    if overall and overall["drifted"]:
        out.append({"level": "watch", "topic": "drift",
                    "text": f"The crowd as a whole drifted: {overall['metric']} changed by window "
                            f"{overall['fires_at']} (p = {overall['p_value']:.2g})."})
    c = r["consensus"]
    out.append({"level": "ok", "topic": "consensus",
                "text": f"The reliability-weighted consensus (weights from {c['weights_from']}) changes "
                        f"{c['n_changed']} of {c['n_items']} items against plain majority and decides "
                        f"{c['n_resolved']} majority ties; consensus.jsonl holds {c.get('preferences_written', 0)} "
                        "TRL-format preferences with p_chosen."})
    af = r["annotators_file"]
    if af and af["unknown"]:
        out.append({"level": "act", "topic": "annotators",
                    "text": f"{len(af['unknown'])} labeler(s) are missing from {af['path']}: "
                            f"{_names(af['unknown'])}; their groups are unknown.", "who": af["unknown"]})
    return out


def findings(r: dict) -> list[dict]:
    """Every finding of labelers.json `r`, the ones to act on first."""
    found = [*_labelers(r), _fit(r), *_coverage(r), *_groups(r), *_rest(r)]
    rank = {"act": 0, "watch": 1, "ok": 2}
    return sorted(found, key=lambda f: rank[f["level"]])
