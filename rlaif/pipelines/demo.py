"""`rlaif demo`: the whole RLAIF loop, offline, on the embedded default model and the CPU.

Read top to bottom; every step writes plain files under OUT and is skipped on a re-run once its
outputs exist (state.json records finished steps by the names below), so a killed demo resumes where it
stopped — model calls come back from the call cache, training from its last checkpoint.

generate_candidates  the base policy's samples for the training pool's instruction prompts (the first
                     `train_pool` ID prompts: format, length and keyword constraints), plus a rule-guided
                     revision of each failing sample (rlaif.instructions.revise): the checker's nearest
                     compliant rewrite, so prompts have candidates that pass and that fail;
label_pairs          every pair of a prompt's candidates with the rule checker (`run_label`): the pairs whose
                     verdict is decisive become the training preferences;
audit_ai_judge       the AI judge (local model, both orders) on the revision pairs of the first `audit_prompts`
                     prompts, audited against the checker (`run_audit`: accuracy, position consistency,
                     first-position rate, length bias): its lack of signal is a finding, so it judges nothing else;
build_preferences    one preference per pair the checker decides; p_chosen mixes the checker's verdict with
                     the AI judge's probability where it judged, weighted by its measured accuracy above chance
                     (2·accuracy − 1, floored at 0): a judge with no signal gets no say;
train_reward_model   a reward model and
train_dpo            a DPO policy, each for a fixed number of steps;
train_online_rl      online RL (GRPO) for a fixed number of steps on the same training pool: the policy samples k
                     answers per prompt, the checker scores each by the share of its constraints met,
                     group-relative advantages, a k3 KL leash to the base;
evaluate_dpo         each trained policy vs base (`run_eval`) on unseen ID prompts (after the training pool:
evaluate_online_rl   the families trained on) and on the held-out constraint families (OOD), by the checker and
                     the trained reward model: win rate with CIs, compliance, diversity, KL to the base, gap;
rank_policies        Bradley–Terry ratings of base, DPO and RL policy from the checker's verdicts
                     (`run_leaderboard`);
reward_hacking       (`--hacking` only) GRPO against the trained reward model as the proxy, with the checker as
                     gold (`--gold-reward`): the over-optimization picture, gold vs proxy as the KL grows;
write_report         demo.json (`demo_summary`) and report.html (self-contained), next to every file behind them.

Settings were chosen on training prompts only (the README says how); `--seed N` changes every sampling and
training seed, never the prompts, so the verdicts can be checked beyond one seed.
"""
from __future__ import annotations

import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rlaif.catalog import prompt_set
from rlaif.hardware import bf16_is_faster
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
    train_prompts: int  # how many of them are used
    samples: int  # base samples per training prompt
    max_tokens: int
    audit_prompts: int  # prompts whose revision pairs the AI judge labels for its audit
    rm_steps: int  # training budgets in optimizer steps, not seconds: the same run on any machine, any load
    dpo_steps: int
    eval_prompts_id: int  # unseen ID prompts (after the training pool); each gets eval_samples answers a policy
    eval_prompts_ood: int
    eval_samples: int
    eval_max_tokens: int
    eval_kl: bool = True
    seed: int = 0  # every sampling and training seed (`--seed`); never the prompts
    # online RL on the checker reward; settings chosen on the training prompts only (README, the demo)
    rl_algorithm: str = "grpo"
    rl_steps: int = 14  # about 11 s a step here (fp32, 4 prompts x 4 answers)
    rl_k: int = 4  # answers per prompt (a group)
    rl_batch: int = 4  # prompts per step
    rl_max_new_tokens: int = 48
    rl_lr: float = 4e-5  # with T 0.7 and 14 steps: a checker win over the base on the training pool, seeds 0-2
    rl_beta: float = 0.04
    rl_temperature: float = 0.7  # rollouts at the evaluation's temperature: what is reinforced is what is sampled
    dpo_lr: float = 2e-5
    hacking_steps: int = 12  # --hacking: GRPO against the reward model, the checker as gold
    # bf16 where it measures faster (`demo_precision`): sampling from bf16 weights and mixed-precision training;
    # the KL's log-probabilities stay fp32
    precision: str = "fp32"


# ID: 90 comparisons (45 prompts x 2 samples). GRPO's gain is small (0.61-0.65 on the training pool), and at 60
# comparisons (ties are about half) its 95% interval cleared 0.5 in only some draws of evaluation answers for the
# same policies. OOD: 60 (30 prompts x 2).
FULL = DemoSize(train_pool=120, train_prompts=76, samples=2, max_tokens=48, audit_prompts=10, rm_steps=5,
                dpo_steps=20, eval_prompts_id=45, eval_prompts_ood=30, eval_samples=2, eval_max_tokens=48)
