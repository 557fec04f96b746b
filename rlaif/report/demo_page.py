"""The demo's report.html, self-contained, from a `DemoReport`: demo.json's content (every number and verdict,
computed by `rlaif.pipelines.demo_summary`) and the evaluation pairs it shows. Reads no files."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rlaif.records import Label
from rlaif.report.html import (
    Example,
    Section,
    bar_chart,
    examples,
    figure,
    grid,
    interval_plot,
    metrics,
    paragraph,
    render_page,
    table,
)
from rlaif.report.training_page import step_panels

DIVERSITY = ("distinct_1", "distinct_2", "ead", "self_bleu", "embedding")


@dataclass
class EvalPair:
    """One evaluation pair as the checker saw it: the split and the checker's label."""

    split: str
    label: Label


@dataclass
class DemoReport:
    """What the demo's report renders: demo.json's content (`rlaif.pipelines.demo_summary`) and the pairs it shows."""

    summary: dict
    pairs: list[EvalPair]


def _value(x: Any) -> Any:
    return x.get("value") if isinstance(x, dict) else x


# ---- HTML ----------------------------------------------------------------------------------------

def _fmt_ci(e: Any) -> str:
    if not isinstance(e, dict) or e.get("value") is None:
        return "n/a"
    lo, hi = e.get("ci_low"), e.get("ci_high")
    return f"{e['value']:.2f} [{lo:.2f}, {hi:.2f}]" if lo is not None and hi is not None else f"{e['value']:.2f}"


def _curve_plot(train: dict, title: str) -> Any:
    rows = [r for r in train["curve"] if r.get("split") == "train"]
    if not rows:
        return paragraph(f"{title}: no training steps were logged.", note=True)
    fig = step_panels(rows, ("loss", "reward_accuracy", "reward_margin"))
    return figure(fig, caption=f"{title}: per-step training metrics ({train['steps']} steps, "
                               f"stopped by {train['stopped_by']}).")


def _examples(pairs: list[EvalPair], limit: int = 12) -> Any:
    items = [Example(title=f"{p.split}: {lb.item}", fields={"prompt": lb.prompt, f"A: {lb.model_a}": lb.response_a,
                                                           f"B: {lb.model_b}": lb.response_b},
                     side_by_side=(f"A: {lb.model_a}", f"B: {lb.model_b}"),
                     notes={"checker verdict": lb.winner, "score A": lb.score_a, "score B": lb.score_b})
             for p in pairs for lb in (p.label,)]
    return examples(items, heading="Evaluation pairs as the checker saw them", limit=limit)


def _gap_table(gap: dict | None) -> Any:
    if not gap:
        return paragraph("No generalization gap computed.", note=True)
    rows = [{"measure": f"{kind.replace('_', ' ')}: {who.split(':')[0]}", "ID": v["id"], "OOD": v["ood"],
             "gap (ID − OOD)": v["gap"], "95% CI": _ci_text(v.get("ci_low"), v.get("ci_high")),
             "note": "; ".join(v.get("warnings") or [])}
            for kind, per in gap.items() for who, v in per.items()]
    return table(rows, caption="Generalization gap: in-distribution minus out-of-distribution, bootstrap over "
                               "prompts within each split.")


def _ci_text(lo: Any, hi: Any) -> str:
    return f"[{lo:.2f}, {hi:.2f}]" if lo is not None and hi is not None else "n/a"


def _summary_section(s: dict) -> Section:
    ev, ja = s["evaluation"], s["judge_audit"]
    head = {}
    for name, sp in ev["splits"].items():
        rule = next((v for k, v in sp["win_rate"].items() if k.startswith("rule@")), None)
        if rule:
            head[f"{name} win rate"] = rule.get("win_rate")
    return Section("What happened", [
        metrics(head | {"AI judge accuracy": _value(ja.get("accuracy")),
                        "AI judge position consistency": _value(ja.get("position_consistency")),
                        "preferences": s["preferences"]["n_preferences"]}),
        *([paragraph("DPO — " + s["aim"]["sentence"])] if s.get("aim") else []),
        *[paragraph(v) for v in s["verdicts"]],
        *([paragraph(s["online_rl"]["algorithm"].upper() + " — " + s["online_rl"]["aim_sentence"]),
           *[paragraph(v) for v in s["online_rl"]["verdicts"]]] if s.get("online_rl") else []),
        _gap_table(ev.get("generalization_gap")),
        paragraph(f"The whole run took {s['total_seconds']:.0f} s of step time on this machine.", note=True),
    ], intro="The loop on the embedded SmolLM2-135M-Instruct, offline on the CPU: generate → label (rule checker; "
             "the AI judge in both orders on an audit sample) → audit → preferences → train RM and DPO, and online "
             "RL on the checker → evaluate on unseen prompts by the checker and the reward model.")


