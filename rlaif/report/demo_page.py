"""The demo's report: demo.json (every headline number, stable keys) and one self-contained report.html.

Reads only the files the demo's steps wrote, so the report can be rebuilt from a finished run.
The conclusions are computed from the intervals, never written in advance: a trained policy
whose interval covers 0.5 is reported as not distinguishable from the base.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from rlaif.records import Label, Response, iter_json_lines, read_json_file, read_jsonl
from rlaif.report.html import (
    Example,
    Section,
    bar_chart,
    examples,
    figure,
    grid,
    interval_plot,
    metrics,
    new_figure,
    paragraph,
    render_page,
    table,
)

DIVERSITY = ("distinct_1", "distinct_2", "ead", "self_bleu", "embedding")


def _value(x: Any) -> Any:
    return x.get("value") if isinstance(x, dict) else x


def _get(d: Any, *path: str) -> Any:
    for p in path:
        if not isinstance(d, dict):
            return None
        d = d.get(p)
    return d


def _curve(path: Path) -> list[dict]:
    return [obj for _, obj in iter_json_lines(path)] if path.exists() else []


def _training(run: Path) -> dict | None:
    if not (run / "train_result.json").exists():
        return None
    res = read_json_file(run / "train_result.json")
    rows = _curve(run / "metrics.jsonl")
    keys = ("step", "loss", "reward_accuracy", "reward_margin", "kl")
    return {"steps": res["steps"], "stopped_by": res["stopped_by"], "train_seconds": res["train_seconds"],
            "reference_seconds": res.get("reference_seconds"),
            "final_train": {k: res["train"].get(k) for k in keys if k in res["train"]},
            "final_eval": {k: res["eval"].get(k) for k in keys if k in res["eval"]} if res.get("eval") else None,
            "curve": [{k: r.get(k) for k in keys} | {"split": r.get("split")} for r in rows]}


def _gap(g: dict | None) -> dict | None:
    """ID − OOD differences per judge (win rate) and per policy (compliance), with their intervals."""
    if not g:
        return None
    keep = ("id", "ood", "gap", "ci_low", "ci_high", "warnings")
    return {kind: {who: {k: v.get(k) for k in keep} for who, v in (g.get(kind) or {}).items()}
            for kind in ("win_rate", "compliance")}


def verdict_sentence(split: str, wr: dict | None, policy: str, baseline: str) -> str:
    """The honest reading of one win rate and its 95% interval."""
    if not wr or wr.get("win_rate") is None:
        return f"{split}: no decisive comparisons, so no verdict."
    w, lo, hi = wr["win_rate"], wr.get("ci_low"), wr.get("ci_high")
    span = f"win rate {w:.2f} (95% CI {lo:.2f}-{hi:.2f}, n = {wr.get('n')})" if lo is not None else f"win rate {w:.2f}"
    if lo is not None and lo > 0.5:
        return f"{split}: {policy} beats {baseline}: {span}."
    if hi is not None and hi < 0.5:
        return f"{split}: {policy} is worse than {baseline}: {span}."
    return f"{split}: {policy} does not beat {baseline} detectably: {span}; the interval includes 0.5."


def _eval_splits(ev: dict, policy: str, baseline: str) -> tuple[dict, list[str], dict]:
    """Per split: win rates, compliance, diversity, reward/KL; the verdict sentences; the checker's win rates."""
    splits, verdicts, primaries = {}, [], {}
    for name, sp in (ev.get("splits") or {}).items():
        by_judge = sp.get("win_rate") or {}
        rule_key = next((k for k in by_judge if k.startswith("rule@")), None)
        primary = by_judge.get(rule_key) if rule_key else next(iter(by_judge.values()), None)
        splits[name] = {
            "kind": sp.get("kind"), "n_prompts": sp.get("n_prompts"), "samples": sp.get("samples"),
            "win_rate": {k: {f: v.get(f) for f in ("n", "wins", "losses", "ties", "win_rate", "ci_low", "ci_high",
                                                    "soft_win_rate", "lc_win_rate")} for k, v in by_judge.items()},
            "compliance": sp.get("compliance"), "diversity": sp.get("diversity"), "reward": sp.get("reward"),
        }
        primaries[name] = primary
        verdicts.append(verdict_sentence(f"{name} ({sp.get('kind')})", primary, policy, baseline))
    return splits, verdicts, primaries


