"""`rlaif eval SUITE`: generate with a policy and a baseline on every split, judge them head to head, report.

For each split of the suite (rlaif.eval.suite): both policies answer the same prompts through
`rlaif.generate` (appended to OUTDIR/<split>/responses_<name>.jsonl, resumable, cached); each policy
response is paired with the baseline's response of the same sample number and every judge runs on
the pair in both orders through the call layer (so a re-run makes zero calls); then win rate per
judge, rule-checked compliance, diversity, and (with a reward model) mean rewards and a KL estimate.
The ID−OOD gap pools the splits of each kind. Writes OUTDIR/eval.json, eval.md and eval.html.
"""
from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from rlaif import catalog
from rlaif.backends import DEFAULT_TIMEOUT_S, get_backend
from rlaif.calls.options import CallOptions
from rlaif.calls.stats import CallStats
from rlaif.errors import ConfigError, RlaifError
from rlaif.eval.compliance import constraint_compliance
from rlaif.eval.diversity import diversity_report
from rlaif.eval.suite import PolicyRef, Suite, load_suite, parse_policy, safe_name
from rlaif.generate import generate
from rlaif.judge import Judge, label_pairs, load_judge, reference_pairs
from rlaif.judge.labeling import LiveCalls, ScoreContext
from rlaif.outlock import locks_output
from rlaif.records import (
    Label,
    Prompt,
    Response,
    as_messages,
    read_json_file,
    read_jsonl,
    read_prompts,
    read_yaml,
    write_json,
    write_jsonl,
    write_text,
)
from rlaif.stats.winrate import SMALL_N, ClusteredScores, generalization_gap, win_rate_from_labels


@dataclass(frozen=True)
class Generation:
    samples: int
    max_tokens: int
    temperature: float
    seed: int | None


def _judge_kind(path: str) -> str | None:
    try:
        data = read_yaml(path)
    except RlaifError:
        return None  # load_judge reports it properly
    return data.get("kind") if isinstance(data, dict) else None


def _judges(suite: Suite, judge_model: str | None, reward_model: str | None) -> list[Judge]:
    """The suite's judges (when it asks for win rates), LLM judges moved to `judge_model`, and the
    reward-model judge on `reward_model` (added when the suite does not list it)."""
    judges = []
    for name, path in zip(suite.spec.judges, suite.judge_paths, strict=True):
        if "win_rate" not in suite.spec.metrics:
            break
        kind = _judge_kind(path)
        if kind == "reward_model":
            if not reward_model:
                raise ConfigError(f"judge '{name}' of suite '{suite.name}' needs a reward model checkpoint. "
                                  "Fix: pass --reward-model PATH (a `rlaif train rm` directory)")
            judges.append(load_judge(path, model=reward_model))
        else:
            judges.append(load_judge(path, model=judge_model if judge_model and kind in (None, "llm") else None))
    if reward_model and not any(j.kind == "reward_model" for j in judges):
        judges.append(load_judge("reward-model", model=reward_model))
    raters = [j.rater for j in judges]
    if len(set(raters)) != len(raters):
        raise ConfigError(f"the suite names the same judge twice ({', '.join(raters)}). Fix: list each judge once")
    return judges


def _limit(suite: Suite, split: str, limit: int | None) -> int | None:
    return limit or suite.spec.splits[split].limit or suite.spec.limit


def _check_settings(split_dir: Path, refs: list[PolicyRef], backends: dict[str, Any], gen: Generation) -> None:
    """Responses already in OUTDIR must come from the same model (for hf: the same weight files) and
    sampling settings as this run's."""
    path = split_dir / "generation.json"
    now = {r.name: {"spec": r.spec, "model": backends[r.name].model,
                    "temperature": r.temperature if r.temperature is not None else gen.temperature,
                    "max_tokens": gen.max_tokens, "seed": gen.seed} for r in refs}
    before = read_json_file(path) if path.exists() else {}
    for name, settings in now.items():
        if name in before and before[name] != settings:
            raise ConfigError(f"{split_dir}: the responses of '{name}' there were generated with {before[name]}, "
                              f"this run asks for {settings}. Fix: use another -o OUTDIR, or delete "
                              f"{split_dir / ('responses_' + safe_name(name) + '.jsonl')}")
    write_json(path, before | now)


