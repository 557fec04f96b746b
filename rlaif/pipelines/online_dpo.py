"""`rlaif train online-dpo`: rounds of sample → judge → audit → DPO, the policy sampling its own training pairs.

    rlaif train online-dpo --prompts P --model M --judge pairwise -o OUT [rounds=3 k=4 steps_per_round=8 ...]

Each round r writes OUT/round_{r}/:

1. sample  k responses per prompt from the current policy (`rlaif.generate` on `hf:POLICY`; the call cache
           keys a local model by its weights' fingerprint, so a resumed round repays nothing and a retrained
           policy is never answered from the cache) -> prompts.jsonl, responses.jsonl;
2. label   every pair of a prompt's samples with the judge(s), both orders, plus the rule checker when the
           prompts carry constraints (`rlaif.judge.run_label`) -> labels/ (labels, scores, preferences,
           summary). The jury (`mean` by default) averages each judge's two orders, so a pair whose
           order-flipped verdicts disagree gets a soft p_chosen instead of a hard one;
3. audit   the judges: position consistency, first-position rate, accuracy against the checker as gold
           (`rlaif.audit.run_audit`, as `rlaif audit`) -> audit/;
4. train   `steps_per_round` DPO steps on the round's preferences, starting from the current policy, against
           the FROZEN reference: the starting model (or `reference`), never the previous round's policy
           -> dpo/ (the next round's policy);
5. summary the round's figures: judge reliability, soft labels, the samples' reward (the checker's share of
           constraints met, pointwise judges' mean scores), DPO metrics -> round.json.

After the last round the final policy is sampled once more (round N+1's sample step: its reward closes the
series). OUT/online_dpo.json, report.md and report.html show round by round how the judge's reliability and
the policy's reward moved. OUT/state.json records finished steps: a killed run resumes at the first
unfinished one, and a re-run with a larger `rounds` continues a finished run.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rlaif.catalog import prompt_set, select
from rlaif.errors import ConfigError
from rlaif.outlock import output_lock
from rlaif.pipelines.resume import Steps
from rlaif.records import (
    Label,
    Preference,
    Prompt,
    Response,
    read_json_file,
    read_jsonl,
    read_prompts,
    write_json,
    write_jsonl,
    write_text,
)
from rlaif.train.config import CONFIG_DIR, CONFIGS, DPOConfig, config_data, flat_dump, resolve_config, validate

if TYPE_CHECKING:
    from rlaif.calls.options import CallOptions

COMMAND = "online-dpo"
DEFAULT_CONFIG = CONFIG_DIR / "online-dpo.yaml"
# DPO keys the loop sets itself each round (refused when given), with what to use instead
MANAGED = {"data": "each round trains on its own labels", "eval_data": "each round trains on its own labels",
           "max_steps": "use steps_per_round", "epochs": "use steps_per_round",
           "resume": "a re-run always resumes (state.json)"}
# keys that may change between a run and its continuation (more rounds continue a finished run), and the
# managed ones, which are never set
RESUMABLE = {"rounds", "threads", "save_every", "log_every", "eval_every", "out", *MANAGED}


class OnlineDPOConfig(BaseModel):
    """The loop's keys, and the DPO config every round trains with (`dpo`). Users write the DPO keys (beta, lr,
    lora, batch_size, model, out, seed, ...) at the top level, as in a DPO config: `beta=0.2` sets `dpo.beta`."""

    model_config = ConfigDict(extra="forbid")
    FLAT_SECTIONS: ClassVar[tuple[str, ...]] = ("dpo",)

    dpo: DPOConfig  # model, reference, seed, device and out are the loop's too
    prompts: str | None = None  # a prompts JSONL or a built-in prompt set (constraints feed the rule checker)
    prompts_offset: int = Field(0, ge=0)  # skip the first N prompts (--offset)
    prompts_limit: int | None = Field(None, gt=0)  # then read only N prompts (--limit); null: all the rest
    judges: list[str] = Field(default_factory=list)  # --judge: built-in names or judge YAML files
    judge_models: list[str] = Field(default_factory=list)  # --judge-model: once for all judges or once per judge
    rounds: int = Field(3, gt=0)
    k: int = Field(4, ge=2)  # samples per prompt per round (every pair of them is judged)
    steps_per_round: int = Field(8, gt=0)  # DPO optimizer steps per round
    prompts_per_round: int | None = Field(None, gt=0)  # None: every prompt each round; else the next N, cycling
    temperature: float = Field(0.8, gt=0)  # sampling temperature of the policy's k samples
    max_tokens: int = Field(64, gt=0)  # new tokens per sample
    jury: Literal["majority", "mean", "dawid-skene"] = "mean"
    min_p_chosen: float = Field(0.0, ge=0.0, le=1.0)  # drop preferences the jury is less sure of
    rule: bool = True  # add the rule checker to the jury when the prompts carry constraints
    # --gold-reward: reward specs scored on each round's samples, never trained on: the round's gold reward and
    # each judge's agreement with it on the round's pairs (the checker already plays this part when present)
    gold_reward: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _hold_dpo_keys(cls, data: Any) -> Any:
        """The DPO keys written at the top level go into `dpo` (none of those the loop sets itself); a round
        trains on all of its preferences unless `eval_fraction` says otherwise."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        section = dict(data.pop("dpo", None) or {})
        section.update({k: data.pop(k) for k in list(data)
                        if k in DPOConfig.model_fields and k not in cls.model_fields})
        for key, why in MANAGED.items():
            if key in section and section[key] not in (None, DPOConfig.model_fields[key].default):
                raise ValueError(f"'{key}' is set by online-dpo itself ({why})")
        section.setdefault("eval_fraction", 0.0)
        return {**data, "dpo": section}


