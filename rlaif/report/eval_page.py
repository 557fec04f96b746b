"""Pages for policy evaluation: `winrate.html` (`rlaif winrate`) and `eval.md` / `eval.html` (`rlaif eval`).

Both show the pairs behind the numbers: the prompt, the two responses side by side and every
verdict on them (each rater, each order shown). All model text goes through the escaping helpers
of `rlaif.report.html`.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rlaif.records import Label
from rlaif.report.html import Example, Section, examples, heading, interval_plot, metrics, render_page, table
from rlaif.report.markdown import fmt, md_table, md_text

# ---- the pairs behind a win rate --------------------------------------------------------------------------


def _side(lab: Label, policy: str) -> str:
    return "a" if lab.model_a == policy else "b"


def policy_score(lab: Label, policy: str) -> float | None:
    """The policy's score in one label: 1 win, 0.5 tie, 0 loss, None without a verdict."""
    if lab.winner is None:
        return None
    return 0.5 if lab.winner == "tie" else float(lab.winner == _side(lab, policy))


def _verdict_text(lab: Label, policy: str, baseline: str) -> str:
    s = policy_score(lab, policy)
    if s is None:
        return f"no verdict ({lab.error or 'invalid'})"
    word = "tie" if s == 0.5 else f"{policy if s == 1 else baseline} wins"
    if lab.p_a is not None:
        p = lab.p_a if _side(lab, policy) == "a" else 1 - lab.p_a
        word += f" (P[{policy} wins] = {p:.2f})"
    return word


def pair_examples(labels: Sequence[Label], policy: str, baseline: str, *, limit: int = 20) -> list[Example]:
    """One collapsible example per compared pair, in file order, at most `limit`."""
    by_item: dict[str, list[Label]] = {}
    for lab in labels:
        if {lab.model_a, lab.model_b} == {policy, baseline}:
            by_item.setdefault(lab.item, []).append(lab)
    out = []
    for item, labs in list(by_item.items())[:limit]:
        first = labs[0]
        pol_text = first.response_a if _side(first, policy) == "a" else first.response_b
        base_text = first.response_b if _side(first, policy) == "a" else first.response_a
        notes = {f"{lab.rater}" + (f" (shown {lab.order})" if lab.order else ""): _verdict_text(lab, policy, baseline)
                 for lab in labs}
        scores = [s for s in (policy_score(lab, policy) for lab in labs) if s is not None]
        mean = sum(scores) / len(scores) if scores else None
        tag = None if mean is None else ("tie" if mean == 0.5 else f"{policy if mean > 0.5 else baseline} ahead")
        out.append(Example(title=f"{item}", tag=tag, notes=notes,
                           fields={"prompt": first.prompt, f"{policy} (policy)": pol_text,
                                   f"{baseline} (baseline)": base_text},
                           side_by_side=(f"{policy} (policy)", f"{baseline} (baseline)")))
    return out


def _n_items(labels: Sequence[Label], policy: str, baseline: str) -> int:
    return len({lab.item for lab in labels if {lab.model_a, lab.model_b} == {policy, baseline}})


def _ci(d: Mapping[str, Any]) -> str:
    return f"[{fmt(d.get('ci_low'))}, {fmt(d.get('ci_high'))}]"


NO_SIGNAL = "no signal"


def no_signal(w: Mapping[str, Any]) -> bool:
    """A judge that told the responses apart on no pair: every verdict a tie — it said so, or its two orders
    disagreed on every pair (a judge that picks the position shown first: at chance). Its win rate is ½ by
    construction, and its interval (zero-width once n is large) measures nothing, so it is marked instead."""
    return bool(w.get("n")) and w.get("ties") == w.get("n")


def _interval(w: Mapping[str, Any]) -> str:
    return f"{NO_SIGNAL} (every verdict a tie)" if no_signal(w) else _ci(w)


def split_name(split: str, kind: str) -> str:
    """`ood`, or `held-out (ood)`: the kind only when it says more than the split's name."""
    return split if kind == split else f"{split} ({kind})"


def judge_name(rater: str) -> str:
    return rater.split("@")[0]


# ---- winrate.html ------------------------------------------------------------------------------------------

