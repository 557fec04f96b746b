"""`rlaif demo`: the whole RLAIF loop, offline, on the embedded default model and the CPU.

Read top to bottom; every step writes plain files under OUT and is skipped on a re-run once its
outputs exist (state.json records finished steps by the names below), so a killed demo resumes where it
stopped — model calls come back from the call cache, training from its last checkpoint.

generate_candidates  the base policy's K samples for the in-distribution instruction prompts, plus a
                     rule-guided revision of each failing sample (rlaif.instructions.revise): the checker's
                     nearest compliant rewrite, so every prompt has candidates that pass and that fail;
label_revisions      each revision against its original with the AI judge (local model, both orders) and
                     with the rule checker (`run_label`);
audit_ai_judge       the AI judge against the checker (`run_audit`: accuracy, position consistency,
                     first-position rate, length bias);
build_preferences    one preference per pair the checker decides; p_chosen mixes the checker's verdict with
                     the AI judge's probability, the judge weighted by its measured accuracy above chance
                     (2·accuracy − 1, floored at 0): a judge with no signal gets no say;
train_reward_model   a reward model and
train_dpo            a DPO policy, each for a fixed time budget;
train_online_rl      online RL (GRPO) for a fixed time budget: the policy samples k answers per training
                     prompt, the checker scores each by the share of its constraints met, group-relative
                     advantages, a k3 KL leash to the base; on the families where the base sometimes complies
                     (keywords and length), so that a group's rewards differ and its advantages are not all zero;
evaluate_dpo         each trained policy vs base (`run_eval`) on later in-distribution prompts (never trained
evaluate_online_rl   on) and on the held-out constraint families (OOD): win rate with CIs, compliance,
                     diversity, KL, gap;
rank_policies        Bradley–Terry ratings of base, DPO and RL policy from the checker's verdicts
                     (`run_leaderboard`);
write_report         demo.json (`demo_summary`) and report.html (self-contained), next to every file behind them.
"""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rlaif.catalog import find
from rlaif.outlock import locks_output
from rlaif.pipelines.resume import Steps
from rlaif.pipelines.resume import log as steps_log
from rlaif.records import (
    Label,
    Prompt,
    Response,
    read_json_file,
    read_jsonl,
    read_prompts,
    write_json,
    write_jsonl,
)

if TYPE_CHECKING:
    from rlaif.report.demo_page import DemoReport

AI_JUDGE = "pairwise-logprob"
RULE_JUDGE = "rule"
REVISION_POLICY = "rule-revision"


@dataclass(frozen=True)
class DemoSize:
    """How big the run is. `train_pool` ID prompts are reserved for training; evaluation starts after them."""

    train_pool: int  # the first N in-distribution prompts (training candidates are drawn only from these)
    train_prompts: int  # how many of them (all constraints revisable) are used
    samples: int  # base samples per training prompt
    max_tokens: int
    rm_seconds: float
    dpo_seconds: float
    eval_prompts: int  # per split
    eval_samples: int
    eval_max_tokens: int
    eval_judges: tuple[str, ...] | None = None  # None: the suite's judges (rule checker + AI judge)
    eval_kl: bool = True
    # online RL on the checker reward; settings chosen on the training prompts only (README, the demo)
    rl_algorithm: str = "grpo"
    rl_seconds: float = 150
    rl_max_steps: int | None = None  # --quick: a couple of steps that prove the path
    rl_k: int = 4  # answers per prompt (a group)
    rl_batch: int = 2  # prompts per step (8 rows: a step fits the time budget several times on 2 cores)
    rl_max_new_tokens: int = 48
    rl_lr: float = 2e-5  # 3e-5 took the KL to 0.42 per token in one step, 0.63 in two (training prompts)
    rl_beta: float = 0.04


FULL = DemoSize(train_pool=120, train_prompts=32, samples=2, max_tokens=48, rm_seconds=30, dpo_seconds=150,
                eval_prompts=12, eval_samples=2, eval_max_tokens=48)
