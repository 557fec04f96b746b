"""Policy evaluation: win rates (from labels or by running judges), compliance, diversity, eval suites.

Each entry point reads plain files, computes with `rlaif.stats`, and writes a JSON summary with
stable keys plus markdown (and HTML) beside it:

- `winrate_from_labels_file`    → `winrate.json`, `winrate.md`, `winrate.html` (`rlaif winrate --labels ...`)
- `winrate_from_responses_file` → the same plus `labels.jsonl` (`rlaif winrate RESPONSES --judge J ...`)
- `diversity_from_file`         → `diversity.json`, `diversity.md` (`rlaif diversity RESPONSES`)
- `run_eval`                    → `eval.json`, `eval.md`, `eval.html` (`rlaif eval SUITE`; in rlaif.evalsuite)
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from rlaif.constraints import check
from rlaif.embed import load_embedder, tokenize
from rlaif.errors import InputError
from rlaif.records import (
    Label,
    Prompt,
    Response,
    iter_json_lines,
    read_jsonl,
    read_prompts,
    write_json,
    write_jsonl,
    write_text,
)
from rlaif.stats.diversity import EAD_ORDERS, ngram_vocabulary, policy_diversity
from rlaif.stats.winrate import ClusteredScores, WinRateResult, bootstrap_interval, win_rate_from_labels


def _fmt(x: Any, digits: int = 3) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def _md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(_fmt(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


# ---- win rate ---------------------------------------------------------------------------------------------

def winrate_markdown(d: dict[str, Any]) -> str:
    lines = [f"# Win rate: {d['policy']} vs {d['baseline']}", ""]
    lines.append(_md_table(
        ["n", "prompts", "wins", "losses", "ties", "win rate", "95% CI", "soft", "length-controlled"],
        [[d["n"], d["n_prompts"], d["wins"], d["losses"], d["ties"], d["win_rate"],
          f"[{_fmt(d['ci_low'])}, {_fmt(d['ci_high'])}]", d["soft_win_rate"], d["lc_win_rate"]]]))
    lines += ["", f"Ties count half. Interval: {d['ci_method']}."]
    if d["per_category"]:
        lines += ["", "## Per category", ""]
        lines.append(_md_table(["category", "n", "win rate", "95% CI", "length-controlled"],
                               [[c, v["n"], v["win_rate"], f"[{_fmt(v['ci_low'])}, {_fmt(v['ci_high'])}]",
                                 v["lc_win_rate"]] for c, v in d["per_category"].items()]))
    if d.get("per_rater"):
        lines += ["", "## Per rater", ""]
        lines.append(_md_table(["rater", "n", "win rate", "95% CI", "soft"],
                               [[r, v["n"], v["win_rate"], f"[{_fmt(v['ci_low'])}, {_fmt(v['ci_high'])}]",
                                 v["soft_win_rate"]] for r, v in d["per_rater"].items()]))
    if d["warnings"]:
        lines += ["", "## Warnings", ""] + [f"- {w}" for w in d["warnings"]]
    return "\n".join(lines) + "\n"


def _per_rater(labels: Sequence[Label], policy: str, baseline: str, **kwargs) -> dict[str, dict[str, Any]]:
    """Each rater's own win rate, when the labels hold more than one rater."""
    raters = sorted({lab.rater for lab in labels if {lab.model_a, lab.model_b} == {policy, baseline}})
    if len(raters) < 2:
        return {}
    out = {}
    for r in raters:
        d = win_rate_from_labels([lab for lab in labels if lab.rater == r], policy, baseline, by_category=False,
                                 **kwargs).to_dict()
        out[r] = {k: d[k] for k in ("n", "n_prompts", "wins", "losses", "ties", "win_rate", "soft_win_rate",
                                    "ci_low", "ci_high", "lc_win_rate")}
    return out