def load_online_config(path: str | Path | None = DEFAULT_CONFIG, overrides: list[str] | None = None,
                       **values: Any) -> OnlineDPOConfig:
    """defaults < YAML file < key=value overrides < keyword values; unknown keys are refused with a hint."""
    data, source = config_data(path, overrides, example=DEFAULT_CONFIG, **values)
    return validate(COMMAND, data, source, configs={**CONFIGS, COMMAND: OnlineDPOConfig})


def _resolve(config: OnlineDPOConfig | dict | None, overrides: dict[str, Any]) -> OnlineDPOConfig:
    return resolve_config(COMMAND, config, overrides, configs={**CONFIGS, COMMAND: OnlineDPOConfig}, skip_none=True,
                          required={"prompts": "no prompts given. Fix: pass --prompts FILE (a prompts JSONL or a "
                                               "built-in set)",
                                    "out": "no output directory given. Fix: pass -o OUTDIR"})


@dataclass
class OnlineDPOState:
    """One online DPO run across its rounds: what every round reads (the config, the prompts, the jury, where
    the starting model and reference are) and which steps are finished (`steps`, state.json)."""

    cfg: OnlineDPOConfig
    out: Path
    prompts: list[Prompt]
    judges: list[Any]  # rlaif.judge Judge objects
    checker: str | None  # the rule checker's rater id, the audit's gold; None without constraints
    start: str  # the starting policy's directory
    reference: str  # the frozen reference's directory (the starting policy unless `reference` is set)
    steps: Steps
    calls: CallOptions  # how judge calls are made

    def dir(self, r: int) -> Path:
        return self.out / f"round_{r}"


@dataclass(frozen=True)
class OnlineDPORun:
    """What `run_online_dpo` wrote: online_dpo.json's content and the folder holding it, report.md, report.html
    and the rounds."""

    result: dict[str, Any]
    out: Path

    @property
    def summary(self) -> str:
        """The lines `rlaif train online-dpo` prints: each round's preferences, reward and judges."""
        from rlaif.report.markdown import fmt

        lines = []
        for rd in self.result["rounds"]:
            c = (rd["reward"] or {}).get("checker") or {}
            judges = "".join(f"; {r.split('@')[0]}: position consistency {fmt(j['position_consistency'])}, "
                             f"accuracy vs checker {fmt(j['accuracy_vs_checker'])}" for r, j in rd["judges"].items())
            lines.append(f"round {rd['round']}: {rd['labels']['n_preferences']} preferences "
                         f"({rd['soft_labels']['n']} soft), samples' all-pass rate "
                         f"{fmt(c.get('all_pass_rate'))}{judges}")
        lines.append(f"wrote {self.result['out']}/online_dpo.json, report.md and report.html")
        return "\n".join(lines)