QUICK = DemoSize(train_pool=120, train_prompts=8, samples=2, max_tokens=48, rm_seconds=10, dpo_seconds=30,
                 eval_prompts=5, eval_samples=2, eval_max_tokens=48, eval_judges=("rule",), eval_kl=False,
                 rl_max_steps=2, rl_batch=1)
# The constraint types where the base policy sometimes complies (20-65% of its samples pass, measured), so
# a group of samples gets different rewards; format:title (83%) and the never-met types are left out.
RL_TYPES = frozenset({"words", "include", "exclude", "characters", "frequency"})


def log(msg: str) -> None:
    steps_log("demo", msg)


@locks_output("out", directory=True)
def run_demo(out: Path, quick: bool = False) -> DemoReport:
    """`rlaif demo`: run (or resume) every step; the result is what report.html shows (demo.json and its pairs)."""
    from rlaif.pipelines.demo_summary import demo_report

    plan = QUICK if quick else FULL
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    steps = Steps(out, asdict(plan), command="demo")  # another plan (--quick after a full run) starts over
    t_start = time.perf_counter()
    step = steps.run
    step("generate_candidates", generate_candidates, out, plan)
    step("label_revisions", label_revisions, out)
    step("audit_ai_judge", audit_ai_judge, out)
    step("build_preferences", build_demo_preferences, out)
    step("train_reward_model", train_reward_model, out, plan)
    step("train_dpo", train_dpo_policy, out, plan)
    step("train_online_rl", train_online_policy, out, plan)
    step("evaluate_dpo", evaluate_dpo_policy, out, plan)
    step("evaluate_online_rl", evaluate_online_policy, out, plan)
    step("rank_policies", rank_policies, out)
    step("write_report", write_report, out, plan, steps)
    log(f"finished in {time.perf_counter() - t_start:.0f} s: open {out / 'report.html'}")
    return demo_report(out, read_json_file(out / "demo.json"))


# ---- generate_candidates ---------------------------------------------------------------------------

def training_prompts(plan: DemoSize) -> list[Prompt]:
    """From the first `train_pool` ID prompts, those whose every constraint a rule can repair."""
    from rlaif.instructions.revise import revisable

    pool = read_prompts(find("prompts", "ifeval_id"))[: plan.train_pool]
    usable = [p for p in pool if p.constraints and all(revisable(c) for c in p.constraints)]
    return usable[: plan.train_prompts]


def generate_candidates(out: Path, plan: DemoSize) -> None:
    from rlaif.generate import generate
    from rlaif.instructions.constraints import check
    from rlaif.instructions.revise import revise

    prompts = training_prompts(plan)
    write_jsonl(out / "prompts_train.jsonl", prompts)
    generate(prompts, "local", out / "responses_base.jsonl", samples=plan.samples, temperature=0.8,
             max_tokens=plan.max_tokens, seed=0)
    base = read_jsonl(out / "responses_base.jsonl", Response)
    by_id = {p.prompt_id: p for p in prompts}
    revisions = []
    for r in base:
        if check(by_id[r.prompt_id].constraints, r.response).all_pass:
            continue  # already compliant: nothing to learn from a revision
        text = revise(by_id[r.prompt_id].constraints, r.response)
        if text is not None:
            revisions.append(Response(prompt_id=r.prompt_id, prompt=r.prompt, policy=REVISION_POLICY,
                                      sample=r.sample, response=text, revised_from=f"local#{r.sample}"))
    write_jsonl(out / "candidates.jsonl", [*base, *revisions])


# ---- label_revisions ------------------------------------------------------------------------------

def label_revisions(out: Path) -> None:
    from rlaif.calls.options import CallOptions
    from rlaif.judge.pipeline import run_label
    from rlaif.judge.spec import load_judges

    judges = load_judges([AI_JUDGE, RULE_JUDGE])
    # Each revision against the sample it revises: the pairs that carry a signal (two failing samples
    # are a tie for the checker), and on a CPU every AI-judge call counts.
    run_label(out / "candidates.jsonl", judges, out / "labels", pairing="reference", reference="local", orders="both",
              prompts_path=out / "prompts_train.jsonl", options=CallOptions(progress=True))