def _mean_ci(prompt_ids: list[str], values: list[float], n_boot: int, seed: int = 0) -> dict[str, Any]:
    """Mean with a prompt-clustered percentile-bootstrap interval (for unbounded values: rewards, log-ratios)."""
    scores = ClusteredScores.from_pairs(prompt_ids, values)
    lo, hi = np.quantile(scores.bootstrap(n_boot, np.random.default_rng(seed)), [0.025, 0.975])
    return {"mean": scores.mean, "ci_low": float(lo), "ci_high": float(hi), "n": scores.n,
            "n_prompts": scores.n_prompts}


def _kl(pol: PolicyRef, base: PolicyRef, backends: dict[str, Any], responses: list[Response], gen: Generation,
        n_boot: int) -> dict[str, Any]:
    """Mean over the policy's samples of log π_policy(y|x) − log π_baseline(y|x), both at the policy's sampling
    temperature: an unbiased estimate of KL(policy ‖ baseline) between the distributions the samples came from."""
    temperature = pol.temperature if pol.temperature is not None else gen.temperature
    pb, bb = backends[pol.name], backends[base.name]
    if not (hasattr(pb, "sequence_logprobs") and hasattr(bb, "sequence_logprobs")):
        return {"estimate": None, "note": "needs sequence log-probs from both models: local or hf: specs only"}
    if temperature == 0:
        return {"estimate": None, "note": "greedy decoding (temperature 0) samples no distribution"}
    msgs = [as_messages(r.prompt) for r in responses]
    texts = [r.response for r in responses]
    # A response shorter than max_tokens stopped on its own: its end-of-turn token is part of y.
    ended = [r.usage is None or r.usage.output_tokens < gen.max_tokens for r in responses]
    lp_pol = pb.sequence_logprobs(msgs, texts, ended=ended, temperature=temperature)
    lp_base = bb.sequence_logprobs(msgs, texts, ended=ended, temperature=temperature)
    diffs = [a.logprob - b.logprob for a, b in zip(lp_pol, lp_base, strict=True)]
    out = _mean_ci([r.prompt_id for r in responses], diffs, n_boot)
    tokens = sum(a.tokens for a in lp_pol)
    return {"estimate": out["mean"], "ci_low": out["ci_low"], "ci_high": out["ci_high"], "n": out["n"],
            "per_token": sum(diffs) / tokens if tokens else None, "temperature": temperature,
            "note": f"Monte Carlo over the policy's {out['n']} samples at temperature {temperature:g}; responses "
                    "re-tokenized from their text"}


def _pool(parts: list[tuple[str, ClusteredScores]]) -> ClusteredScores:
    return ClusteredScores([f"{split}/{pid}" for split, s in parts for pid in s.prompt_ids],
                           np.concatenate([s.sums for _, s in parts]), np.concatenate([s.counts for _, s in parts]))


def _gap(id_parts: list[tuple[str, ClusteredScores]], ood_parts: list[tuple[str, ClusteredScores]],
         n_boot: int) -> dict[str, Any] | None:
    id_parts = [(k, s) for k, s in id_parts if s.n]
    ood_parts = [(k, s) for k, s in ood_parts if s.n]
    if not id_parts or not ood_parts:
        return None
    a, b = _pool(id_parts), _pool(ood_parts)
    g = generalization_gap(a, b, n_boot=n_boot).to_dict()
    warnings = []
    if min(a.n_prompts, b.n_prompts) < SMALL_N:
        warnings.append(f"{a.n_prompts} ID and {b.n_prompts} OOD prompts: the interval is approximate")
    if g["ci_high"] - g["ci_low"] == 0:
        warnings.append("every resample gave the same difference (e.g. all ties): the interval's zero width "
                        "reflects the data seen, not certainty")
    return g | {"id_splits": [k for k, _ in id_parts], "ood_splits": [k for k, _ in ood_parts],
                "n_prompts_id": a.n_prompts, "n_prompts_ood": b.n_prompts, "warnings": warnings}