QUICK = DemoSize(train_pool=120, train_prompts=12, samples=2, max_tokens=48, audit_prompts=4, rm_steps=2,
                 dpo_steps=3, eval_prompts_id=5, eval_prompts_ood=5, eval_samples=2, eval_max_tokens=48, rl_steps=2,
                 rl_batch=2, hacking_steps=2)


def log(msg: str) -> None:
    steps_log("demo", msg)


def demo_precision(out: Path) -> str:
    """bf16 where it runs clearly faster than fp32 here (`rlaif.hardware`: CUDA, or a CPU where a timed matrix
    product says so), else fp32. A resumed run keeps the precision it started with (OUT/state.json), so a
    re-measurement cannot restart it."""
    state = out / "state.json"
    if state.exists():
        started = (read_json_file(state).get("plan") or {}).get("precision")
        if started in ("bf16", "fp32"):
            return started
    return "bf16" if bf16_is_faster() else "fp32"


@locks_output("out", directory=True)
def run_demo(out: Path, quick: bool = False, seed: int = 0, hacking: bool = False) -> DemoReport:
    """`rlaif demo`: run (or resume) every step; the result is what report.html shows (demo.json and its pairs)."""
    from rlaif.pipelines.demo_summary import demo_report

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    plan = replace(QUICK if quick else FULL, seed=seed, precision=demo_precision(out))
    steps = Steps(out, asdict(plan), command="demo")  # another plan (--quick, --seed) starts over
    t_start = time.perf_counter()
    step = steps.run
    step("generate_candidates", generate_candidates, out, plan)
    step("label_pairs", label_pairs, out)
    step("audit_ai_judge", audit_ai_judge, out, plan)
    step("build_preferences", build_demo_preferences, out)
    step("train_reward_model", train_reward_model, out, plan)
    step("train_dpo", train_dpo_policy, out, plan)
    step("train_online_rl", train_online_policy, out, plan)
    step("evaluate_dpo", evaluate_dpo_policy, out, plan)
    step("evaluate_online_rl", evaluate_online_policy, out, plan)
    step("rank_policies", rank_policies, out)
    if hacking:
        step("reward_hacking", reward_hacking_run, out, plan)
    step("write_report", write_report, out, plan, steps, always=True)
    log(f"finished in {time.perf_counter() - t_start:.0f} s: open {out / 'report.html'}")
    return demo_report(out, read_json_file(out / "demo.json"))


# ---- generate_candidates ---------------------------------------------------------------------------

def training_prompts(plan: DemoSize) -> list[Prompt]:
    """From the first `train_pool` ID prompts, those whose every constraint a rule can repair."""
    from rlaif.instructions.revise import revisable

    pool = read_prompts(prompt_set("ifeval_id"))[: plan.train_pool]
    usable = [p for p in pool if p.constraints and all(revisable(c) for c in p.constraints)]
    return usable[: plan.train_prompts]


def generate_candidates(out: Path, plan: DemoSize) -> None:
    from rlaif.generate import generate
    from rlaif.instructions.constraints import check
    from rlaif.instructions.revise import revise

    prompts = training_prompts(plan)
    write_jsonl(out / "prompts_train.jsonl", prompts)
    generate(prompts, "local", out / "responses_base.jsonl", samples=plan.samples, temperature=0.8,
             max_tokens=plan.max_tokens, seed=plan.seed, precision=plan.precision)
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


# ---- label_pairs -----------------------------------------------------------------------------------

def label_pairs(out: Path) -> None:
    from rlaif.calls.options import CallOptions
    from rlaif.judge.pipeline import run_label
    from rlaif.judge.spec import load_judges

    # Every pair of a prompt's candidates (samples and revisions): the checker costs nothing per pair, and a
    # passing sample against a failing one teaches as much as a revision against its original.
    run_label(out / "candidates.jsonl", load_judges([RULE_JUDGE]), out / "labels", pairing="all", orders="ab",
              prompts_path=out / "prompts_train.jsonl", seed=0, options=CallOptions(progress=True))


# ---- audit_ai_judge -------------------------------------------------------------------------------