def _raters(labels: list[Label]) -> tuple[str, str]:
    ai = next(lb.rater for lb in labels if lb.rater.startswith(AI_JUDGE + "@"))
    rule = next(lb.rater for lb in labels if lb.rater.startswith(RULE_JUDGE + "@"))
    return ai, rule


# ---- audit_ai_judge -------------------------------------------------------------------------------

def audit_ai_judge(out: Path) -> None:
    from rlaif.audit import run_audit

    labels = read_jsonl(out / "labels" / "labels.jsonl", Label)
    _, rule = _raters(labels)
    run_audit(labels, out / "audit", gold=rule)


# ---- build_preferences ----------------------------------------------------------------------------

def judge_weight(audit: dict, rater: str) -> tuple[float, float | None]:
    """(weight, accuracy): accuracy against the checker above chance, 2·acc − 1 floored at 0."""
    acc = (audit["raters"].get(rater) or {}).get("accuracy") or {}
    value = acc.get("value") if isinstance(acc, dict) else acc
    if value is None:
        return 0.0, None
    return max(0.0, 2.0 * value - 1.0), value


def build_demo_preferences(out: Path) -> None:
    """`rlaif label`'s preference builder on the labeled pairs, with the checker-led jury weighted by the audit."""
    from rlaif.judge.jury import checker_led
    from rlaif.judge.pairing import reference_pairs
    from rlaif.judge.preferences import build_preferences

    labels = read_jsonl(out / "labels" / "labels.jsonl", Label)
    ai, rule = _raters(labels)
    audit = read_json_file(out / "audit" / "audit.json")
    w, acc = judge_weight(audit, ai)
    pairs = reference_pairs(read_jsonl(out / "candidates.jsonl", Response), "local")  # the pairs label_revisions made
    prefs = build_preferences(pairs, labels, jury=lambda v: checker_led(v, rule, ai, w)).preferences
    write_jsonl(out / "preferences.jsonl", prefs)
    write_json(out / "preferences_summary.json", {
        "n_pairs": len({lb.item for lb in labels}), "n_preferences": len(prefs),
        "checker": rule, "ai_judge": ai, "ai_judge_accuracy": acc, "ai_judge_weight": w,
        "rule": "p_chosen = (p_checker + w * p_ai_judge) / (1 + w), w = max(0, 2 * accuracy - 1)",
        "mean_p_chosen": sum(p.p_chosen for p in prefs) / len(prefs) if prefs else None,
        "chosen_policies": dict(Counter(str(p.chosen_policy) for p in prefs)),
    })


# ---- train_reward_model, train_dpo, train_online_rl ----------------------------------------------

def _train_common(out: Path, seconds: float) -> dict[str, Any]:
    return dict(data=str(out / "preferences.jsonl"), model="local", max_seconds=seconds, epochs=4,
                max_length=256, max_prompt_length=128, batch_size=4, micro_batch_size=4, eval_fraction=0.15,
                save_every=5, seed=0)


def train_reward_model(out: Path, plan: DemoSize) -> None:
    from rlaif.train import train_rm

    train_rm(out=str(out / "rm"), lr=2e-5, **_train_common(out, plan.rm_seconds))


def train_dpo_policy(out: Path, plan: DemoSize) -> None:
    from rlaif.train import train_dpo

    train_dpo(out=str(out / "dpo"), lr=2e-5, beta=0.1, **_train_common(out, plan.dpo_seconds))


def rl_prompts(plan: DemoSize) -> list[Prompt]:
    """From the training pool only, the prompts whose every constraint is of a type in RL_TYPES."""
    pool = read_prompts(find("prompts", "ifeval_id"))[: plan.train_pool]
    return [p for p in pool if p.constraints and all(c["type"] in RL_TYPES for c in p.constraints)]


