"""The online-DPO report (`report.md`, `report.html`) from online_dpo.json: round by round, how reliable the
judges were (position consistency, first-position rate, accuracy against the checker), how many labels were
soft, and how the policy's reward and the DPO metrics moved."""
from __future__ import annotations

from typing import Any

from rlaif.report.html import Section, figure, metrics, new_figure, paragraph, render_page, table
from rlaif.report.markdown import md_table

DEFINITIONS = (
    ("position consistency", "share of pairs shown in both orders where the judge named the same winner both times"),
    ("first-position rate", "share of decisive verdicts that went to the answer shown first (0.5 = no position bias)"),
    ("accuracy vs checker", "share of the judge's verdicts equal to the rule checker's, where the checker decided"),
    ("soft labels", "preferences with p_chosen < 1: the jury was split (e.g. the judge's two orders disagreed)"),
    ("all-pass rate", "share of the round's samples meeting every constraint of their prompt, 95% interval "
                      "clustered by prompt; round r's samples come from the policy after r-1 rounds of DPO"),
)


def _policy_name(r: int) -> str:
    return "start" if r == 1 else f"after round {r - 1}"


def _reward_row(r: int, reward: dict | None) -> dict[str, Any]:
    c = (reward or {}).get("checker") or {}
    row: dict[str, Any] = {"policy": _policy_name(r), "samples": (reward or {}).get("n_responses"),
                           "all-pass rate": c.get("all_pass_rate"), "ci low": c.get("ci_low"),
                           "ci high": c.get("ci_high"), "share of constraints met": c.get("share_passed")}
    for rater, s in ((reward or {}).get("judges") or {}).items():
        row[f"mean score {rater}"] = s["mean"]
    return row


def reward_rows(summary: dict) -> list[dict[str, Any]]:
    rows = [_reward_row(rd["round"], rd["reward"]) for rd in summary["rounds"]]
    if summary.get("final"):
        rows.append(_reward_row(len(summary["rounds"]) + 1, summary["final"]["reward"]))
    return rows


def round_rows(summary: dict) -> list[dict[str, Any]]:
    rows = []
    for rd in summary["rounds"]:
        train = (rd.get("dpo") or {}).get("train") or {}
        rows.append({"round": rd["round"], "pairs": rd["labels"]["n_pairs"],
                     "preferences": rd["labels"]["n_preferences"], "ties": rd["labels"]["n_ties"],
                     "soft labels": rd["soft_labels"]["n"], "mean p_chosen": rd["soft_labels"]["mean_p_chosen"],
                     "DPO steps": (rd.get("dpo") or {}).get("steps"), "loss": train.get("loss"),
                     "reward accuracy": train.get("reward_accuracy"), "KL (data)": train.get("kl")})
    return rows


def judge_rows(summary: dict) -> list[dict[str, Any]]:
    return [{"round": rd["round"], "judge": rater, "position consistency": j["position_consistency"],
             "first-position rate": j["first_position_rate"], "accuracy vs checker": j["accuracy_vs_checker"],
             "flip rate": j["flip_rate"], "invalid rate": j["invalid_rate"]}
            for rd in summary["rounds"] for rater, j in rd["judges"].items()]


def render_online_dpo_md(summary: dict) -> str:
    out = ["# Online DPO\n\n",
           f"{len(summary['rounds'])} rounds from `{summary['start']}`; reference (frozen): `{summary['reference']}`. "
           f"Judges: {', '.join(f'`{j}`' for j in summary['judges'])}; checker: `{summary['checker'] or 'none'}`.\n\n",
           "## The policy's reward\n\n", md_table(reward_rows(summary)),
           "\n## Labels and training per round\n\n", md_table(round_rows(summary))]
    jr = judge_rows(summary)
    if jr:
        out += ["\n## The judges' reliability per round\n\n", md_table(jr)]
    out += ["\n## Definitions\n\n", *(f"- **{k}**: {v}\n" for k, v in DEFINITIONS)]
    return "".join(out)


def _nan(values: list) -> list[float]:
    return [float("nan") if v is None else v for v in values]


def _series_plot(summary: dict):
    rewards = reward_rows(summary)
    fig, (ax1, ax2) = new_figure(9.0, 3.2, ncols=2)
    xs = list(range(len(rewards)))
    if any(r["all-pass rate"] is not None for r in rewards):
        ax1.plot(xs, _nan([r["all-pass rate"] for r in rewards]), "o-", label="all-pass rate")
        ax1.fill_between(xs, _nan([r["ci low"] for r in rewards]), _nan([r["ci high"] for r in rewards]),
                         alpha=0.2, label="95% interval")
        ax1.plot(xs, _nan([r["share of constraints met"] for r in rewards]), "s--", label="share of constraints met")
        ax1.legend(fontsize=8)
    ax1.set(xticks=xs, xlabel="DPO rounds behind the policy", ylabel="reward (checker)", ylim=(-0.05, 1.05))
    rows = judge_rows(summary)
    for rater in sorted({r["judge"] for r in rows}):
        mine = [r for r in rows if r["judge"] == rater]
        for key, style in (("position consistency", "o-"), ("first-position rate", "^:"),
                           ("accuracy vs checker", "s--")):
            ax2.plot([r["round"] for r in mine], _nan([r[key] for r in mine]), style,
                     label=f"{key} ({rater.split('@')[0]})")
    ax2.set(xticks=[rd["round"] for rd in summary["rounds"]], xlabel="round", ylabel="judge reliability",
            ylim=(-0.05, 1.05))
    if ax2.lines:
        ax2.legend(fontsize=8)
    return fig


def render_online_dpo_html(summary: dict) -> str:
    last = reward_rows(summary)[-1] if summary["rounds"] else {}
    first = reward_rows(summary)[0] if summary["rounds"] else {}
    head = {"rounds": len(summary["rounds"]), "all-pass rate, start": first.get("all-pass rate"),
            "all-pass rate, last": last.get("all-pass rate")}
    sections = [
        Section("Summary", [metrics(head), paragraph(
            f"Reference (frozen for every round): {summary['reference']}. Judges: {', '.join(summary['judges'])}. "
            f"Checker (the audit's gold): {summary['checker'] or 'none'}.", note=True),
            figure(_series_plot(summary), caption="left: the reward of each policy's samples; right: the judges' "
                                                  "reliability, audited each round")]),
        Section("The policy's reward", [table(reward_rows(summary))]),
        Section("Labels and training per round", [table(round_rows(summary))]),
    ]
    if judge_rows(summary):
        sections.append(Section("The judges' reliability per round", [table(judge_rows(summary))]))
    sections.append(Section("Definitions", [table([{"term": k, "meaning": v} for k, v in DEFINITIONS])]))
    return render_page("rlaif online DPO", sections, subtitle=summary["command"],
                       meta={"out": summary["out"], "start": summary["start"]})
