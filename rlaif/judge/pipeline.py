"""The labeling pipeline as functions: responses -> pairs -> labels -> preferences/KTO -> files.

`label_pairs` and `label_responses` are what other areas call (win rates, evals, the demo);
`run_label` is `rlaif label`: it reads a responses file and writes OUTDIR/labels.jsonl,
scores.jsonl (pointwise judges), preferences.jsonl, kto.jsonl and summary.json.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from rlaif.calls.options import CallOptions
from rlaif.calls.stats import CallStats
from rlaif.catalog import select
from rlaif.errors import ConfigError, InputError
from rlaif.judge.jury import JURY_METHODS, JuryMethod
from rlaif.judge.labeling import (
    LabelRun,
    LiveCalls,
    Orders,
    Replay,
    ScoreContext,
    ScoreRecord,
    judge_pairs,
    labels_from_scores,
    score_responses,
    unique_responses,
)
from rlaif.judge.pairing import Pair, all_pairs, best_worst_pairs, reference_pairs, response_key
from rlaif.judge.preferences import build_kto, build_preferences, summarize
from rlaif.judge.spec import Judge
from rlaif.outlock import locks_output
from rlaif.records import (
    Label,
    Response,
    drop_duplicate_rows,
    read_jsonl,
    read_prompts,
    read_responses,
    write_json,
    write_jsonl,
)

PAIRINGS = ("all", "best-worst", "reference")


def label_pairs(pairs: list[Pair], judges: list[Judge], *, orders: Orders = "both", seed: int = 0,
                calls: Any = None, context: ScoreContext | None = None,
                scores: list[ScoreRecord] | None = None, stats: dict[str, CallStats] | None = None,
                concurrency: int = 8, cache: bool = True, progress: bool = False) -> LabelRun:
    """Every judge on every pair. Pairwise LLM judges: one label per call (per order shown);
    pointwise judges: each response scored once, one label per pair from the two scores.
    `scores` are already-computed pointwise scores to reuse (best-worst pairing)."""
    own = calls is None
    calls = calls or LiveCalls(concurrency=concurrency, cache=cache, progress=progress)
    context = context or ScoreContext()
    run = LabelRun(judges=judges, pairs=pairs, scores=list(scores or []), stats=dict(stats or {}))
    try:
        for j in judges:
            stats = run.stats.setdefault(j.rater, CallStats())
            if j.mode == "pairwise":
                run.labels += judge_pairs(j, pairs, calls, orders=orders, seed=seed, stats=stats)
                continue
            done = {s.key for s in run.scores if s.rater == j.rater}
            todo = [r for r in unique_responses(pairs) if response_key(r) not in done]
            run.scores += score_responses(j, todo, calls, context=context, stats=stats)
            run.labels += labels_from_scores(j, pairs, run.scores)
    finally:
        if own:
            calls.close()
    return run


def label_responses(responses: list[Response], judges: list[Judge], *, pairing: str = "all",
                    reference: str | None = None, orders: Orders = "both", seed: int = 0, calls: Any = None,
                    context: ScoreContext | None = None, concurrency: int = 8, cache: bool = True,
                    progress: bool = False) -> LabelRun:
    """Form pairs (all / best-worst by the first pointwise judge's scores / against a reference
    policy) and label them."""
    if pairing not in PAIRINGS:
        raise ConfigError(f"unknown --pairing '{pairing}'. Fix: use one of {', '.join(PAIRINGS)}")
    if not judges:
        raise ConfigError("no judge given. Fix: pass --judge NAME (e.g. pairwise-logprob) or --judge PATH.yaml")
    own = calls is None
    calls = calls or LiveCalls(concurrency=concurrency, cache=cache, progress=progress)
    context = context or ScoreContext()
    try:
        scores: list[ScoreRecord] = []
        stats: dict[str, CallStats] = {}
        if pairing == "all":
            pairs = all_pairs(responses)
        elif pairing == "reference":
            if not reference:
                raise ConfigError("--pairing reference needs --reference POLICY. Fix: name the baseline policy")
            pairs = reference_pairs(responses, reference)
        else:
            scorer = next((j for j in judges if j.mode != "pairwise"), None)
            if scorer is None:
                raise ConfigError("--pairing best-worst ranks responses by a pointwise score. "
                                  "Fix: add a pointwise judge (e.g. --judge rubric, rule or reward-model)")
            scores = score_responses(scorer, responses, calls, context=context,
                                     stats=stats.setdefault(scorer.rater, CallStats()))
            by_key = {s.key: s.score for s in scores}
            pairs = best_worst_pairs(responses, lambda r: by_key.get(response_key(r)))
        run = label_pairs(pairs, judges, orders=orders, seed=seed, calls=calls, context=context, scores=scores,
                          stats=stats)
    finally:
        if own:
            calls.close()
    return run


def _constraints(prompts_path: Path | None) -> dict[str, list[dict]]:
    if prompts_path is None:
        return {}
    return {p.prompt_id: p.constraints for p in read_prompts(prompts_path) if p.constraints}


@locks_output("out", directory=True)  # one writer per OUTDIR, before any call
def run_label(responses_path: Path, judges: list[Judge], out: Path, *, pairing: str = "all",
              reference: str | None = None, orders: Orders = "both", jury: JuryMethod = "majority",
              min_agreement: float = 0.0, min_p_chosen: float = 0.0, reparse: bool = False,
              prompts_path: Path | None = None, seed: int = 0, options: CallOptions = CallOptions(),
              calls: Any = None, limit: int | None = None, offset: int = 0) -> dict:
    """`rlaif label`: label a responses file and write every output file; returns the summary.
    `offset`/`limit` pick prompts, in the order they first appear in the file: all their responses are labeled.
    More than `options.max_failed` of the calls failing raises CallsFailed once the outputs are written."""
    if jury not in JURY_METHODS:
        raise ConfigError(f"unknown --jury '{jury}'. Fix: use one of {', '.join(JURY_METHODS)}")
    if not 0.0 <= min_agreement <= 1.0:
        raise ConfigError(f"--min-agreement {min_agreement} is outside 0..1. Fix: e.g. --min-agreement 0.67")
    if not 0.0 <= min_p_chosen <= 1.0:
        raise ConfigError(f"--min-p-chosen {min_p_chosen} is outside 0..1. Fix: e.g. --min-p-chosen 0.7")
    responses = read_responses(responses_path)
    if not responses:
        raise InputError(responses_path, None, "the file holds no responses",
                         "pass the output of `rlaif generate` (one Response per line)")
    if offset or limit:
        kept = set(select(list(dict.fromkeys(r.prompt_id for r in responses)), limit, offset, responses_path))
        responses = [r for r in responses if r.prompt_id in kept]
    out = Path(out)
    context = ScoreContext(constraints=_constraints(prompts_path))
    own = calls is None
    if reparse:
        calls = replay_from(out)
    elif calls is None:
        calls = LiveCalls.of(options)
    try:
        run = label_responses(responses, judges, pairing=pairing, reference=reference, orders=orders, seed=seed,
                              calls=calls, context=context)
    finally:
        if own:
            calls.close()
    summary = write_outputs(run, out, jury=jury, min_agreement=min_agreement, min_p_chosen=min_p_chosen,
                            pairing=pairing, orders=orders, reference=reference, reparse=reparse)
    # After the writing: the failed calls are in labels.jsonl as errors, the answered ones stay usable.
    CallStats.total(run.stats.values()).check(options.max_failed, f"label -o {out}")
    return summary


def replay_from(out: Path) -> Replay:
    labels_path, scores_path = out / "labels.jsonl", out / "scores.jsonl"
    if not labels_path.exists() and not scores_path.exists():
        raise InputError(labels_path, None, "no stored judge outputs to re-parse",
                         "run `rlaif label` without --reparse first, with the same -o OUTDIR")
    drop_duplicate_rows(labels_path, lambda o: (o.get("item"), o.get("rater"), o.get("order")))  # older races
    labels = read_jsonl(labels_path, Label) if labels_path.exists() else []
    scores = read_jsonl(scores_path, ScoreRecord) if scores_path.exists() else []
    return Replay(labels, scores)


def write_outputs(run: LabelRun, out: Path, *, jury: JuryMethod = "majority", min_agreement: float = 0.0,
                  min_p_chosen: float = 0.0, **settings) -> dict:
    """Write labels.jsonl, scores.jsonl, preferences.jsonl, kto.jsonl, summary.json (each atomically)."""
    prefs = build_preferences(run.pairs, run.labels, jury=jury, min_agreement=min_agreement,
                              min_p_chosen=min_p_chosen)
    binary = [j.rater for j in run.judges if j.mode == "binary"]
    kto = build_kto(run.pairs, prefs, run.scores, binary)
    summary = summarize(run, prefs, kto, jury=jury, min_agreement=min_agreement, min_p_chosen=min_p_chosen,
                        **settings)
    out.mkdir(parents=True, exist_ok=True)
    write_jsonl(out / "labels.jsonl", run.labels)
    if run.scores:
        write_jsonl(out / "scores.jsonl", run.scores)
    write_jsonl(out / "preferences.jsonl", prefs.preferences)
    write_jsonl(out / "kto.jsonl", kto)
    write_json(out / "summary.json", summary)
    return summary
