"""The demo's summary (demo.json): every headline number under stable keys, read from the files the demo's steps
wrote (a resumed run's earlier steps exist only as files), and the evaluation pairs its report shows.

The conclusions are computed here from the intervals, never written in advance: a trained policy whose
interval covers 0.5 is reported as not distinguishable from the base.
"""
from __future__ import annotations

from pathlib import Path

from rlaif.records import Label, Response, iter_json_lines, read_json_file, read_jsonl
from rlaif.report.demo_page import DemoReport, EvalPair


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
    splits, verdicts, primaries = _eval_splits(ev, policy, baseline)
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
        "aim": aim(primaries),
        "online_rl": online_rl_summary(out, plan),
        "reward_hacking": hacking_summary(out),
    }


AIM = "a detectable win over the base on the ID split by the checker (95% CI above 0.5)"


def aim(primaries: dict) -> dict:
    """Whether the aim is reached, from the ID split's checker interval, and the sentence that says so."""
    wr = primaries.get("id") or {}
    reached = wr.get("ci_low") is not None and wr["ci_low"] > 0.5
    measured = (f"ID win rate {wr['win_rate']:.2f}, 95% CI {wr['ci_low']:.2f}-{wr['ci_high']:.2f}, n = {wr.get('n')}"
                if wr.get("ci_low") is not None else "no ID win rate")
    return {"aim": AIM, "reached": reached,
            "sentence": f"Aim {'reached' if reached else 'not reached'}: {AIM}; measured {measured}."}


def hacking_summary(out: Path) -> dict | None:
    """`--hacking`: GRPO on the reward model with the checker as gold: the monitor's summary, the per-step proxy,
    gold and KL, and the sentence of what the curves show."""
    from rlaif.report.training_page import hacking_sentence

    run = out / "hacking"
    if not (run / "train_result.json").exists():
        return None
    res = read_json_file(run / "train_result.json")
    keys = ("step", "reward", "gold", "gold/spearman", "kl_k3")
    curve = [{k: r.get(k) for k in keys} for r in _curve(run / "metrics.jsonl") if r.get("split") == "train"]
    return {"proxy": "the trained reward model (rm)", "gold": "the rule checker (share of constraints met)",
            "steps": res["steps"], "stopped_by": res["stopped_by"], "seconds": res["train_seconds"],
            "monitor": res.get("hacking"), "curve": curve,
            "sentence": hacking_sentence(res["hacking"]) if res.get("hacking") else None}


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
    reached = aim(primaries)
    settings = {k[3:]: v for k, v in plan.items() if k.startswith("rl_")}
    return {
        "algorithm": plan.get("rl_algorithm"), "reward": "rule (share of constraints met)", "settings": settings,
        "n_prompts": sum(1 for _ in iter_json_lines(out / "prompts_train.jsonl")),
        "steps": res["steps"], "stopped_by": res["stopped_by"], "seconds": res["train_seconds"],
        "reward_first": curve[0]["reward"] if curve else None,
        "reward_last": curve[-1]["reward"] if curve else None,
        "kl_last": {k: res["train"].get(k) for k in ("kl_k1", "kl_k3") if k in res["train"]},
        "curve": curve,
        "evaluation": {"policy": policy, "baseline": baseline, "splits": splits,
                       "generalization_gap": _gap(ev.get("generalization_gap"))},
        "verdicts": verdicts,
        "aim": AIM, "aim_reached": reached["reached"], "aim_sentence": reached["sentence"],
    }


def eval_pairs(out: Path, splits: list[str], limit: int = 12) -> list[EvalPair]:
    """Evaluation pairs as the checker saw them: its first label on each pair, split by split, each split read
    until `limit` pairs are collected in all (the report shows `limit` and counts the rest)."""
    pairs: list[EvalPair] = []
    for split in splits:
        path = out / "eval" / split / "labels.jsonl"
        if not path.exists():
            continue
        seen = set()
        for lb in read_jsonl(path, Label):
            if not lb.rater.startswith("rule@") or lb.item in seen:
                continue
            seen.add(lb.item)
            pairs.append(EvalPair(split, lb))
            if len(pairs) >= limit:
                break
    return pairs


def demo_report(out: Path, summary: dict) -> DemoReport:
    """What report.html shows: the summary and the evaluation pairs behind it."""
    return DemoReport(summary, eval_pairs(Path(out), list(summary["evaluation"]["splits"])))