def audit_ai_judge(out: Path, plan: DemoSize) -> None:
    """The AI judge and the checker on the revision pairs of the first `audit_prompts` prompts with revisions,
    both orders; the audit takes the checker as gold."""
    from rlaif.audit import run_audit
    from rlaif.calls.options import CallOptions
    from rlaif.judge.pipeline import run_label
    from rlaif.judge.spec import load_judges

    cands = read_jsonl(out / "candidates.jsonl", Response)
    revised = sorted({r.prompt_id for r in cands if r.policy == REVISION_POLICY})[: plan.audit_prompts]
    write_jsonl(out / "candidates_audit.jsonl", [r for r in cands if r.prompt_id in set(revised)])
    run_label(out / "candidates_audit.jsonl", load_judges([AI_JUDGE, RULE_JUDGE]), out / "labels_audit",
              pairing="reference", reference="local", orders="both", prompts_path=out / "prompts_train.jsonl",
              options=CallOptions(progress=True))
    labels = read_jsonl(out / "labels_audit" / "labels.jsonl", Label)
    _, rule = _raters(labels)
    run_audit(labels, out / "audit", gold=rule)


def _raters(labels: list[Label]) -> tuple[str, str]:
    ai = next(lb.rater for lb in labels if lb.rater.startswith(AI_JUDGE + "@"))
    rule = next(lb.rater for lb in labels if lb.rater.startswith(RULE_JUDGE + "@"))
    return ai, rule


# ---- build_preferences ----------------------------------------------------------------------------

def judge_weight(audit: dict, rater: str) -> tuple[float, float | None]:
    """(weight, accuracy): accuracy against the checker above chance, 2·acc − 1 floored at 0."""
    acc = (audit["raters"].get(rater) or {}).get("accuracy") or {}
    value = acc.get("value") if isinstance(acc, dict) else acc
    if value is None:
        return 0.0, None
    return max(0.0, 2.0 * value - 1.0), value


def build_demo_preferences(out: Path) -> None:
    """`rlaif label`'s preference builder on the checker's pairs, the checker-led jury weighting the AI judge (where
    it judged) by the audit."""
    from rlaif.judge.jury import checker_led
    from rlaif.judge.pairing import all_pairs
    from rlaif.judge.preferences import build_preferences

    audited = read_jsonl(out / "labels_audit" / "labels.jsonl", Label)
    ai, rule = _raters(audited)
    labels = read_jsonl(out / "labels" / "labels.jsonl", Label) + [lb for lb in audited if lb.rater == ai]
    audit = read_json_file(out / "audit" / "audit.json")
    w, acc = judge_weight(audit, ai)
    pairs = all_pairs(read_jsonl(out / "candidates.jsonl", Response))  # the pairs label_pairs made
    prefs = build_preferences(pairs, labels, jury=lambda v: checker_led(v, rule, ai, w)).preferences
    write_jsonl(out / "preferences.jsonl", prefs)
    write_json(out / "preferences_summary.json", {
        "n_pairs": len(pairs), "n_preferences": len(prefs),
        "checker": rule, "ai_judge": ai, "ai_judge_accuracy": acc, "ai_judge_weight": w,
        "rule": "p_chosen = (p_checker + w * p_ai_judge) / (1 + w), w = max(0, 2 * accuracy - 1)",
        "mean_p_chosen": sum(p.p_chosen for p in prefs) / len(prefs) if prefs else None,
        "chosen_policies": dict(Counter(str(p.chosen_policy) for p in prefs)),
    })


# ---- train_reward_model, train_dpo, train_online_rl ----------------------------------------------

def _train_common(out: Path, plan: DemoSize, steps: int) -> dict[str, Any]:
    return dict(data=str(out / "preferences.jsonl"), model="local", max_steps=steps, epochs=4,
                max_length=256, max_prompt_length=128, batch_size=4, micro_batch_size=4, eval_fraction=0.15,
                save_every=10, seed=plan.seed, precision=plan.precision)


def train_reward_model(out: Path, plan: DemoSize) -> None:
    from rlaif.train import train_rm

    train_rm(out=str(out / "rm"), lr=2e-5, **_train_common(out, plan, plan.rm_steps))


def train_dpo_policy(out: Path, plan: DemoSize) -> None:
    from rlaif.train import train_dpo

    train_dpo(out=str(out / "dpo"), lr=plan.dpo_lr, beta=0.1, **_train_common(out, plan, plan.dpo_steps))


