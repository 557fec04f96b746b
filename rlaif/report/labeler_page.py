"""labelers.md and labelers.html from labelers.json (`rlaif.labelers.result`) and the labels behind it.

Both lead with the findings; then agreement, the labelers (flagged first), drift plots of flagged labelers,
coverage by topic, groups, calibration, consensus, the most divisive items with their texts (escaped), and
definitions. Cells read `estimate [95% interval] k/n`; underpowered ones say so.
"""
from __future__ import annotations

from collections.abc import Mapping

from rlaif.records import Label
from rlaif.report.audit_page import fmt_estimate
from rlaif.report.html import Example, Section, examples, figure, grid, metrics, new_figure, render_page, table
from rlaif.report.markdown import md_table, md_text

TITLE = "Human labeler audit"
MAX_ROWS = 200  # labelers in the page's table (flagged first); labelers.json has all
MAX_PLOTS = 12
LEVEL_MARK = {"act": "ACT", "watch": "WATCH", "ok": "OK"}


def cell(e) -> str:
    s = fmt_estimate(e)
    return s + " (underpowered)" if isinstance(e, dict) and e.get("underpowered") and e.get("value") is not None \
        else s


def _labeler_rows(r: dict, limit: int | None = MAX_ROWS) -> list[dict]:
    """One row per labeler; columns that hold nothing for this data (no gold, no ratings) are left out."""
    rows = []
    for x in r["labelers"][:limit]:
        rows.append({"labeler": x["annotator"], "n": x["n"], "items": x["n_items"],
                     "agreement": cell(x["agreement"]), "gold accuracy": cell(x["gold_accuracy"]),
                     "skill": x["skill"], "tie rate": cell(x["tie_rate"]), "first rate": cell(x["first_rate"]),
                     "longer rate": cell(x["longer_rate"]), "consistency": cell(x["consistency"]),
                     "rating r": cell(x["rating_correlation"]), "rating offset": x["rating_offset"],
                     "median lead time s": x["median_lead_time"],
                     "flags": "; ".join(f["name"] for f in x["flags"]) or "-"})
    empty = [k for k in (rows[0] if rows else {}) if all(row[k] in (None, "\u2014", "\u2014 (n=0)") for row in rows)]
    return [{k: v for k, v in row.items() if k not in empty} for row in rows]


def _agreement_rows(r: dict) -> list[dict]:
    a = r["agreement"]
    keys = ("percent_agreement", "gwet_ac1", "fleiss_kappa", "krippendorff_nominal", "krippendorff_ordinal",
            "krippendorff_interval")
    return [{"statistic": k, "estimate [95% CI] n": cell(a[k])} for k in keys if a.get(k)]


def _topic_rows(r: dict) -> list[dict]:
    return [{"topic": t["topic"], "items": t["items"], "labelers": t["labelers"], "busiest labeler": t["top_labeler"],
             "their share of labels": t["top_share"], "items seen once": t["single_labeler_items"]}
            for t in r["coverage"]["topics"]]


def _group_rows(g: dict) -> list[dict]:
    return [{"group": x["group"], "labelers": x["n_labelers"], "gap to the rest": cell(x["gap"])} for x in g["gaps"]]


def _overlap_text(r: dict) -> str:
    o = r["agreement"]["overlap"]
    return (f"Overlap graph: {o['n_labelers']} labelers, {o['n_pairs']} of {o['n_possible_pairs']} possible pairs "
            f"share at least one item (density {o['density']:.3g}); {o['n_components']} connected group(s), the "
            f"largest with {o['largest_component']} labelers; {o['n_isolated']} share no item with anyone.")


def render_labelers_md(r: dict) -> str:
    """The audit as markdown: findings first, then the tables."""
    out = [f"# {TITLE}\n\n", f"{r['n_annotations']} annotations by {r['n_labelers']} labelers on {r['n_items']} "
           f"items ({r['n_repeats']} repeats); bootstrap rounds {r['settings']['rounds']}, seed "
           f"{r['settings']['seed']}.\n\n## Findings\n\n"]
    out += [f"- **{LEVEL_MARK[f['level']]}** {md_text(f['text'])}\n" for f in r["findings"]]
    out += ["\n## Agreement\n\n", md_table(_agreement_rows(r)), "\n", md_text(_overlap_text(r)), "\n\n",
            f"## Labelers\n\n{md_text(r['fdr'])}.\n\n", md_table(_labeler_rows(r)), "\n"]
    if len(r["labelers"]) > MAX_ROWS:
        out.append(f"\n{len(r['labelers']) - MAX_ROWS} more labelers in labelers.json.\n")
    if r["coverage"]["topics"]:
        out += ["\n## Coverage by topic\n\n", md_table(_topic_rows(r)), "\n"]
    for g in r["groups"]:
        out += [f"\n## Groups by {md_text(g['column'])}\n\n", f"In-group agreement {cell(g['in_group'])}, "
                f"cross-group {cell(g['cross_group'])}, difference {cell(g['difference'])}.\n\n",
                md_table(_group_rows(g)), "\n"]
    if r["calibration"]:
        rows = [{"level": lv["level"], "verdicts": lv["labels"], "others agree": cell(lv["agreement"])}
                for lv in r["calibration"]["levels"]]
        out += ["\n## Calibration of stated confidence\n\n", md_table(rows), "\n"]
    out += ["\n## Definitions\n\n", md_table([{"key": k, "definition": v} for k, v in r["definitions"].items()])]
    return "".join(out)