def winrate_html(d: dict[str, Any], labels: Sequence[Label], *, limit: int = 50) -> str:
    """The page beside winrate.json: headline numbers, interval plot, per category, the pairs."""
    policy, baseline = d["policy"], d["baseline"]
    cards = {"win rate": d["win_rate"], "95% interval": _ci(d), "soft win rate": d["soft_win_rate"],
             "length-controlled": d["lc_win_rate"], "comparisons": d["n"], "prompts": d["n_prompts"]}
    rows = [("all", d)] + list(d["per_category"].items())
    plot = interval_plot([f"{k} (n={v['n']})" for k, v in rows], [v["win_rate"] for k, v in rows],
                         [v["ci_low"] for k, v in rows], [v["ci_high"] for k, v in rows],
                         xlabel=f"win rate of {policy} over {baseline}", reference=0.5, xlim=(0, 1),
                         caption="win rate (ties count half) with its 95% prompt-clustered interval")
    blocks: list[Any] = [metrics(cards, notes={"win rate": f"{d['wins']} W / {d['losses']} L / {d['ties']} T"}),
                         plot, f"Interval: {d['ci_method']}."]
    sections = [Section("Win rate", blocks)]
    if d["per_category"]:
        sections.append(Section("Per category", [table(
            [{"category": c, "n": v["n"], "wins": v["wins"], "losses": v["losses"], "ties": v["ties"],
              "win rate": v["win_rate"], "95% interval": _ci(v), "length-controlled": v["lc_win_rate"]}
             for c, v in d["per_category"].items()])]))
    if d.get("per_rater"):
        sections.append(Section("Per rater", [table(
            [{"rater": r, "n": v["n"], "win rate": v["win_rate"], "95% interval": _ci(v), "soft": v["soft_win_rate"]}
             for r, v in d["per_rater"].items()])]))
    if d["warnings"]:
        sections.append(Section("Warnings", list(d["warnings"])))
    n = _n_items(labels, policy, baseline)
    sections.append(Section("Pairs", [examples(pair_examples(labels, policy, baseline, limit=limit))],
                            intro=f"{n} pairs judged; the first {min(n, limit)} shown with every verdict on them."))
    return render_page(f"Win rate: {policy} vs {baseline}", sections,
                       meta={"policy": policy, "baseline": baseline, "comparisons": d["n"]})


# ---- eval.md / eval.html -----------------------------------------------------------------------------------

def _winrate_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for split, s in result["splits"].items():
        for rater, w in s.get("win_rate", {}).items():
            rows.append({"split": split_name(split, s["kind"]), "judge": rater, "n": w["n"],
                         "W-L-T": f"{w['wins']}-{w['losses']}-{w['ties']}", "win rate": w["win_rate"],
                         "95% interval": _interval(w), "soft": w["soft_win_rate"],
                         "length-controlled": w["lc_win_rate"], "_lo": w["ci_low"], "_hi": w["ci_high"],
                         "_no_signal": no_signal(w)})
    return rows


def _gap_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    gap = result.get("generalization_gap") or {}
    rows = []
    for what, part in (("win rate", gap.get("win_rate") or {}), ("compliance", gap.get("compliance") or {})):
        rows += [{"measure": f"{what}: {key}", "ID": g["id"], "OOD": g["ood"], "gap (ID − OOD)": g["gap"],
                  "95% interval": _ci(g), "_lo": g["ci_low"], "_hi": g["ci_high"]} for key, g in part.items()]
    return rows


def _compliance_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for split, s in result["splits"].items():
        for name, c in (s.get("compliance") or {}).items():
            fams = ", ".join(f"{k} {v:.2f}" for k, v in c["per_family"].items())
            rows.append({"split": split, "policy": name, "n": c["n"], "all-pass rate": c["all_pass_rate"],
                         "95% interval": _ci(c), "share of constraints met": c["share_passed"], "per family": fams})
    return rows


_DIV = [("distinct_2", "distinct-2"), ("ead", "EAD"), ("self_bleu", "self-BLEU"), ("embedding", "embedding")]


def _diversity_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for split, s in result["splits"].items():
        for name, v in (s.get("diversity") or {}).items():
            row: dict[str, Any] = {"split": split, "policy": name, "samples": v["samples_per_prompt"]}
            for scope, short in (("per_input", "per input"), ("across_input", "across inputs")):
                for key, label in _DIV:
                    row[f"{label} ({short})"] = v[scope][key]
            rows.append(row)
    return rows


def _reward_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for split, s in result["splits"].items():
        r = s.get("reward")
        if not r:
            continue
        kl = r.get("kl") or {}
        rows.append({"split": split, f"reward {result['policy']}": (r.get("policy") or {}).get("mean"),
                     f"reward {result['baseline']}": (r.get("baseline") or {}).get("mean"),
                     "KL estimate (nats)": r.get("kl_estimate"), "KL 95% interval": _ci(kl) if kl else None,
                     "KL per token": kl.get("per_token"), "note": kl.get("note")})
    return rows


def _visible(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]


def _notes(result: dict[str, Any]) -> list[str]:
    out = [f"{split}: {n}" for split, s in result["splits"].items() for n in s.get("notes", [])]
    out += [f"{split} / {rater}: {w}" for split, s in result["splits"].items()
            for rater, wr in s.get("win_rate", {}).items() for w in wr["warnings"]]
    gap = result.get("generalization_gap") or {}
    out += [f"gap / {key}: {w}" for part in ("win_rate", "compliance") for key, g in (gap.get(part) or {}).items()
            for w in g.get("warnings", [])]
    return out + list(result.get("notes", []))


def _temperature(result: dict[str, Any]) -> str:
    """The sampling temperature, per model where a model's spec overrides the suite's."""
    default = result["generation"]["temperature"]
    temps = {name: default if m.get("temperature") is None else m["temperature"]
             for name, m in (result.get("models") or {}).items()}
    if len(set(temps.values())) <= 1:
        return str(next(iter(temps.values()), default))
    return ", ".join(f"{name} {t}" for name, t in temps.items())