def _grpo(out: Path, plan: DemoSize, run: str, reward: list[str], gold: list[str], steps: int,
          **extra: Any) -> None:
    from rlaif.report.training_page import write_training_page
    from rlaif.rewards import build_reward_fn
    from rlaif.train import train

    # Threads pinned to the 2 cores the demo is sized for, rather than torch's choice. One checkpoint mid-run
    # (each writes 1.6 GB: about 5 s here) besides the one at the end.
    with ExitStack() as stack:
        reward_fn = stack.enter_context(build_reward_fn(reward))
        gold_fn = stack.enter_context(build_reward_fn(gold)) if gold else None
        train(plan.rl_algorithm, None, reward_fn, gold_fn, prompts=str(out / "prompts_train.jsonl"), model="local",
              out=str(out / run), k=plan.rl_k, batch_size=plan.rl_batch,
              micro_batch_size=plan.rl_k * plan.rl_batch, max_new_tokens=plan.rl_max_new_tokens,
              temperature=plan.rl_temperature,
              lr=plan.rl_lr, beta=plan.rl_beta, epochs=100, max_steps=steps,
              save_every=max(1, steps // 2), threads=2, seed=plan.seed, precision=plan.precision, **extra)
    write_training_page(out / run)


def train_online_policy(out: Path, plan: DemoSize) -> None:
    _grpo(out, plan, "rl", [RULE_JUDGE], [], plan.rl_steps)  # graded: the share of the prompt's constraints met


# ---- evaluate_dpo, evaluate_online_rl, rank_policies ----------------------------------------------

def _suite(plan: DemoSize):
    """The ifeval suite judged by the checker only (the AI judge's audit showed it at chance), sampled with the
    demo's seed."""
    from rlaif.eval.suite import load_suite, suite_from_dict

    spec = load_suite("ifeval").spec.model_dump()
    spec["judges"] = [RULE_JUDGE]
    spec["splits"]["id"]["limit"], spec["splits"]["ood"]["limit"] = plan.eval_prompts_id, plan.eval_prompts_ood
    spec["generation"] = spec["generation"] | {"seed": plan.seed}
    return suite_from_dict(spec, load_suite("ifeval").path)


def _evaluate(out: Path, plan: DemoSize, policy: str, into: str) -> None:
    from rlaif.eval.runner import run_eval

    # the trained reward model judges too (a second opinion beside the checker); the KL to the base beside them, on
    # the ID split only: the distribution trained on (and the OOD estimate would cost the two models' forwards again)
    run_eval(_suite(plan), policy, "local", out / into, samples=plan.eval_samples,
             max_tokens=plan.eval_max_tokens, temperature=0.7, reward_model=str(out / "rm"), kl=plan.eval_kl,
             prompts_offset=plan.train_pool, kl_kinds=("id",), precision=plan.precision)


def evaluate_dpo_policy(out: Path, plan: DemoSize) -> None:
    _evaluate(out, plan, f"dpo=hf:{out / 'dpo'}", "eval")


def evaluate_online_policy(out: Path, plan: DemoSize) -> None:
    """The RL policy against the same base on the same prompts and samples (the base's answers come back from
    the call cache)."""
    _evaluate(out, plan, f"{plan.rl_algorithm}=hf:{out / 'rl'}", "eval_rl")


def rank_policies(out: Path) -> None:
    """Bradley–Terry ratings of the policies from the checker's verdicts on every evaluation pair (base vs DPO
    and base vs the RL policy: three policies on one scale) -> eval/battles.jsonl, eval/leaderboard.*."""
    from rlaif.elo import read_battles, run_leaderboard

    battles = [lb for ev in ("eval", "eval_rl") for split in sorted((out / ev).iterdir())
               if (split / "labels.jsonl").exists()
               for lb in read_jsonl(split / "labels.jsonl", Label) if lb.rater.startswith(RULE_JUDGE + "@")]
    write_jsonl(out / "eval" / "battles.jsonl", battles)
    run_leaderboard(read_battles(out / "eval" / "battles.jsonl"), out / "eval", rounds=1000, seed=0)


# ---- reward_hacking (--hacking) -------------------------------------------------------------------

def reward_hacking_run(out: Path, plan: DemoSize) -> None:
    """GRPO on the trained reward model as the proxy, the checker as gold: the monitor's onset test and the
    over-optimization picture (training.html in OUT/hacking)."""
    _grpo(out, plan, "hacking", [f"rm:{out / 'rm'}"], [RULE_JUDGE], plan.hacking_steps, hacking_window=3)


# ---- write_report ---------------------------------------------------------------------------------

def write_report(out: Path, plan: DemoSize, steps: Steps) -> None:
    from rlaif.pipelines.demo_summary import build_demo_summary, demo_report
    from rlaif.records import write_text
    from rlaif.report.demo_page import render_demo_html

    summary = build_demo_summary(out, asdict(plan), steps.done)
    write_json(out / "demo.json", summary)
    write_text(out / "report.html", render_demo_html(demo_report(out, summary)))