def run_online_dpo(config: OnlineDPOConfig | dict | None = None, *, judges: list | None = None,
                   options: CallOptions | None = None, **overrides: Any) -> OnlineDPORun:
    """Run (or resume) the rounds and write the report. `judges` are loaded Judge objects to use instead of
    `judges`/`judge_models` of the config (tests, library callers); `options`: how the judges' calls are made."""
    from rlaif.calls.options import CallOptions

    cfg = _resolve(config, overrides)
    out = Path(cfg.dpo.out).resolve()  # round.json names each round's policy by this path
    with output_lock(out, directory=True):  # one writer per OUT, before any call
        state = open_state(cfg, out, judges, options or CallOptions())
        for r in range(1, cfg.rounds + 1):
            for name, fn in (("sample", sample), ("label", label), ("audit", audit), ("train", train),
                             ("summary", summarize_round)):
                state.steps.run(f"round_{r}/{name}", fn, state, r)
        state.steps.run(f"round_{cfg.rounds + 1}/sample", sample, state, cfg.rounds + 1)  # the final policy
        return write_report(state)


def open_state(cfg: OnlineDPOConfig, out: Path, judges: list | None, calls: CallOptions) -> OnlineDPOState:
    from rlaif.train.modeling import model_path

    prompts_path = prompt_set(cfg.prompts, "prompts")
    prompts = select(read_prompts(prompts_path), cfg.prompts_limit, cfg.prompts_offset, prompts_path)
    judges = list(judges) if judges is not None else _load_judges(cfg)
    if cfg.rule and any(p.constraints for p in prompts) and not any(j.kind == "rule" for j in judges):
        from rlaif.judge import load_judge

        judges.append(load_judge("rule"))
    if not judges:
        raise ConfigError("no judge: the prompts carry no constraints for the rule checker. "
                          "Fix: pass --judge NAME (e.g. pairwise) or prompts with constraints")
    checker = next((j.rater for j in judges if j.kind == "rule"), None)
    start = str(Path(model_path(cfg.dpo.model)).resolve())
    reference = str(Path(model_path(cfg.dpo.reference)).resolve()) if cfg.dpo.reference else start
    out.mkdir(parents=True, exist_ok=True)
    plan = {k: v for k, v in flat_dump(cfg).items() if k not in RESUMABLE}
    plan.update(prompts=str(prompts_path.resolve()), model=start, reference=reference,
                raters=[j.rater for j in judges])
    steps = Steps(out, plan, command=COMMAND, on_change="refuse")
    return OnlineDPOState(cfg, out, prompts, judges, checker, start, reference, steps, calls)


def _load_judges(cfg: OnlineDPOConfig) -> list:
    from rlaif.judge import load_judges

    return load_judges(cfg.judges, cfg.judge_models) if cfg.judges else []


def policy_of(state: OnlineDPOState, r: int) -> str:
    """The policy that samples round r: the starting model, then what round r-1 trained (or its own policy
    again when that round had no preference to train on)."""
    if r == 1:
        return state.start
    return read_json_file(state.dir(r - 1) / "round.json")["next_policy"]


def round_prompts(state: OnlineDPOState, r: int) -> list[Prompt]:
    n = state.cfg.prompts_per_round
    if n is None or n >= len(state.prompts):
        return state.prompts
    first = (r - 1) * n
    return [state.prompts[(first + i) % len(state.prompts)] for i in range(n)]


# ---- 1. sample -------------------------------------------------------------------------------------

def sample(state: OnlineDPOState, r: int) -> None:
    from rlaif.generate import generate

    cfg, d = state.cfg, state.dir(r)
    prompts = round_prompts(state, r)
    d.mkdir(parents=True, exist_ok=True)
    write_jsonl(d / "prompts.jsonl", prompts)
    device = None if cfg.dpo.device == "auto" else cfg.dpo.device
    # A seed per round: a policy left unchanged by a round without preferences still draws fresh samples.
    generate(prompts, f"hf:{policy_of(state, r)}", d / "responses.jsonl", samples=cfg.k,
             temperature=cfg.temperature, max_tokens=cfg.max_tokens, seed=cfg.dpo.seed + (r - 1) * cfg.k,
             name=f"round{r}", progress=state.calls.progress, device=device)


# ---- 2. label --------------------------------------------------------------------------------------

