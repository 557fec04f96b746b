"""audit.md and audit.html from the dict of `rlaif.audit.audit_labels` and the labels behind it.

The HTML shows the verdicts behind the numbers: the pairs each rater flipped between
orders, its disagreements with gold, and the items where raters disagree, with the
prompt and both responses (escaped) side by side.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from markupsafe import Markup

from rlaif.records import Label
from rlaif.report.html import Example, Section, examples, grid, interval_plot, metrics, render_page, table
from rlaif.report.markdown import md_table, md_text

DEFINITIONS = [
    ("verdict", "a rater's verdict on a pair combines its valid labels: the same winner in all gives that "
                "winner, otherwise a tie (MT-Bench's rule for the two orders)"),
    ("position_consistency", "among pairs judged validly in both orders, the share with the same winner "
                             "(LLMBar's positional agreement); n_shown_both_orders also counts invalid verdicts"),
    ("first_position_rate", "among decisive verdicts with a known order, the share won by the response shown "
                            "first (0.5 = no position bias)"),
    ("preference_fairness", "over pairs judged in both orders: (pairs favouring the second-shown position minus "
                            "pairs favouring the first) / pairs; negative = first-position bias (Shi et al. 2024)"),
    ("longer_preferred_rate", "among decisive verdicts on pairs whose lengths differ by more than the margin, "
                              "the share won by the longer response"),
    ("self_preference", "the rater's score for its own model's outputs (ties = 1/2) minus the other raters' "
                        "score for them on the same pairs"),
    ("accuracy", "share of valid labels that match the gold verdict; accuracy_by_order splits by the order "
                 "shown (n_with_invalid counts unparsed verdicts as wrong, as LLMBar does)"),
    ("accuracy_both_orders", "share of pairs judged validly in both orders that are right in both"),
    ("gold_agreement", "MT-Bench's: each pair (rater verdict, gold vote) on an item counts once; _no_ties drops "
                       "pairs with a tie on either side"),
    ("ece", "expected calibration error of p_a against decisive gold verdicts, 10 equal-width bins"),
    ("agreement", "percent agreement counts every pair of two raters' verdicts on an item once; Cohen's kappa per "
                  "pair of raters; Fleiss' kappa and Krippendorff's alpha (nominal; ordinal with b < tie < a; "
                  "interval on p_a) over all raters"),
    ("intervals", "95% percentile bootstrap over items (pairs), seeded; k/n are numerator and denominator"),
]

RATER_COLUMNS = [
    ("n", "labels"), ("invalid_rate", "invalid"), ("tie_rate", "ties"),
    ("position_consistency", "position consistency"), ("first_position_rate", "first-position wins"),
    ("preference_fairness", "preference fairness"), ("longer_preferred_rate", "longer preferred"),
    ("self_preference", "self-preference"), ("agreement_with_consensus", "agrees with consensus"),
    ("dawid_skene_reliability", "Dawid–Skene reliability"),
]
GOLD_COLUMNS = [("accuracy", "accuracy"), ("accuracy_by_order.ab", "accuracy (a first)"),
                ("accuracy_by_order.ba", "accuracy (b first)"), ("accuracy_both_orders", "right in both orders"),
                ("gold_agreement", "gold agreement"), ("gold_agreement_no_ties", "gold agreement, no ties"),
                ("ece", "ECE of p_a")]


def _get(d: dict | None, path: str):
    for part in path.split("."):
        if not isinstance(d, dict):
            return None
        d = d.get(part)
    return d


def fmt_estimate(e, digits: int = 3) -> str:
    """'0.714 [0.639, 0.784] 95/133' for an estimate dict; numbers and None pass through."""
    if e is None:
        return "\u2014"
    if not isinstance(e, dict):
        return f"{e:.{digits}f}" if isinstance(e, float) else str(e)
    v = e.get("value")
    if v is None:
        return f"\u2014 (n={e.get('n', 0)})"
    s = f"{v:.{digits}f}"
    if e.get("ci_low") is not None:
        s += f" [{e['ci_low']:.{digits}f}, {e['ci_high']:.{digits}f}]"
    s += f" {e['k']}/{e['n']}" if e.get("k") is not None else f" n={e.get('n')}"
    return s


def _rater_rows(result: dict, columns, cell=None) -> list[dict]:
    cell = cell or fmt_estimate
    rows = []
    for name, r in result["raters"].items():
        row = {"rater": name}
        for key, title in columns:
            row[title] = cell(_get(r, key))
        rows.append(row)
    return rows


def estimate_cell(e) -> Markup | str | None:
    """An estimate for an HTML table: the value, and under it, smaller, its interval and k/n — two short lines
    that never wrap, instead of one long one squeezed into a narrow column."""
    if not isinstance(e, dict):
        return e
    if e.get("value") is None:
        return Markup("\u2014 <span class='ci'>n={}</span>").format(e.get("n", 0))
    ci = f"[{e['ci_low']:.3f}, {e['ci_high']:.3f}] " if e.get("ci_low") is not None else ""
    count = f"{e['k']}/{e['n']}" if e.get("k") is not None else f"n={e.get('n')}"
    return Markup("{}<span class='ci'>{}{}</span>").format(f"{e['value']:.3f}", ci, count)


def _rater_tables(result: dict, columns, caption: str, per_table: int = 5) -> list[Markup]:
    """The per-rater columns as tables of at most `per_table` columns each (readable at common widths), leaving
    out the columns no rater has a value for (named in the caption)."""
    raters = list(result["raters"].values())
    def has_value(e) -> bool:
        return e.get("value") is not None if isinstance(e, dict) else e is not None

    kept = [(k, t) for k, t in columns if any(has_value(_get(r, k)) for r in raters)]
    empty = [t for k, t in columns if (k, t) not in kept]
    parts = [kept[i:i + per_table] for i in range(0, len(kept), per_table)]
    out = []
    for i, part in enumerate(parts):
        note = f" (no data: {', '.join(empty)})" if empty and i == len(parts) - 1 else ""
        out.append(table(_rater_rows(result, part, estimate_cell),
                         caption=f"{caption}{f' ({i + 1} of {len(parts)})' if len(parts) > 1 else ''}{note}"))
    return out


def _agreement_rows(agr: dict) -> list[dict]:
    rows = []
    for key in ("percent_agreement", "percent_agreement_no_ties", "fleiss_kappa", "krippendorff_alpha",
                "krippendorff_alpha_ordinal", "krippendorff_alpha_p_a"):
        rows.append({"statistic": key, "estimate [95% CI] k/n": fmt_estimate(agr.get(key))})
    for pair, e in agr["cohen_kappa"].items():  # only the pairs of raters that share items (rlaif.audit)
        rows.append({"statistic": f"cohen_kappa {pair}", "estimate [95% CI] k/n": fmt_estimate(e)})
    return rows


def _pairs_note(agr: dict) -> str:
    total, shown = agr.get("n_rater_pairs", len(agr["cohen_kappa"])), len(agr["cohen_kappa"])
    if total == shown:
        return ""
    return (f"Cohen's kappa for the {shown} of {total} pairs of raters that judged items in common; "
            f"the other {total - shown} share no item.")


def render_audit_md(result: dict) -> str:
    """The audit as markdown: counts, the per-rater tables, agreement, definitions."""
    out = ["# Judge and labeler audit\n\n",
           f"{result['n_items']} items, {result['n_labels']} labels, {result['n_raters']} raters. "
           f"Gold: {md_text(result['gold']['source']) if result['gold'] else 'none'}. "
           "Cells: estimate [95% bootstrap CI] k/n.\n\n",
           "## Bias and consistency\n\n", md_table(_rater_rows(result, RATER_COLUMNS))]
    if result.get("probe_flags"):
        out += ["\n## Judges that failed the master-key probe\n\n"]
        out += [f"- {md_text(f['message'])}\n" for f in result["probe_flags"]]
    if result["gold"]:
        out += ["\n## Against gold\n\n", md_table(_rater_rows(result, GOLD_COLUMNS))]
    if result["agreement"]:
        note = _pairs_note(result["agreement"])
        out += ["\n## Agreement between raters\n\n", md_table(_agreement_rows(result["agreement"]))]
        out += [f"\n{note}\n"] if note else []
    c = result["consensus"]
    out += [f"\nConsensus verdicts (plurality of raters): a {c['a']}, b {c['b']}, tie {c['tie']}, "
            f"none {c['none']}.\n", "\n## Definitions\n\n"]
    out += [f"- **{k}**: {v}\n" for k, v in DEFINITIONS]
    return "".join(out)


def _verdict_word(lb: Label) -> str:
    if lb.winner is None:
        return f"invalid ({lb.error})" if lb.error else "invalid"
    shown = f" ({lb.order[0]} shown first)" if lb.order else ""
    p = f", p_a={lb.p_a:.2f}" if lb.p_a is not None else ""
    return f"{lb.winner}{shown}{p}"


def _example(item: str, by_item: dict[str, list[Label]], raters: Sequence[str] | None, tag: str,
             gold: str | None = None) -> Example:
    lbs = by_item.get(item, [])
    text = next((lb for lb in lbs if lb.response_a is not None or lb.prompt is not None), lbs[0] if lbs else None)
    notes: dict[str, str] = {}
    if gold:
        notes["gold"] = gold
    for lb in lbs:
        if raters is None or lb.rater in raters:
            key = lb.rater + (f" ({lb.order})" if lb.order else "")
            notes[key] = (notes[key] + "; " if key in notes else "") + _verdict_word(lb)
    fields = {}
    if text is not None:
        ma = f" ({text.model_a})" if text.model_a else ""
        mb = f" ({text.model_b})" if text.model_b else ""
        fields = {"prompt": text.prompt, f"response a{ma}": text.response_a, f"response b{mb}": text.response_b}
        # raw judge replies come after the responses they judge
        raws = [(lb.rater, lb.order, lb.raw) for lb in lbs if lb.raw and (raters is None or lb.rater in raters)]
        for r, o, raw in raws[:2]:
            fields[f"raw reply: {r}{' (' + o + ')' if o else ''}"] = raw
    side = [k for k in fields if k.startswith("response")]
    return Example(title=f"item {item}", fields=fields, side_by_side=side, notes=notes, tag=tag)


def render_audit_html(result: dict, labels: Sequence[Label], gold_labels: Sequence[Label] = (),
                      *, limit: int = 30) -> str:
    """The self-contained audit page."""
    by_item: dict[str, list[Label]] = defaultdict(list)
    for lb in labels:
        by_item[lb.item].append(lb)
    gold_of: dict[str, str] = defaultdict(str)
    for lb in list(gold_labels) + [lb for lb in labels if result["gold"] and
                                   result["gold"]["source"] == f"rater:{lb.rater}"]:
        gold_of[lb.item] = (gold_of[lb.item] + " " if gold_of[lb.item] else "") + str(lb.winner)
    raters = list(result["raters"])

    cards = {"items": result["n_items"], "labels": result["n_labels"], "raters": result["n_raters"]}
    if result["agreement"]:
        cards["Krippendorff's alpha"] = result["agreement"]["krippendorff_alpha"]["value"]
    sections = [Section("Summary", [
        metrics(cards),
        f"Gold: {result['gold']['source'] if result['gold'] else 'none given'}. Each cell reads "
        "estimate [95% bootstrap interval over items] k/n. Definitions are at the end.",
        *_rater_tables(result, RATER_COLUMNS, "bias and consistency per rater"),
    ])]
    if result.get("probe_flags"):
        flags = [f["message"] for f in result["probe_flags"]]
        sections.append(Section("Judges that failed the master-key probe", flags,
                                intro="Their rewards can be won by content-free answers; see `rlaif probe`."))
    plots = []
    for key, title, ref, lim in (
            ("position_consistency", "position consistency", None, (0, 1)),
            ("first_position_rate", "share of decisive verdicts won by the first-shown response", 0.5, (0, 1)),
            ("preference_fairness", "preference fairness (negative = first-position bias)", 0.0, (-1, 1)),
            ("longer_preferred_rate", "share of decisive verdicts won by the longer response", 0.5, (0, 1))):
        ests = [result["raters"][r][key] for r in raters]
        if any(e and e.get("value") is not None for e in ests):
            plots.append(interval_plot(raters, [e["value"] for e in ests], [e["ci_low"] for e in ests],
                                       [e["ci_high"] for e in ests], xlabel=title, reference=ref, xlim=lim))
    if plots:
        sections.append(Section("Position and length bias", [grid(plots)]))
    if result["gold"]:
        blocks: list = _rater_tables(result, GOLD_COLUMNS, "against gold", per_table=4)
        acc = [result["raters"][r].get("accuracy") for r in raters]
        if any(a and a.get("value") is not None for a in acc):
            blocks.append(interval_plot(raters, [a["value"] for a in acc], [a["ci_low"] for a in acc],
                                        [a["ci_high"] for a in acc], xlabel="accuracy against gold", xlim=(0, 1)))
        cal = [(r, result["raters"][r].get("calibration_bins")) for r in raters]
        cal = [(r, b) for r, b in cal if b]
        if cal:
            blocks.append(_calibration_plot(cal))
        sections.append(Section("Accuracy against gold", blocks))
    if result["agreement"]:
        agr = result["agreement"]
        sections.append(Section("Agreement between raters", [
            table(_agreement_rows(agr)),
            f"{agr['n_items_rated_by_two_or_more']} items were judged by two or more raters; "
            f"{len(agr['disagreement_items'])} of them got different verdicts. {_pairs_note(agr)}".strip(),
        ]))

    ex_blocks = []
    for r in raters:
        flipped = result["raters"][r]["flipped_items"]
        if flipped:
            ex_blocks.append(examples([_example(i, by_item, [r], "flipped", gold_of.get(i)) for i in flipped],
                                      heading=f"{r}: {len(flipped)} pairs with different verdicts in the two orders",
                                      limit=limit))
        wrong = result["raters"][r].get("gold_disagreements") or []
        if wrong:
            ex_blocks.append(examples([_example(i, by_item, [r], "vs gold", gold_of.get(i)) for i in wrong],
                                      heading=f"{r}: {len(wrong)} verdicts that differ from gold", limit=limit))
    if result["agreement"] and result["agreement"]["disagreement_items"]:
        items = result["agreement"]["disagreement_items"]
        ex_blocks.append(examples([_example(i, by_item, None, "disagree", gold_of.get(i)) for i in items],
                                  heading=f"{len(items)} items where raters disagree", limit=limit))
    if not ex_blocks:
        ex_blocks = ["No flipped pairs, gold disagreements or rater disagreements."]
    sections.append(Section("The verdicts behind the numbers", ex_blocks,
                            intro="Each entry shows the prompt, both responses and every verdict, escaped."))
    sections.append(Section("Definitions", [table([{"key": k, "definition": v} for k, v in DEFINITIONS])]))
    return render_page("Judge and labeler audit", sections,
                       meta={"items": result["n_items"], "labels": result["n_labels"],
                             "bootstrap rounds": result["settings"]["bootstrap_rounds"],
                             "seed": result["settings"]["seed"]})


def _calibration_plot(cal):
    from rlaif.report.html import figure, new_figure, padded

    fig, ax = new_figure(4.6, 4.0)
    ax.plot([0, 1], [0, 1], ls="--", color="#8c959f", lw=1)
    for name, bins in cal:
        ax.plot([b["mean_p"] for b in bins], [b["share_a"] for b in bins], "o-", ms=4, label=str(name))
    ax.set_xlabel("mean p_a in bin")
    ax.set_ylabel("share where gold says a")
    ax.set_xlim(*padded((0, 1)))  # bins at 0 or 1 drawn whole
    ax.set_ylim(*padded((0, 1)))
    ax.legend(fontsize=7)
    return figure(fig, caption="reliability diagram (calibration of p_a)")