def build_demo_summary(out: Path, plan: dict, step_seconds: dict) -> dict:
    out = Path(out)
    cands = read_jsonl(out / "candidates.jsonl", Response)
    base = [r for r in cands if r.policy == "local"]
    label_summary = read_json_file(out / "labels" / "summary.json")
    audit = read_json_file(out / "audit" / "audit.json")
    prefs = read_json_file(out / "preferences_summary.json")
    ai = prefs["ai_judge"]
    r = audit["raters"].get(ai, {})
    ev = read_json_file(out / "eval" / "eval.json") if (out / "eval" / "eval.json").exists() else {}
    policy, baseline = ev.get("policy", "dpo"), ev.get("baseline", "local")
    splits, verdicts, _ = _eval_splits(ev, policy, baseline)
    return {
        "plan": plan,
        "step_seconds": step_seconds,
        "total_seconds": round(sum(step_seconds.values()), 1),
        "candidates": {"n_prompts": len({r.prompt_id for r in base}), "n_base": len(base),
                       "n_revisions": len(cands) - len(base)},
        "labels": {k: label_summary.get(k) for k in ("n_pairs", "n_labels", "n_invalid")}
        | {"judges": label_summary.get("judges")},
        "judge_audit": {"rater": ai, "gold": prefs["checker"]} | {
            k: r.get(k) for k in ("accuracy", "accuracy_by_order", "accuracy_both_orders", "position_consistency",
                                  "first_position_rate", "preference_fairness", "longer_preferred_rate",
                                  "invalid_rate", "ece")},
        "preferences": prefs,
        "training": {"rm": _training(out / "rm"), "dpo": _training(out / "dpo")},
        "evaluation": {"policy": policy, "baseline": baseline, "splits": splits,
                       "generalization_gap": _gap(ev.get("generalization_gap"))},
        "leaderboard": read_json_file(out / "eval" / "leaderboard.json")["ratings"]
        if (out / "eval" / "leaderboard.json").exists() else None,
        "verdicts": verdicts,
        "online_rl": online_rl_summary(out, plan),
    }


AIM = "a detectable win over the base on the ID split by the checker (95% CI above 0.5)"


def _rl_curve(run: Path) -> list[dict]:
    keys = ("step", "reward", "reward_std", "kl_k3", "kl_k1", "entropy", "response_length", "no_eos_share", "step_s")
    return [{k: r.get(k) for k in keys} for r in _curve(run / "metrics.jsonl") if r.get("split", "train") == "train"]


def online_rl_summary(out: Path, plan: dict) -> dict | None:
    """The online RL step: its run (steps, seconds, reward curve, KL to the base) and its evaluation against
    the base on the same splits as DPO, with the aim's verdict computed from the ID interval."""
    run = out / "rl"
    if not (run / "train_result.json").exists():
        return None
    res = read_json_file(run / "train_result.json")
    curve = _rl_curve(run)
    ev = read_json_file(out / "eval_rl" / "eval.json") if (out / "eval_rl" / "eval.json").exists() else {}
    policy, baseline = ev.get("policy", plan.get("rl_algorithm")), ev.get("baseline", "local")
    splits, verdicts, primaries = _eval_splits(ev, policy, baseline)
    wr = primaries.get("id") or {}
    reached = wr.get("ci_low") is not None and wr["ci_low"] > 0.5
    measured = (f"ID win rate {wr['win_rate']:.2f}, 95% CI {wr['ci_low']:.2f}-{wr['ci_high']:.2f}"
                if wr.get("ci_low") is not None else "no ID win rate")
    settings = {k[3:]: v for k, v in plan.items() if k.startswith("rl_")}
    return {
        "algorithm": plan.get("rl_algorithm"), "reward": "rule (share of constraints met)", "settings": settings,
        "n_prompts": sum(1 for _ in iter_json_lines(out / "prompts_rl.jsonl")) if (out / "prompts_rl.jsonl").exists()
        else None,
        "steps": res["steps"], "stopped_by": res["stopped_by"], "seconds": res["train_seconds"],
        "reward_first": curve[0]["reward"] if curve else None,
        "reward_last": curve[-1]["reward"] if curve else None,
        "kl_last": {k: res["train"].get(k) for k in ("kl_k1", "kl_k3") if k in res["train"]},
        "curve": curve,
        "evaluation": {"policy": policy, "baseline": baseline, "splits": splits,
                       "generalization_gap": _gap(ev.get("generalization_gap"))},
        "verdicts": verdicts,
        "aim": AIM, "aim_reached": reached,
        "aim_sentence": f"Aim {'reached' if reached else 'not reached'}: {AIM}; measured {measured}.",
    }