def label(state: OnlineDPOState, r: int) -> None:
    from rlaif.judge.pipeline import run_label

    cfg, d, calls = state.cfg, state.dir(r), state.calls
    run_label(d / "responses.jsonl", state.judges, d / "labels", pairing="all", orders="both", jury=cfg.jury,
              min_p_chosen=cfg.min_p_chosen, prompts_path=d / "prompts.jsonl", seed=cfg.dpo.seed, options=calls)


# ---- 3. audit --------------------------------------------------------------------------------------

def audit(state: OnlineDPOState, r: int) -> None:
    from rlaif.audit import run_audit

    d = state.dir(r)
    labels = read_jsonl(d / "labels" / "labels.jsonl", Label)
    if not labels:  # every sample of every prompt was the same text: no pair to judge
        write_json(d / "audit" / "audit.json", None)
        return
    judged = any(lb.rater != state.checker for lb in labels)
    run_audit(labels, d / "audit", gold=state.checker if judged else None)


# ---- 4. train --------------------------------------------------------------------------------------

def dpo_config(state: OnlineDPOState, r: int) -> DPOConfig:
    """The round's DPO run: the loop's DPO keys, from the current policy, against the frozen reference."""
    d = state.dir(r)
    data = state.cfg.dpo.model_dump()
    data.update(data=str(d / "labels" / "preferences.jsonl"), model=policy_of(state, r), out=str(d / "dpo"),
                reference=state.reference, max_steps=state.cfg.steps_per_round)
    return DPOConfig.model_validate(data)


def train(state: OnlineDPOState, r: int) -> None:
    from rlaif.train import train_dpo

    if not read_jsonl(state.dir(r) / "labels" / "preferences.jsonl", Preference):
        return  # no preference this round (all ties): the next round samples the same policy
    train_dpo(dpo_config(state, r))


# ---- 5. summary ------------------------------------------------------------------------------------

def reward_of(state: OnlineDPOState, r: int) -> dict:
    """The round's samples scored: the checker's all-pass rate (prompt-clustered 95% interval) and mean share
    of constraints met, and each pointwise judge's mean score."""
    from rlaif.eval.compliance import constraint_compliance
    from rlaif.judge.labeling import ScoreRecord

    d = state.dir(r)
    responses = read_jsonl(d / "responses.jsonl", Response)
    out: dict[str, Any] = {"n_responses": len(responses), "checker": None, "judges": {}}
    comp = constraint_compliance(read_prompts(d / "prompts.jsonl"), responses, n_boot=2000, seed=state.cfg.dpo.seed)
    if comp:
        (c,) = comp.values()  # one policy per round
        out["checker"] = {k: c[k] for k in ("n", "n_prompts", "all_pass_rate", "ci_low", "ci_high", "share_passed")}
    scores_path = d / "labels" / "scores.jsonl"
    if scores_path.exists():
        by_rater: dict[str, list[float]] = {}
        for s in read_jsonl(scores_path, ScoreRecord):
            if s.score is not None and s.rater != state.checker:
                by_rater.setdefault(s.rater, []).append(s.score)
        out["judges"] = {k: {"mean": sum(v) / len(v), "n": len(v)} for k, v in sorted(by_rater.items())}
    return out


def gold_of(state: OnlineDPOState, r: int) -> dict | None:
    """`gold_reward`: the mean gold reward of round r's samples, and per judge the share of its decisive labels
    that name the response gold scores higher (pairs gold scores equal left out). None without a gold reward."""
    from rlaif.records import as_messages
    from rlaif.rewards import build_reward_fn
    from rlaif.scoring import RewardBatch

    if not state.cfg.gold_reward:
        return None
    d = state.dir(r)
    prompts = {p.prompt_id: p for p in read_jsonl(d / "prompts.jsonl", Prompt)}
    responses = read_jsonl(d / "responses.jsonl", Response)
    batch = RewardBatch([as_messages(prompts[x.prompt_id].prompt) for x in responses], [x.response for x in responses],
                        [prompts[x.prompt_id].model_dump() for x in responses])
    with build_reward_fn(state.cfg.gold_reward) as gold_fn:
        scores = gold_fn(batch).rewards
    by_text = {(x.prompt_id, x.response): v for x, v in zip(responses, scores, strict=True)}
    got = [v for v in scores if v is not None]
    agree: dict[str, list[int]] = {}
    labels_path = d / "labels" / "labels.jsonl"
    for lb in read_jsonl(labels_path, Label) if labels_path.exists() else []:
        a, b = by_text.get((lb.prompt_id, lb.response_a)), by_text.get((lb.prompt_id, lb.response_b))
        if lb.rater == state.checker or lb.winner not in ("a", "b") or a is None or b is None or a == b:
            continue
        agree.setdefault(lb.rater, []).append(int((lb.winner == "a") == (a > b)))
    return {"specs": state.cfg.gold_reward, "n": len(got), "mean": sum(got) / len(got) if got else None,
            "judge_agreement": {k: {"agreement": sum(v) / len(v), "n": len(v)} for k, v in sorted(agree.items())}}