def eval_markdown(result: dict[str, Any]) -> str:
    g = result["generation"]
    lines = [f"# Eval {md_text(result['suite'])}: {md_text(result['policy'])} vs {md_text(result['baseline'])}", "",
             f"{g['samples']} sample(s) per prompt, max_tokens {g['max_tokens']}, temperature {_temperature(result)}; "
             "prompts per split: " + ", ".join(f"{split_name(k, v['kind'])} {v['n_prompts']}"
                                               for k, v in result["splits"].items()) + ".", ""]
    tables = (("Win rate", _visible(_winrate_rows(result))), ("Generalization gap", _visible(_gap_rows(result))),
              ("Constraint compliance", _compliance_rows(result)), ("Diversity", _diversity_rows(result)),
              ("Reward and KL", _reward_rows(result)))
    for title, rows in tables:
        if rows:
            lines += [f"## {title}", "", md_table(rows)]
    notes = _notes(result)
    if notes:
        lines += ["## Notes", ""] + [f"- {md_text(n)}" for n in notes] + [""]
    return "\n".join(lines)


def summary_cards(result: dict[str, Any]) -> Any:
    """One card per split and judge: what the number is (whose win rate, over which baseline, by which judge),
    its 95% interval and n — or a "no signal" mark for a judge whose every verdict is a tie."""
    cards, notes, flags = {}, {}, {}
    for split, s in result["splits"].items():
        for rater, w in s.get("win_rate", {}).items():
            key = (f"{split_name(split, s['kind'])}: win rate of {result['policy']} over {result['baseline']}, "
                   f"judged by {judge_name(rater)}")
            cards[key] = w["win_rate"]
            size = f"n = {w['n']} comparisons on {w['n_prompts']} prompts"
            if no_signal(w):
                flags[key] = NO_SIGNAL
                notes[key] = f"every verdict a tie (it said tie, or its two orders disagreed): {size}"
            else:
                notes[key] = f"95% interval {_ci(w)}, {size}"
    return metrics(cards, notes=notes, flags=flags) if cards else None


def eval_html(result: dict[str, Any], labels_by_split: Mapping[str, Sequence[Label]]) -> str:
    policy, baseline = result["policy"], result["baseline"]
    g = result["generation"]
    sections = []
    wr = _winrate_rows(result)
    if wr:
        names = [f"{r['split']} · {judge_name(r['judge'])}" + (f" ({NO_SIGNAL})" if r["_no_signal"] else "")
                 for r in wr]
        # no interval drawn for a judge with no signal: a zero-width bar would look precise
        lows, highs = ([None if r["_no_signal"] else r[k] for r in wr] for k in ("_lo", "_hi"))
        plot = interval_plot(names, [r["win rate"] for r in wr], lows, highs,
                             reference=0.5, xlim=(0, 1),
                             xlabel=f"win rate of {policy} over {baseline}",
                             caption="per split and judge: win rate (ties half) with its 95% prompt-clustered interval")
        sections.append(Section("Win rate", [plot, table(_visible(wr))]))
    gap = _gap_rows(result)
    if gap:
        sections.append(Section("Generalization gap", [
            interval_plot([r["measure"] for r in gap], [r["gap (ID − OOD)"] for r in gap], [r["_lo"] for r in gap],
                          [r["_hi"] for r in gap], reference=0.0,
                          xlabel="ID − OOD (positive: worse out of distribution)"),
            table(_visible(gap))], intro="In-distribution minus out-of-distribution, each split resampled by prompt."))
    comp = _compliance_rows(result)
    if comp:
        sections.append(Section("Constraint compliance", [table(comp)],
                                intro="Share of responses meeting all of their prompt's constraints (rule checkers)."))
    div = _diversity_rows(result)
    if div:
        sections.append(Section("Diversity", [table(div)], intro="Higher is more diverse, except self-BLEU."))
    rew = _reward_rows(result)
    if rew:
        sections.append(Section("Reward and KL", [table(rew)]))
    notes = _notes(result)
    if notes:
        sections.append(Section("Notes", notes))
    ex_blocks: list[Any] = []
    limit = result.get("examples_shown", 20)
    for split, labels in labels_by_split.items():
        n = _n_items(labels, policy, baseline)
        ex_blocks += [heading(f"{split}: {min(n, limit)} of {n} pairs"),
                      examples(pair_examples(labels, policy, baseline, limit=limit))]
    if ex_blocks:
        sections.append(Section("Pairs", ex_blocks))
    summary = summary_cards(result)
    if summary is not None:
        sections.insert(0, Section("Summary", [summary]))
    return render_page(f"Eval {result['suite']}: {policy} vs {baseline}", sections,
                       meta={"policy": policy, "baseline": baseline, "samples": g["samples"],
                             "max_tokens": g["max_tokens"], "temperature": _temperature(result)})