# ---- HTML ----------------------------------------------------------------------------------------

def _fmt_ci(e: Any) -> str:
    if not isinstance(e, dict) or e.get("value") is None:
        return "n/a"
    lo, hi = e.get("ci_low"), e.get("ci_high")
    return f"{e['value']:.2f} [{lo:.2f}, {hi:.2f}]" if lo is not None and hi is not None else f"{e['value']:.2f}"


def _step_panels(rows: list[dict], keys: tuple[str, str, str]) -> Any:
    """Three small plots of per-step metrics side by side, one per key."""
    fig, axes = new_figure(7.0, 2.6, ncols=3)
    for ax, key in zip(axes, keys, strict=True):
        ax.plot([r["step"] for r in rows], [r.get(key) for r in rows], marker="o", ms=3, color="#0969da")
        ax.set_title(key.replace("_", " "), fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def _curve_plot(train: dict, title: str) -> Any:
    rows = [r for r in train["curve"] if r.get("split") == "train"]
    if not rows:
        return paragraph(f"{title}: no training steps were logged.", note=True)
    fig = _step_panels(rows, ("loss", "reward_accuracy", "reward_margin"))
    return figure(fig, caption=f"{title}: per-step training metrics ({train['steps']} steps, "
                               f"stopped by {train['stopped_by']}).")


def _examples(out: Path, summary: dict, limit: int = 12) -> Any:
    items = []
    for split in summary["evaluation"]["splits"]:
        path = out / "eval" / split / "labels.jsonl"
        if not path.exists():
            continue
        seen = set()
        for lb in read_jsonl(path, Label):
            if not lb.rater.startswith("rule@") or lb.item in seen:
                continue
            seen.add(lb.item)
            items.append(Example(
                title=f"{split}: {lb.item}", fields={"prompt": lb.prompt, f"A: {lb.model_a}": lb.response_a,
                                                     f"B: {lb.model_b}": lb.response_b},
                side_by_side=(f"A: {lb.model_a}", f"B: {lb.model_b}"),
                notes={"checker verdict": lb.winner, "score A": lb.score_a, "score B": lb.score_b}))
            if len(items) >= limit:
                break
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
        *[paragraph(v) for v in s["verdicts"]],
        *([paragraph(s["online_rl"]["aim_sentence"]), *[paragraph(v) for v in s["online_rl"]["verdicts"]]]
          if s.get("online_rl") else []),
        _gap_table(ev.get("generalization_gap")),
        paragraph(f"The whole run took {s['total_seconds']:.0f} s of step time on this machine.", note=True),
    ], intro="The loop on the embedded SmolLM2-135M-Instruct, offline on the CPU: generate → label (AI judge in "
             "both orders + rule checker) → audit → preferences → train RM and DPO, and online RL on the checker → "
             "evaluate on held-out prompts.")


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
    fig = _step_panels(rows, ("reward", "kl_k3", "response_length"))
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
        table(_rl_rows(rl), caption="The RL policy against the base on the same evaluation prompts as DPO; diversity "
                                    "per input (higher distinct-2, lower self-BLEU: more varied)."),
        paragraph(f"{rl['n_prompts']} training prompts from the training pool, only constraint types the base "
                  f"sometimes meets (keywords, length); settings {rl['settings']}, chosen on training prompts only.",
                  note=True),
    ], intro="The policy samples k answers per prompt, the rule checker scores each by the share of constraints "
             "met, advantages are relative to the group, and a KL term keeps the policy near the base.")


def render_demo_html(out: Path, s: dict) -> str:
    ev = s["evaluation"]
    sections = [_summary_section(s), _judge_section(s["judge_audit"]), _preferences_section(s["preferences"]),
                _training_section(s["training"])]
    if s.get("online_rl"):
        sections.append(_online_rl_section(s["online_rl"]))
    sections += [_win_rate_section(ev), _compliance_section(ev)]
    if s.get("leaderboard"):
        sections.append(_leaderboard_section(s["leaderboard"]))
    sections += [_diversity_section(ev), Section("Examples", [_examples(out, s)])]
    return render_page("rlaif demo report", sections,
                       subtitle="RL from AI feedback, end to end, on a 135M model and a CPU")