def _value(estimate: Any) -> float | None:
    return estimate.get("value") if isinstance(estimate, dict) else estimate


def judge_reliability(audit_result: dict | None, label_summary: dict) -> dict[str, dict]:
    """Per judge (the checker left out): the audit's position consistency, first-position rate and accuracy
    against the checker, with the flip rate of the labeling summary."""
    out: dict[str, dict] = {}
    for rater, rep in ((audit_result or {}).get("raters") or {}).items():
        s = label_summary["judges"].get(rater, {})
        out[rater] = {"position_consistency": _value(rep.get("position_consistency")),
                      "first_position_rate": _value(rep.get("first_position_rate")),
                      "accuracy_vs_checker": _value(rep.get("accuracy")),
                      "flip_rate": s.get("flip_rate"), "invalid_rate": s.get("invalid_rate"),
                      "n_labels": rep.get("n")}
    return out


def summarize_round(state: OnlineDPOState, r: int) -> None:
    d = state.dir(r)
    labels = read_json_file(d / "labels" / "summary.json")
    prefs = read_jsonl(d / "labels" / "preferences.jsonl", Preference)
    trained = (d / "dpo" / "train_result.json").exists()
    result = read_json_file(d / "dpo" / "train_result.json") if trained else None
    soft = [p.p_chosen for p in prefs if p.p_chosen is not None and p.p_chosen < 1.0 - 1e-9]
    write_json(d / "round.json", {
        "round": r, "policy": policy_of(state, r), "next_policy": str(d / "dpo") if trained else policy_of(state, r),
        "reference": state.reference, "n_prompts": len(read_jsonl(d / "prompts.jsonl", Prompt)),
        "labels": {k: labels[k] for k in ("n_pairs", "n_labels", "n_invalid", "n_preferences", "n_ties",
                                          "n_contested", "n_low_confidence", "n_no_verdict")},
        "soft_labels": {"n": len(soft), "share": len(soft) / len(prefs) if prefs else None,
                        "mean_p_chosen": sum(p.p_chosen or 1.0 for p in prefs) / len(prefs) if prefs else None},
        "judges": judge_reliability(read_json_file(d / "audit" / "audit.json"), labels),
        "reward": reward_of(state, r),
        "gold": gold_of(state, r),
        "dpo": None if result is None else {"steps": result["steps"], "stopped_by": result["stopped_by"],
                                            "train": result["train"], "seconds": result["train_seconds"]},
    })


# ---- the report ------------------------------------------------------------------------------------

def write_report(state: OnlineDPOState) -> OnlineDPORun:
    from rlaif.report.online_dpo_page import render_online_dpo_html, render_online_dpo_md

    n = state.cfg.rounds
    final = state.dir(n + 1)
    summary = {
        "command": f"rlaif train {COMMAND}", "out": str(state.out), "start": state.start, "reference": state.reference,
        "judges": [j.rater for j in state.judges], "checker": state.checker,
        "config": {k: v for k, v in flat_dump(state.cfg).items() if k != "out"},
        "rounds": [read_json_file(state.dir(r) / "round.json") for r in range(1, n + 1)],
        "final": {"policy": policy_of(state, n + 1), "reward": reward_of(state, n + 1), "gold": gold_of(state, n + 1)}
        if final.exists() else None,
        "seconds": dict(state.steps.done),
    }
    write_json(state.out / "online_dpo.json", summary)
    write_text(state.out / "report.md", render_online_dpo_md(summary))
    write_text(state.out / "report.html", render_online_dpo_html(summary))
    return OnlineDPORun(summary, state.out)


__all__ = ["OnlineDPOConfig", "OnlineDPORun", "load_online_config", "run_online_dpo"]