def _refs(s: Suite, policy: str, baseline: str | None) -> tuple[PolicyRef, PolicyRef]:
    """The policy and the baseline (default: the suite's), under names that stay apart in every file."""
    pol = parse_policy(policy, "--policy")
    if baseline is None and s.spec.baseline is None:
        raise ConfigError(f"suite '{s.name}' names no baseline. Fix: pass --baseline [NAME=]SPEC")
    base = parse_policy(baseline or s.spec.baseline, "--baseline")
    if pol.name == base.name:
        raise ConfigError(f"the policy and the baseline are both named '{pol.name}'. "
                          "Fix: name them, e.g. --policy dpo=hf:runs/dpo --baseline sft=local")
    if safe_name(pol.name) == safe_name(base.name):
        raise ConfigError(f"'{pol.name}' and '{base.name}' give the same file name. Fix: name them apart (NAME=SPEC)")
    return pol, base


def _load_backends(refs: tuple[PolicyRef, ...], base_urls: list[str] | None,
                   api_key_env: str | None, timeout_s: float = DEFAULT_TIMEOUT_S,
                   precision: str = "auto") -> dict[str, Any]:
    backends: dict[str, Any] = {}
    by_spec: dict[str, Any] = {}
    for ref in refs:
        if ref.spec not in by_spec:  # one loaded model serves two names of the same spec
            local = ref.spec == "local" or ref.spec.startswith("hf:")
            by_spec[ref.spec] = get_backend(ref.spec, base_urls=base_urls, api_key_env=api_key_env,
                                            drop_http_opts=True, timeout_s=timeout_s,
                                            **({"precision": precision} if local else {}))
        backends[ref.name] = by_spec[ref.spec]
    return backends


@dataclass
class _EvalShared:
    """What the splits of one `run_eval` share; `gap_parts` collects each split's scores for the ID−OOD gap."""

    suite: Suite
    pol: PolicyRef
    base: PolicyRef
    backends: dict[str, Any]
    calls: LiveCalls
    judges: list[Judge]
    gen: Generation
    offset: int
    embedding: bool
    kl_kinds: frozenset[str]  # the split kinds that get the KL estimate (empty: none)
    n_boot: int
    progress: bool | None
    max_failed: float  # share of failed calls past which a split stops (rlaif.calls.CallStats.check)
    gap_parts: dict[str, dict[str, list]] = field(default_factory=dict)

    @property
    def rm_rater(self) -> str | None:
        return next((j.rater for j in self.judges if j.kind == "reward_model"), None)

    def add_gap_part(self, key: str, kind: str, split: str, scores: ClusteredScores) -> None:
        self.gap_parts.setdefault(key, {"id": [], "ood": []})[kind].append((split, scores))


@dataclass
class _SplitRun:
    summary: dict[str, Any]  # the split's entry in eval.json
    labels: list[Label]