def _drift_plot(name: str, s: dict):
    from matplotlib.ticker import MaxNLocator

    fig, ax = new_figure(4.8, 2.8)
    pts = s["points"]
    w = [p["window"] for p in pts]
    for key, style in (("agreement", "o-"), ("tie_rate", "s--"), ("left_rate", "^:")):
        ax.plot(w, [p[key] if p[key] is not None else float("nan") for p in pts], style, ms=3, label=key)
    lo = [p["agreement_ci"][0] if p["agreement_ci"] else float("nan") for p in pts]
    hi = [p["agreement_ci"][1] if p["agreement_ci"] else float("nan") for p in pts]
    ax.fill_between(w, lo, hi, alpha=0.15)
    if s["fires_at"] is not None:
        ax.axvline(s["fires_at"], color="#cf222e", lw=1, ls="--")
    ax.set_ylim(0, 1)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("window")
    ax.legend(fontsize=7)
    cap = f"{name}: " + (f"{s['metric']} changed at window {s['fires_at']} (p = {s['p_value']:.2g})"
                         if s["drifted"] else "no change detected")
    return figure(fig, caption=cap, alt=f"drift of {name}")


def example_items(r: dict) -> set[str]:
    """The items the page shows with their texts and every label: the groups' most divisive ones."""
    return {d["item"] for g in r["groups"] for d in g["divisive_items"]}


def _divisive_examples(r: dict, texts: Mapping[str, Label], verdicts: Mapping[str, list], limit: int) -> list:
    blocks = []
    for g in r["groups"]:
        shown = []
        for d in g["divisive_items"]:
            first = texts.get(d["item"])
            notes = {f"{g['column']} {k}": v for k, v in d["means"].items()}
            notes["labels"] = ", ".join(f"{who}: {v}" for who, v in verdicts.get(d["item"], [])[:20])
            shown.append(Example(f"item {d['item']} (spread {d['spread']:.2f})", side_by_side=("response a",
                                 "response b"), notes=notes,
                                 fields={"prompt": first.prompt if first else None,
                                         "response a": first.response_a if first else None,
                                         "response b": first.response_b if first else None}))
        if shown:
            blocks.append(examples(shown, heading=f"Items the {g['column']} groups disagree on most", limit=limit))
    return blocks


def render_labelers_html(r: dict, texts: Mapping[str, Label], verdicts: Mapping[str, list], *, limit: int = 20
                         ) -> str:
    """The self-contained page; every text (findings, labeler ids, prompts, responses) escaped. `texts`: item ->
    a label with its prompt and responses; `verdicts`: item -> (labeler, winner) pairs, for `example_items`."""
    level = {"act": "to act on", "watch": "to watch", "ok": "fine"}
    sections = [Section("Findings", [
        metrics({"annotations": r["n_annotations"], "labelers": r["n_labelers"], "items": r["n_items"],
                 "flagged": sum(1 for x in r["labelers"] if x["flags"]),
                 f"alpha ({r['agreement']['primary'].split('_')[1]})":
                     (r["agreement"][r["agreement"]["primary"]] or {}).get("value")}),
        table([{"": level[f["level"]], "finding": f["text"]} for f in r["findings"]])])]
    sections.append(Section("Agreement", [table(_agreement_rows(r)), _overlap_text(r),
                                          table(r["agreement"]["pairs"][:20], caption="labeler pairs sharing the "
                                                "most items (all pairs that share items: labelers.json)")]))
    sections.append(Section("Labelers", [r["fdr"] + ".", table(_labeler_rows(r))],
                            intro="Flagged labelers first; each flag's evidence is in the findings and JSON."))
    plots = [_drift_plot(name, s) for name, s in list(r["drift"]["labelers"].items())[:MAX_PLOTS]]
    if r["drift"]["overall"] and r["drift"]["overall"]["points"]:
        plots.insert(0, _drift_plot("all labelers", r["drift"]["overall"]))
    sections.append(Section("Drift over time", [grid(plots, min_width=360)] if plots else ["No time windows."],
                            intro=f"Windows of {r['settings']['window']} annotations (or calendar periods); "
                                  "flagged labelers only."))
    if r["coverage"]["topics"]:
        sections.append(Section("Coverage by topic", [table(_topic_rows(r))]))
    for g in r["groups"]:
        sections.append(Section(f"Groups by {g['column']}", [
            f"In-group agreement {cell(g['in_group'])}, cross-group {cell(g['cross_group'])}, "
            f"difference {cell(g['difference'])}. Score: {g['score']}.", table(_group_rows(g))]))
    if r["calibration"]:
        sections.append(Section("Calibration of stated confidence", [table(
            [{"level": lv["level"], "verdicts": lv["labels"], "others agree": cell(lv["agreement"])}
             for lv in r["calibration"]["levels"]])]))
    ex = _divisive_examples(r, texts, verdicts, limit)
    if ex:
        sections.append(Section("The items behind the numbers", ex,
                                intro="Prompt, both responses and every label, escaped."))
    sections.append(Section("Definitions", [table([{"key": k, "definition": v}
                                                   for k, v in r["definitions"].items()])]))
    return render_page(TITLE, sections, meta={"annotations": r["n_annotations"], "labelers": r["n_labelers"],
                                              "bootstrap rounds": r["settings"]["rounds"],
                                              "seed": r["settings"]["seed"]})