def train_online_policy(out: Path, plan: DemoSize) -> None:
    from rlaif.rewards import build_reward_fn
    from rlaif.train import train

    write_jsonl(out / "prompts_rl.jsonl", rl_prompts(plan))
    # Threads pinned to the 2 cores the demo is sized for, rather than torch's choice.
    with build_reward_fn([RULE_JUDGE]) as reward:  # graded: the share of the prompt's constraints met
        train(plan.rl_algorithm, None, reward, prompts=str(out / "prompts_rl.jsonl"), model="local",
              out=str(out / "rl"), k=plan.rl_k, batch_size=plan.rl_batch, micro_batch_size=plan.rl_k * plan.rl_batch,
              max_new_tokens=plan.rl_max_new_tokens, temperature=1.0, lr=plan.rl_lr, beta=plan.rl_beta,
              epochs=100, max_steps=plan.rl_max_steps, max_seconds=plan.rl_seconds, save_every=2, threads=2, seed=0)


# ---- evaluate_dpo, evaluate_online_rl, rank_policies ----------------------------------------------

def _suite(judges: tuple[str, ...] | None):
    from rlaif.eval.suite import load_suite, suite_from_dict

    suite = load_suite("ifeval")
    if judges is None:  # the suite's judges
        return suite
    return suite_from_dict(suite.spec.model_dump() | {"judges": list(judges)}, suite.path)


def evaluate_dpo_policy(out: Path, plan: DemoSize) -> None:
    from rlaif.eval.runner import run_eval

    # --quick skips the slow judges; the full run keeps the suite's
    run_eval(_suite(plan.eval_judges), f"dpo=hf:{out / 'dpo'}", "local", out / "eval", limit=plan.eval_prompts,
             samples=plan.eval_samples, max_tokens=plan.eval_max_tokens, temperature=0.7,
             reward_model=str(out / "rm"), kl=plan.eval_kl, prompts_offset=plan.train_pool)


def evaluate_online_policy(out: Path, plan: DemoSize) -> None:
    """The RL policy against the same base on the same prompts and samples (the base's answers come back
    from the call cache); judged by the checker, the reward it was trained on, with the KL beside it."""
    from rlaif.eval.runner import run_eval

    run_eval(_suite((RULE_JUDGE,)), f"{plan.rl_algorithm}=hf:{out / 'rl'}", "local", out / "eval_rl",
             limit=plan.eval_prompts, samples=plan.eval_samples, max_tokens=plan.eval_max_tokens, temperature=0.7,
             kl=True, prompts_offset=plan.train_pool)


def rank_policies(out: Path) -> None:
    """Bradley–Terry ratings of the policies from the checker's verdicts on every evaluation pair (base vs DPO
    and base vs the RL policy: three policies on one scale) -> eval/battles.jsonl, eval/leaderboard.*."""
    from rlaif.elo import read_battles, run_leaderboard

    battles = [lb for ev in ("eval", "eval_rl") for split in sorted((out / ev).iterdir())
               if (split / "labels.jsonl").exists()
               for lb in read_jsonl(split / "labels.jsonl", Label) if lb.rater.startswith(RULE_JUDGE + "@")]
    write_jsonl(out / "eval" / "battles.jsonl", battles)
    run_leaderboard(read_battles(out / "eval" / "battles.jsonl"), out / "eval", rounds=1000, seed=0)


# ---- write_report ---------------------------------------------------------------------------------

def write_report(out: Path, plan: DemoSize, steps: Steps) -> None:
    from rlaif.pipelines.demo_summary import build_demo_summary, demo_report
    from rlaif.records import write_text
    from rlaif.report.demo_page import render_demo_html

    summary = build_demo_summary(out, asdict(plan), steps.done)
    write_json(out / "demo.json", summary)
    write_text(out / "report.html", render_demo_html(demo_report(out, summary)))