def _judge_section(ja: dict) -> Section:
    acc_order = ja.get("accuracy_by_order") or {}
    bars = {"accuracy": _value(ja.get("accuracy")), "acc. order ab": _value(acc_order.get("ab")),
            "acc. order ba": _value(acc_order.get("ba")),
            "position consistency": _value(ja.get("position_consistency")),
            "first-position rate": _value(ja.get("first_position_rate")),
            "longer preferred": _value(ja.get("longer_preferred_rate"))}
    return Section("The AI judge, audited against the checker", [
        grid([bar_chart(list(bars), list(bars.values()), ylim=(0, 1), reference=0.5,
                        title=f"{ja['rater']} vs {ja['gold']}"),
              table([{"measure": k, "value (95% CI)": _fmt_ci(ja.get(k)) if isinstance(ja.get(k), dict) else ja.get(k)}
                     for k in ("accuracy", "accuracy_both_orders", "position_consistency", "first_position_rate",
                               "preference_fairness", "longer_preferred_rate", "invalid_rate")])]),
        paragraph("A first-position rate near 1 with position consistency near 0 means the judge picks whatever it "
                  "is shown first: judging both orders is what exposes it. See audit/audit.html for every verdict."),
    ])


def _preferences_section(p: dict) -> Section:
    return Section("The preference dataset", [
        table([{"pairs judged": p["n_pairs"], "preferences": p["n_preferences"],
                "AI judge weight": p["ai_judge_weight"], "mean p_chosen": p["mean_p_chosen"],
                "chosen from": ", ".join(f"{k}: {v}" for k, v in p["chosen_policies"].items())}]),
        paragraph(f"Soft labels: {p['rule']}. The AI judge's measured accuracy was {p['ai_judge_accuracy']}, "
                  f"so its weight is {p['ai_judge_weight']}: a judge without signal does not move the labels."),
    ])


def _training_section(tr: dict) -> Section:
    blocks = [_curve_plot(tr[k], k.upper()) for k in ("rm", "dpo") if tr.get(k)]
    rows = [{"model": k, "steps": v["steps"], "train s": v["train_seconds"],
             **{f"eval {m}": (v["final_eval"] or {}).get(m) for m in ("loss", "reward_accuracy", "reward_margin")}}
            for k, v in tr.items() if v]
    return Section("Training", [*blocks, table(rows)])


def _win_rate_section(ev: dict) -> Section:
    labels, est, lows, highs = [], [], [], []
    for name, sp in ev["splits"].items():
        for rater, w in sp["win_rate"].items():
            labels.append(f"{name} · {rater.split(':')[0]}")
            est.append(w.get("win_rate"))
            lows.append(w.get("ci_low"))
            highs.append(w.get("ci_high"))
    return Section("Win rates with 95% intervals", [
        interval_plot(labels, est, lows, highs, xlabel=f"win rate of {ev['policy']} vs {ev['baseline']}",
                      reference=0.5, xlim=(0, 1)) if labels else paragraph("No evaluation results."),
    ])


def _compliance_section(ev: dict) -> Section:
    comp_rows, comp_labels, comp_vals = [], [], []
    for name, sp in ev["splits"].items():
        for who, c in (sp.get("compliance") or {}).items():
            if isinstance(c, dict) and "all_pass_rate" in c:
                comp_rows.append({"split": name, "policy": who, "all constraints met": c["all_pass_rate"],
                                  "95% CI": _ci_text(c.get("ci_low"), c.get("ci_high")),
                                  "share of constraints met": c.get("share_passed"), "n": c.get("n")})
                comp_labels.append(f"{name} · {who}")
                comp_vals.append(c["all_pass_rate"])
    return Section("Constraint compliance", [
        grid([bar_chart(comp_labels, comp_vals, ylim=(0, 1), ylabel="all constraints met",
                        title="compliance, base vs trained"), table(comp_rows)]) if comp_rows
        else paragraph("No compliance results.", note=True),
    ])


def _leaderboard_section(board: list[dict]) -> Section:
    return Section("Leaderboard", [
        grid([interval_plot([r["model"] for r in board], [r["rating"] for r in board],
                            [r["ci_low"] for r in board], [r["ci_high"] for r in board],
                            xlabel="Bradley–Terry rating (400·log10 scale, mean 1000)", reference=1000),
              table(board)]),
        paragraph("Ratings from the rule checker's verdicts on every evaluation pair, ties as half a win; "
                  "bootstrap 95% intervals; the rank counts only models whose interval lies entirely above.",
                  note=True)])