def write_winrate(result: WinRateResult, out_dir: str | Path, labels: Sequence[Label] | None = None, *,
                  extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """winrate.json and winrate.md, plus winrate.html (with the pairs behind the number) when labels are given."""
    from rlaif.report.eval_page import winrate_html

    d = result.to_dict() | (extra or {})
    out = Path(out_dir)
    write_json(out / "winrate.json", d)
    write_text(out / "winrate.md", winrate_markdown(d))
    if labels is not None:
        write_text(out / "winrate.html", winrate_html(d, labels))
    return d


def _checked_win_rate(labels: list[Label], source: str | Path, policy: str, baseline: str, *,
                      categories: dict[str, str] | None, n_boot: int, seed: int, confidence: float) -> WinRateResult:
    pairs = Counter(frozenset((lab.model_a, lab.model_b)) for lab in labels)
    if frozenset((policy, baseline)) not in pairs:
        found = ", ".join(" vs ".join(sorted(str(m) for m in p)) for p in pairs) or "none"
        raise InputError(source, None, f"no labels compare '{policy}' with '{baseline}'",
                         f"pass --policy/--baseline as named in model_a/model_b; the file holds: {found}")
    res = win_rate_from_labels(labels, policy, baseline, categories=categories, n_boot=n_boot, seed=seed,
                               confidence=confidence)
    if res.n == 0:
        raise InputError(source, None, f"no label comparing '{policy}' with '{baseline}' has a verdict",
                         "re-run the labeling (failed calls have winner null and an error field)")
    return res


def _categories(prompts_path: str | Path | None) -> dict[str, str] | None:
    if prompts_path is None:
        return None
    return {p.prompt_id: p.category for p in read_prompts(prompts_path) if p.category is not None}


def winrate_from_labels_file(labels_path: str | Path, policy: str, baseline: str, out_dir: str | Path, *,
                             prompts_path: str | Path | None = None, n_boot: int = 10_000, seed: int = 0,
                             confidence: float = 0.95) -> dict[str, Any]:
    """The labels path of `rlaif winrate`: winrate.json, winrate.md, winrate.html."""
    labels = read_jsonl(labels_path, Label)
    res = _checked_win_rate(labels, labels_path, policy, baseline, categories=_categories(prompts_path),
                            n_boot=n_boot, seed=seed, confidence=confidence)
    per_rater = _per_rater(labels, policy, baseline, n_boot=n_boot, seed=seed, confidence=confidence)
    return write_winrate(res, out_dir, labels, extra={"per_rater": per_rater} if per_rater else None)


def winrate_from_responses_file(responses_path: str | Path, judges: Sequence[Any], policy: str, baseline: str,
                                out_dir: str | Path, *, prompts_path: str | Path | None = None, concurrency: int = 8,
                                cache: bool = True, base_urls: list[str] | None = None,
                                api_key_env: str | None = None, progress: bool | None = None,
                                n_boot: int = 10_000, seed: int = 0, confidence: float = 0.95) -> dict[str, Any]:
    """The judging path of `rlaif winrate`: every policy response against the baseline's response with the
    same sample number (same prompt), each judge in both orders, through the call layer (cached, so a
    re-run makes no calls). Writes labels.jsonl (and scores.jsonl for pointwise judges) beside winrate.*."""
    from rlaif.judge import label_responses
    from rlaif.judge.labeling import LiveCalls, ScoreContext

    responses = read_jsonl(responses_path, Response)
    found = sorted({r.policy for r in responses})
    missing = [p for p in (policy, baseline) if p not in found]
    if missing:
        raise InputError(responses_path, None, f"no responses of policy {', '.join(repr(m) for m in missing)}",
                         "pass --policy/--baseline as named in the file's 'policy' field: "
                         f"{', '.join(found) or 'none'}")
    keep = [r for r in responses if r.policy in (policy, baseline)]
    constraints = {} if prompts_path is None else {p.prompt_id: p.constraints for p in read_prompts(prompts_path)
                                                   if p.constraints}
    calls = LiveCalls(concurrency=concurrency, cache=cache, progress=progress, base_urls=base_urls,
                      api_key_env=api_key_env)
    try:
        run = label_responses(keep, list(judges), pairing="reference", reference=baseline, orders="both",
                              calls=calls, context=ScoreContext(constraints=constraints))
    finally:
        calls.close()
    if not run.pairs:
        raise InputError(responses_path, None, f"no prompt has responses of both '{policy}' and '{baseline}'",
                         "generate both policies on the same prompt set (same prompt_id)")
    res = _checked_win_rate(run.labels, responses_path, policy, baseline, categories=_categories(prompts_path),
                            n_boot=n_boot, seed=seed, confidence=confidence)
    per_rater = _per_rater(run.labels, policy, baseline, n_boot=n_boot, seed=seed, confidence=confidence)
    out = Path(out_dir)
    write_jsonl(out / "labels.jsonl", run.labels)
    if run.scores:
        write_jsonl(out / "scores.jsonl", run.scores)
    calls_made = {r: {"calls": s.calls, "cache_hits": s.cache_hits, "failed": s.failed} for r, s in run.stats.items()}
    return write_winrate(res, out, run.labels, extra={"per_rater": per_rater, "calls": calls_made}
                         if per_rater else {"calls": calls_made})


# ---- constraint compliance (rule checkers, no judge) --------------------------------------------------------

def constraint_compliance(prompts: Sequence[Prompt], responses: Sequence[Response], *, n_boot: int = 10_000,
                          seed: int = 0) -> dict[str, dict[str, Any]]:
    """Per policy: the share of responses meeting *all* their prompt's constraints, with a prompt-clustered
    interval, the mean share of constraints met, and the pass rate per constraint family and type.

    `scores` (a ClusteredScores of all-pass) is returned too, for `generalization_gap` between splits.
    """
    by_id = {p.prompt_id: p for p in prompts if p.constraints}
    out: dict[str, dict[str, Any]] = {}
    per_policy: dict[str, list[tuple[str, Any]]] = {}
    for r in responses:
        if r.prompt_id in by_id:
            per_policy.setdefault(r.policy, []).append((r.prompt_id, check(by_id[r.prompt_id].constraints,
                                                                             r.response)))
    for policy, rows in per_policy.items():
        scores = ClusteredScores.from_pairs([pid for pid, _ in rows], [float(c.all_pass) for _, c in rows])
        ci = bootstrap_interval(scores, n_boot=n_boot, seed=seed)
        fam: dict[str, list[bool]] = {}
        typ: dict[str, list[bool]] = {}
        for _, c in rows:
            for res in c.results:
                fam.setdefault(res.family, []).append(res.passed)
                typ.setdefault(f"{res.family}/{res.type}", []).append(res.passed)
        out[policy] = {
            "n": scores.n, "n_prompts": scores.n_prompts, "all_pass_rate": scores.mean,
            "ci_low": ci.low, "ci_high": ci.high, "ci_method": ci.method,
            "share_passed": sum(c.share_passed for _, c in rows) / len(rows),
            "per_family": {k: sum(v) / len(v) for k, v in sorted(fam.items())},
            "per_type": {k: sum(v) / len(v) for k, v in sorted(typ.items())},
            "scores": scores,
        }
    return out


# ---- diversity --------------------------------------------------------------------------------------------

def read_responses(path: str | Path) -> list[Response]:
    """Response records, each (policy, prompt_id, sample) once."""
    out, seen = [], {}
    for n, obj in iter_json_lines(path):
        try:
            r = Response.model_validate(obj)
        except ValidationError as e:
            raise InputError(path, n, f"not a valid Response record: {e.errors()[0]['msg']} "
                             f"(field {'.'.join(str(x) for x in e.errors()[0]['loc'])})",
                             "a response line needs prompt_id, prompt, policy, sample, response") from None
        key = (r.policy, r.prompt_id, r.sample)
        if key in seen:
            raise InputError(path, n, f"duplicate sample {r.sample} of prompt '{r.prompt_id}' for policy "
                             f"'{r.policy}' (first on line {seen[key]})", "number each prompt's samples 0, 1, 2, ...")
        seen[key] = n
        out.append(r)
    if not out:
        raise InputError(path, None, "the file holds no responses", "pass the output of `rlaif generate`")
    return out


def diversity_report(responses: Sequence[Response], *, tokenizer: str | None = None, embedding: bool = True,
                     embed_dtype: str = "auto", progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """{policy: {"per_input": metrics, "across_input": metrics, "n_prompts", "samples_per_prompt", ...}}."""
    by_policy: dict[str, dict[str, list[Response]]] = {}
    for r in responses:
        by_policy.setdefault(r.policy, {}).setdefault(r.prompt_id, []).append(r)
    texts = [r.response for r in responses]
    tok = tokenize(texts, tokenizer)
    tokens_of = {id(r): t for r, t in zip(responses, tok.tokens, strict=True)}
    # EAD's vocabulary: the tokenizer's size, or for whitespace tokens the input's n-grams per order
    ead_vocab = ngram_vocabulary(tok.tokens) if tok.tokenizer == "whitespace" else tok.vocab_size
    vectors_of = None
    embedder = None
    if embedding:
        embedder = load_embedder(embed_dtype)
        done = [0]

        def tick(k: int) -> None:
            done[0] += k
            if progress:
                progress(done[0], len(set(texts)))

        vecs = embedder.encode(texts, progress=tick)
        vectors_of = {id(r): v for r, v in zip(responses, vecs, strict=True)}
    report: dict[str, Any] = {}
    for policy, prompts in by_policy.items():
        groups = [sorted(rs, key=lambda r: r.sample) for rs in prompts.values()]
        sizes = [len(g) for g in groups]
        warnings = []
        if min(sizes) != max(sizes):
            warnings.append(f"prompts have between {min(sizes)} and {max(sizes)} samples; "
                            "samples_per_prompt reports the smallest")
        if max(sizes) < 2:
            warnings.append("one sample per prompt: per-input self-BLEU and embedding diversity are undefined")
        emb = None
        if vectors_of is not None:
            import numpy as np

            emb = [np.stack([vectors_of[id(r)] for r in g]) for g in groups]
        metrics = policy_diversity([[tokens_of[id(r)] for r in g] for g in groups], ead_vocab, emb)
        report[policy] = {
            "per_input": metrics["per_input"].to_dict(),
            "across_input": metrics["across_input"].to_dict(),
            "n_prompts": len(groups),
            "samples_per_prompt": min(sizes),
            "tokenizer": tok.tokenizer,
            "vocab_size": tok.vocab_size,
            "ead_vocab_sizes": list(ead_vocab) if isinstance(ead_vocab, list) else [ead_vocab] * len(EAD_ORDERS),
            "embedding_model": f"{embedder.name} ({embedder.dtype})" if embedder else None,
            "warnings": warnings,
        }
    return report


_METRICS = ["distinct_1", "distinct_2", "ead", "self_bleu", "embedding"]


def diversity_markdown(report: dict[str, Any]) -> str:
    lines = ["# Diversity", ""]
    for scope, title in (("per_input", "Per input (over each prompt's samples, averaged over prompts)"),
                         ("across_input", "Across inputs (the first sample of every prompt)")):
        lines += [f"## {title}", ""]
        per = scope == "per_input"
        lines.append(_md_table(["policy", "prompts", *(["samples"] if per else []), *_METRICS],
                               [[p, v["n_prompts"], *([v["samples_per_prompt"]] if per else []),
                                 *(v[scope][m] for m in _METRICS)] for p, v in report.items()]))
        lines.append("")
    first = next(iter(report.values()))
    lines += [f"Tokens: {first['tokenizer']} (vocabulary {first['vocab_size']}); embeddings: "
              f"{first['embedding_model'] or 'not computed'}. Higher is more diverse, except self-BLEU "
              "(0-100), where lower is more diverse. EAD: distinct n-grams over their expectation under "
              "uniform sampling from a vocabulary of V n-grams, mean of n = 1..5; V = "
              + ("the distinct n-grams of each order in this input: " + ", ".join(map(str, first["ead_vocab_sizes"]))
                 + " (so compare EAD across runs only with a fixed --tokenizer)."
                 if first["tokenizer"] == "whitespace" else f"the tokenizer's {first['vocab_size']}.")]
    warns = [f"- {p}: {w}" for p, v in report.items() for w in v["warnings"]]
    if warns:
        lines += ["", "## Warnings", "", *warns]
    return "\n".join(lines) + "\n"


def diversity_from_file(responses_path: str | Path, out_dir: str | Path, *, tokenizer: str | None = None,
                        embedding: bool = True, embed_dtype: str = "auto",
                        progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    report = diversity_report(read_responses(responses_path), tokenizer=tokenizer, embedding=embedding,
                              embed_dtype=embed_dtype, progress=progress)
    out = Path(out_dir)
    write_json(out / "diversity.json", report)
    write_text(out / "diversity.md", diversity_markdown(report))
    return report


# ---- eval suites ------------------------------------------------------------------------------------------

def run_eval(suite: Any, policy: str, baseline: str | None, out: str | Path, *, limit: int | None = None,
             samples: int | None = None, max_tokens: int | None = None, temperature: float | None = None,
             reward_model: str | None = None, judge_model: str | None = None, base_urls: list[str] | None = None,
             embedding: bool | None = None, concurrency: int = 8, progress: bool | None = True,
             prompts_offset: int = 0, **kwargs: Any) -> dict[str, Any]:
    """Run an eval suite (a name in evals/, a path, or a loaded `rlaif.suite.Suite`): see rlaif.evalsuite."""
    from rlaif.evalsuite import run_eval as _run

    return _run(suite, policy, baseline, out, limit=limit, samples=samples, max_tokens=max_tokens,
                temperature=temperature, reward_model=reward_model, judge_model=judge_model, base_urls=base_urls,
                embedding=embedding, concurrency=concurrency, progress=progress, prompts_offset=prompts_offset,
                **kwargs)