@dataclass(frozen=True)
class EvalRun:
    """What `run_eval` wrote: eval.json's content and the folder holding eval.json, eval.md, eval.html."""

    result: dict[str, Any]
    out: Path

    @property
    def summary(self) -> str:
        """The lines `rlaif eval` prints: each split's win rates and compliance, the gaps, the calls."""
        r, lines = self.result, []
        for split, s in r["splits"].items():
            for rater, w in s.get("win_rate", {}).items():
                if w["win_rate"] is not None:
                    lines.append(f"{split} ({s['kind']}) {rater}: win rate {w['win_rate']:.3f} "
                                 f"[{w['ci_low']:.3f}, {w['ci_high']:.3f}] over {w['n']}")
            for name, c in (s.get("compliance") or {}).items():
                lines.append(f"{split} ({s['kind']}) compliance {name}: {c['all_pass_rate']:.3f} "
                             f"[{c['ci_low']:.3f}, {c['ci_high']:.3f}]")
        for rater, g in ((r["generalization_gap"] or {}).get("win_rate") or {}).items():
            lines.append(f"gap ID−OOD {rater}: {g['gap']:+.3f} [{g['ci_low']:+.3f}, {g['ci_high']:+.3f}]")
        lines.append(f"{r['calls']['made']} calls, {r['calls']['cache_hits']} cached -> {self.out}/eval.json, "
                     "eval.md, eval.html")
        return "\n".join(lines)


# `rlaif eval`'s call settings unless told otherwise: a progress bar, the backends' timeout.
EVAL_CALLS = CallOptions(progress=True, timeout_s=DEFAULT_TIMEOUT_S)


@locks_output("out", directory=True)
def run_eval(suite: str | Path | Suite, policy: str, baseline: str | None, out: str | Path, *,
             limit: int | None = None, samples: int | None = None, max_tokens: int | None = None,
             temperature: float | None = None, reward_model: str | None = None, judge_model: str | None = None,
             embedding: bool | None = None, prompts_offset: int = 0, kl: bool | None = None,
             kl_kinds: tuple[str, ...] = ("id", "ood"), precision: str = "auto",
             options: CallOptions = EVAL_CALLS) -> EvalRun:
    """Run an eval suite into OUT (eval.json, eval.md, eval.html, <split>/); returns what it wrote.
    `policy`/`baseline` are "NAME=SPEC" or "SPEC" (baseline None: the suite's); `prompts_offset` skips the first
    N prompts of every split (e.g. those trained on); `kl` (default: with a reward model) adds the KL estimate
    for local/hf policies, on the splits of `kl_kinds`; `precision`: how local/hf policies sample (the
    backend's auto/fp32/bf16; the KL's log-probabilities stay fp32 on the CPU); `options`: how the calls are
    made (a timeout of None: `DEFAULT_TIMEOUT_S`)."""
    if options.timeout_s is None:
        options = replace(options, timeout_s=DEFAULT_TIMEOUT_S)
    progress = options.progress
    s = suite if isinstance(suite, Suite) else load_suite(suite)
    spec = s.spec
    pol, base = _refs(s, policy, baseline)
    if prompts_offset < 0 or (limit is not None and limit < 1):
        raise ConfigError("--limit must be at least 1 and the prompts offset at least 0")
    g = spec.generation
    gen = Generation(samples or g.samples, max_tokens or g.max_tokens,
                     g.temperature if temperature is None else temperature, g.seed)
    judges = _judges(s, judge_model, reward_model)
    out = Path(out)
    backends = _load_backends((pol, base), options.base_urls, options.api_key_env, options.timeout_s, precision)
    calls = LiveCalls.of(options)
    want_kl = bool(reward_model) if kl is None else kl
    run = _EvalShared(s, pol, base, backends, calls, judges, gen, offset=prompts_offset,
               embedding=spec.embedding if embedding is None else embedding,
               kl_kinds=frozenset(kl_kinds if want_kl else ()), n_boot=spec.n_boot, progress=progress,
               max_failed=options.max_failed)
    splits: dict[str, _SplitRun] = {}
    try:
        for split, sp in spec.splits.items():
            if progress is not False:
                print(f"eval {s.name}: split {split} ({sp.kind})", file=sys.stderr)
            splits[split] = _run_split(run, split, out / split, _limit(s, split, limit))
    finally:
        calls.close()
    result = _result(run, {k: v.summary for k, v in splits.items()})
    _write(result, {k: v.labels for k, v in splits.items()}, out)
    return EvalRun(result, out)