def _diversity_section(ev: dict) -> Section:
    div_rows = []
    for name, sp in ev["splits"].items():
        for who, d in (sp.get("diversity") or {}).items():
            for scope in ("per_input", "across_input"):
                m = (d or {}).get(scope) or {}
                div_rows.append({"split": name, "policy": who, "scope": scope, **{k: m.get(k) for k in DIVERSITY}})
    return Section("Diversity before and after", [
        table(div_rows) if div_rows else paragraph("No diversity results.", note=True),
        paragraph("Higher distinct-n, EAD and embedding diversity mean more varied outputs; higher self-BLEU means "
                  "more repetitive ones. RLHF-style training often trades diversity for reward (Kirk et al. 2023).",
                  note=True),
    ])


def _rl_curve_plot(rl: dict) -> Any:
    rows = rl["curve"]
    if not rows:
        return paragraph("Online RL: no steps were logged.", note=True)
    fig = step_panels(rows, ("reward", "kl_k3", "response_length"))
    return figure(fig, caption=f"{rl['algorithm'].upper()}: reward (share of constraints met) and KL to the base per "
                               f"step ({rl['steps']} steps, stopped by {rl['stopped_by']}).")


def _rl_rows(rl: dict) -> list[dict]:
    """Per split and policy: the checker's win rate, compliance, KL to the base and diversity, side by side."""
    rows = []
    for name, sp in rl["evaluation"]["splits"].items():
        wr = next((v for k, v in sp["win_rate"].items() if k.startswith("rule@")), {})
        for who, c in (sp.get("compliance") or {}).items():
            per_input = ((sp.get("diversity") or {}).get(who) or {}).get("per_input") or {}
            trained = who == rl["evaluation"]["policy"]
            rows.append({"split": name, "policy": who,
                         "checker win rate vs base (95% CI)": _fmt_ci({"value": wr.get("win_rate"), "ci_low": wr.get(
                             "ci_low"), "ci_high": wr.get("ci_high")}) if trained else "",
                         "all constraints met": (c or {}).get("all_pass_rate"),
                         "share met": (c or {}).get("share_passed"),
                         "KL to base": (sp.get("reward") or {}).get("kl_estimate") if trained else None,
                         "distinct-2": per_input.get("distinct_2"), "self-BLEU": per_input.get("self_bleu")})
    return rows


def _online_rl_section(rl: dict) -> Section:
    return Section("Online RL on the checker reward", [
        metrics({"algorithm": rl["algorithm"], "steps": rl["steps"], "seconds": rl["seconds"],
                 "reward first step": rl["reward_first"], "reward last step": rl["reward_last"],
                 "KL k3 (last step)": rl["kl_last"].get("kl_k3")}),
        paragraph(rl["aim_sentence"]),
        *[paragraph(v) for v in rl["verdicts"]],
        _rl_curve_plot(rl),
        table(_rl_rows(rl), caption="The RL policy against the base on the same evaluation prompts as DPO; "
                                    "diversity per input (higher distinct-2, lower self-BLEU: more varied); KL to the "
                                    "base estimated on the ID split, the distribution trained on."),
        paragraph(f"{rl['n_prompts']} training prompts (the training pool); settings {rl['settings']}, chosen on "
                  "training prompts only.", note=True),
    ], intro="The policy samples k answers per prompt, the rule checker scores each by the share of constraints "
             "met, advantages are relative to the group, and a KL term keeps the policy near the base.")


def _hacking_section(h: dict) -> Section:
    from rlaif.report.training_page import hacking_figure

    onset = (h.get("monitor") or {}).get("onset")
    return Section("Reward hacking, measured", [
        metrics({"steps": h["steps"], "seconds": h["seconds"], "onset step": onset["step"] if onset else "none",
                 "KL at onset": onset["kl"] if onset else None}),
        paragraph(h["sentence"] or "No monitor summary."),
        figure(hacking_figure(h["curve"], h.get("monitor")), caption=f"Proxy: {h['proxy']}; gold: {h['gold']}, "
               "scored on the same rollouts and never trained on; dashed: the onset."),
    ], intro="GRPO against the trained reward model as the proxy, with the rule checker as the gold reward beside "
             "it: how far the proxy can be pushed before it stops tracking what is wanted.")


def render_demo_html(report: DemoReport) -> str:
    s = report.summary
    ev = s["evaluation"]
    sections = [_summary_section(s), _judge_section(s["judge_audit"]), _preferences_section(s["preferences"]),
                _training_section(s["training"])]
    if s.get("online_rl"):
        sections.append(_online_rl_section(s["online_rl"]))
    if s.get("reward_hacking"):
        sections.append(_hacking_section(s["reward_hacking"]))
    sections += [_win_rate_section(ev), _compliance_section(ev)]
    if s.get("leaderboard"):
        sections.append(_leaderboard_section(s["leaderboard"]))
    sections += [_diversity_section(ev), Section("Examples", [_examples(report.pairs)])]
    return render_page("rlaif demo report", sections,
                       subtitle="RL from AI feedback, end to end, on a 135M model and a CPU")