def _result(run: _EvalShared, splits: dict[str, Any]) -> dict[str, Any]:
    """The eval.json dict: settings, every split, the pooled ID−OOD gaps, call counts."""
    spec = run.suite.spec
    gap: dict[str, Any] = {"win_rate": {}, "compliance": {}}
    for key, parts in run.gap_parts.items():
        kind, name = key.split("|", 1)
        g_ = _gap(parts["id"], parts["ood"], run.n_boot)
        if g_ is not None:
            gap[kind][name] = g_
    counts = [v for sp in splits.values() for part in sp["calls"].values() for v in part.values()]
    return {
        "suite": run.suite.name, "suite_path": str(run.suite.path) if run.suite.path else None,
        "policy": run.pol.name, "baseline": run.base.name,
        "models": {r.name: r.to_dict() for r in (run.pol, run.base)},
        "generation": asdict(run.gen), "prompts_offset": run.offset,
        "judges": [j.rater for j in run.judges], "metrics": list(spec.metrics), "embedding": run.embedding,
        "splits": splits,
        "generalization_gap": gap if (gap["win_rate"] or gap["compliance"]) else None,
        "calls": {"made": sum(v["calls"] for v in counts), "cache_hits": sum(v["cache_hits"] for v in counts)},
        "examples_shown": spec.examples,
        "notes": [] if {sp.kind for sp in spec.splits.values()} == {"id", "ood"} else
        ["the suite lacks an ID or an OOD split: no generalization gap"],
    }


def _split_prompts(s: Suite, split: str, limit: int | None, offset: int) -> list[Prompt]:
    return catalog.select(read_prompts(s.prompt_paths[split]), limit, offset, f"split '{split}'")


def _generate_both(run: _EvalShared, prompts: list[Prompt],
                   d: Path) -> tuple[dict[str, list[Response]], dict[str, Any]]:
    """Each policy's responses to the split's prompts (sorted by prompt and sample), and its call counts."""
    gen = run.gen
    ids = {p.prompt_id for p in prompts}
    responses: dict[str, list[Response]] = {}
    gen_calls = {}
    for ref in (run.pol, run.base):
        path = d / f"responses_{safe_name(ref.name)}.jsonl"
        summary = generate(prompts, run.backends[ref.name], path, samples=gen.samples, max_tokens=gen.max_tokens,
                           temperature=ref.temperature if ref.temperature is not None else gen.temperature,
                           seed=gen.seed, concurrency=run.calls.concurrency, progress=run.progress, name=ref.name,
                           max_failed=run.max_failed)
        gen_calls[ref.name] = {"calls": summary.stats.calls, "cache_hits": summary.stats.cache_hits,
                               "failed": summary.stats.failed}
        rs = [r for r in read_jsonl(path, Response) if r.prompt_id in ids and r.sample < gen.samples]
        responses[ref.name] = sorted(rs, key=lambda r: (r.prompt_id, r.sample))
    return responses, gen_calls


def _run_split(run: _EvalShared, split: str, d: Path, limit: int | None) -> _SplitRun:
    spec, pol, base = run.suite.spec, run.pol, run.base
    sp = spec.splits[split]
    prompts = _split_prompts(run.suite, split, limit, run.offset)
    d.mkdir(parents=True, exist_ok=True)
    _check_settings(d, [pol, base], run.backends, run.gen)
    responses, gen_calls = _generate_both(run, prompts, d)
    both = responses[pol.name] + responses[base.name]
    constraints = {p.prompt_id: p.constraints for p in prompts if p.constraints}
    notes: list[str] = []
    split_judges = run.judges
    if not constraints and any(j.kind == "rule" for j in run.judges):
        split_judges = [j for j in run.judges if j.kind != "rule"]
        notes.append("no prompt carries constraints: the rule judge was skipped")
    pairs = reference_pairs(both, base.name)
    lab = label_pairs(pairs, split_judges, orders="both", calls=run.calls,
                      context=ScoreContext(constraints=constraints))
    write_jsonl(d / "labels.jsonl", lab.labels)
    if lab.scores:
        write_jsonl(d / "scores.jsonl", lab.scores)
    CallStats.total(lab.stats.values()).check(run.max_failed, f"eval {run.suite.name} split {split}")

    res: dict[str, Any] = {"kind": sp.kind, "prompts": sp.prompts, "n_prompts": len(prompts),
                           "samples": run.gen.samples, "n_pairs": len(pairs)}
    if "win_rate" in spec.metrics or run.rm_rater:
        categories = {p.prompt_id: p.category for p in prompts if p.category is not None}
        res["win_rate"] = _win_rates(run, split, sp.kind, lab.labels, split_judges, categories)
    if "compliance" in spec.metrics and constraints:
        res["compliance"] = _compliance(run, split, sp.kind, prompts, both)
    elif "compliance" in spec.metrics:
        notes.append("no prompt carries constraints: no compliance")
    if "diversity" in spec.metrics:
        res["diversity"] = diversity_report(both, tokenizer=spec.tokenizer, embedding=run.embedding)
    if run.rm_rater or sp.kind in run.kl_kinds:
        res["reward"] = _reward(run, sp.kind, lab.scores, responses[pol.name])
    res["calls"] = {"generate": gen_calls,
                    "judges": {r: {"calls": st.calls, "cache_hits": st.cache_hits, "failed": st.failed}
                               for r, st in lab.stats.items()}}
    res["notes"] = notes
    return _SplitRun(res, lab.labels)


def _win_rates(run: _EvalShared, split: str, kind: str, labels: list[Label], judges: list[Judge],
               categories: dict[str, str]) -> dict[str, Any]:
    """Each judge's win rate of the policy over the baseline on this split."""
    out = {}
    for j in judges:
        wr = win_rate_from_labels([lab for lab in labels if lab.rater == j.rater], run.pol.name, run.base.name,
                                  categories=categories, n_boot=run.n_boot)
        out[j.rater] = wr.to_dict()
        if wr.n:
            run.add_gap_part(f"win_rate|{j.rater}", kind, split, wr.scores)
    return out


def _compliance(run: _EvalShared, split: str, kind: str, prompts: list[Prompt], both: list[Response]) -> dict[str, Any]:
    comp = constraint_compliance(prompts, both, n_boot=run.n_boot)
    out = {}
    for name in (run.pol.name, run.base.name):
        c = comp.get(name)
        if c is None:
            continue
        run.add_gap_part(f"compliance|{name}", kind, split, c["scores"])
        out[name] = {k: v for k, v in c.items() if k != "scores"}
    return out


def _reward(run: _EvalShared, kind: str, scores: list, policy_responses: list[Response]) -> dict[str, Any]:
    """Mean reward-model score of each side (with a reward model) and the KL estimate (when asked)."""
    reward: dict[str, Any] = {"model": None, "policy": None, "baseline": None}
    rm_rater = run.rm_rater
    if rm_rater:
        reward["model"] = rm_rater
        for name in (run.pol.name, run.base.name):
            sc = [x for x in scores if x.rater == rm_rater and x.policy == name and x.score is not None]
            if sc:
                role = "policy" if name == run.pol.name else "baseline"
                reward[role] = _mean_ci([x.prompt_id for x in sc], [x.score for x in sc], run.n_boot)
    kl = None
    if kind in run.kl_kinds:
        kl = _kl(run.pol, run.base, run.backends, policy_responses, run.gen, run.n_boot)
    reward["kl_estimate"] = kl["estimate"] if kl else None
    reward["kl"] = kl
    return reward


def _write(result: dict[str, Any], labels_by_split: dict[str, list[Label]], out: Path) -> None:
    from rlaif.report.eval_page import eval_html, eval_markdown

    write_json(out / "eval.json", result)
    write_text(out / "eval.md", eval_markdown(result))
    write_text(out / "eval.html", eval_html(result, labels_by_split))
