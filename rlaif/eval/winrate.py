"""`rlaif winrate`: win rates from labels or by running judges, and their writers.

Each entry point reads plain files, computes with `rlaif.stats.winrate`, and writes a JSON summary
with stable keys plus markdown and HTML beside it:

- `winrate_from_labels_file`    → `winrate.json`, `winrate.md`, `winrate.html` (`rlaif winrate --labels ...`)
- `winrate_from_responses_file` → the same plus `labels.jsonl` (`rlaif winrate RESPONSES --judge J ...`)

Both return a `WinrateRun`: winrate.json's content and the folder it is in.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlaif.calls.options import CallOptions
from rlaif.calls.stats import CallsFailed, CallStats
from rlaif.errors import InputError
from rlaif.outlock import locks_output
from rlaif.records import Label, read_labels, read_prompts, read_responses, write_json, write_jsonl, write_text
from rlaif.report.markdown import fmt, md_table, md_text
from rlaif.stats.winrate import WinRateResult, win_rate_from_labels


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    return md_table(rows, headers=header).rstrip("\n")  # the callers join lines themselves


def _ci(d: dict[str, Any]) -> str:
    return f"[{fmt(d['ci_low'])}, {fmt(d['ci_high'])}]"


def winrate_markdown(d: dict[str, Any]) -> str:
    lines = [f"# Win rate: {md_text(d['policy'])} vs {md_text(d['baseline'])}", ""]
    lines.append(_table(
        ["n", "prompts", "wins", "losses", "ties", "win rate", "95% CI", "soft", "length-controlled"],
        [[d["n"], d["n_prompts"], d["wins"], d["losses"], d["ties"], d["win_rate"], _ci(d), d["soft_win_rate"],
          d["lc_win_rate"]]]))
    lines += ["", f"Ties count half. Interval: {d['ci_method']}."]
    if d["per_category"]:
        lines += ["", "## Per category", ""]
        lines.append(_table(["category", "n", "win rate", "95% CI", "length-controlled"],
                            [[c, v["n"], v["win_rate"], _ci(v), v["lc_win_rate"]]
                             for c, v in d["per_category"].items()]))
    if d.get("per_rater"):
        lines += ["", "## Per rater", ""]
        lines.append(_table(["rater", "n", "win rate", "95% CI", "soft"],
                            [[r, v["n"], v["win_rate"], _ci(v), v["soft_win_rate"]]
                             for r, v in d["per_rater"].items()]))
    if d["warnings"]:
        lines += ["", "## Warnings", ""] + [f"- {md_text(w)}" for w in d["warnings"]]
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


@dataclass(frozen=True)
class WinrateRun:
    """What `rlaif winrate` wrote: winrate.json's content and the folder holding winrate.json, .md, .html (and,
    when it judged, labels.jsonl)."""

    result: dict[str, Any]
    out: Path

    @property
    def summary(self) -> str:
        """The line `rlaif winrate` prints: the win rate, its interval, the counts, the length-controlled rate."""
        d = self.result
        lc = "–" if d["lc_win_rate"] is None else f"{d['lc_win_rate']:.3f}"
        return (f"{d['policy']} vs {d['baseline']}: win rate {d['win_rate']:.3f} [{d['ci_low']:.3f}, "
                f"{d['ci_high']:.3f}] over {d['n']} comparisons ({d['wins']}-{d['losses']}-{d['ties']}), "
                f"length-controlled {lc}")


def write_winrate(result: WinRateResult, out_dir: str | Path, labels: Sequence[Label] | None = None, *,
                  extra: dict[str, Any] | None = None) -> WinrateRun:
    """winrate.json and winrate.md, plus winrate.html (with the pairs behind the number) when labels are given."""
    from rlaif.report.eval_page import winrate_html

    d = result.to_dict() | (extra or {})
    out = Path(out_dir)
    write_json(out / "winrate.json", d)
    write_text(out / "winrate.md", winrate_markdown(d))
    if labels is not None:
        write_text(out / "winrate.html", winrate_html(d, labels))
    return WinrateRun(d, out)


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
                             confidence: float = 0.95) -> WinrateRun:
    """The labels path of `rlaif winrate`: winrate.json, winrate.md, winrate.html."""
    labels, duplicates = read_labels(labels_path, orientation=False)
    res = _checked_win_rate(labels, labels_path, policy, baseline, categories=_categories(prompts_path),
                            n_boot=n_boot, seed=seed, confidence=confidence)
    if duplicates.warning():  # as the audit says it: how many, why, and which line repeats which
        res.warnings.insert(0, duplicates.warning())
    per_rater = _per_rater(labels, policy, baseline, n_boot=n_boot, seed=seed, confidence=confidence)
    return write_winrate(res, out_dir, labels, extra={"per_rater": per_rater} if per_rater else None)


def _write_labels(out: Path, run: Any) -> None:
    write_jsonl(out / "labels.jsonl", run.labels)
    if run.scores:
        write_jsonl(out / "scores.jsonl", run.scores)


@locks_output("out_dir", directory=True)  # it pays for calls: one writer per OUTDIR
def winrate_from_responses_file(responses_path: str | Path, judges: Sequence[Any], policy: str, baseline: str,
                                out_dir: str | Path, *, prompts_path: str | Path | None = None,
                                n_boot: int = 10_000, seed: int = 0, confidence: float = 0.95,
                                options: CallOptions = CallOptions()) -> WinrateRun:
    """The judging path of `rlaif winrate`: every policy response against the baseline's response with the
    same sample number (same prompt), each judge in both orders, through the call layer (cached, so a
    re-run makes no calls). Writes labels.jsonl (and scores.jsonl for pointwise judges) beside winrate.*;
    more than `options.max_failed` of the calls failing raises CallsFailed with only those two written."""
    from rlaif.judge import label_responses
    from rlaif.judge.labeling import LiveCalls, ScoreContext

    responses = read_responses(responses_path)
    found = sorted({r.policy for r in responses})
    missing = [p for p in (policy, baseline) if p not in found]
    if missing:
        raise InputError(responses_path, None, f"no responses of policy {', '.join(repr(m) for m in missing)}",
                         "pass --policy/--baseline as named in the file's 'policy' field: "
                         f"{', '.join(found) or 'none'}")
    keep = [r for r in responses if r.policy in (policy, baseline)]
    constraints = {} if prompts_path is None else {p.prompt_id: p.constraints for p in read_prompts(prompts_path)
                                                   if p.constraints}
    calls = LiveCalls.of(options)
    try:
        run = label_responses(keep, list(judges), pairing="reference", reference=baseline, orders="both",
                              calls=calls, context=ScoreContext(constraints=constraints))
    finally:
        calls.close()
    if not run.pairs:
        raise InputError(responses_path, None, f"no prompt has responses of both '{policy}' and '{baseline}'",
                         "generate both policies on the same prompt set (same prompt_id)")
    out = Path(out_dir)
    try:
        CallStats.total(run.stats.values()).check(options.max_failed, f"winrate {policy} vs {baseline}")
    except CallsFailed:  # keep what was judged: the re-run's cache hits
        _write_labels(out, run)
        raise
    res = _checked_win_rate(run.labels, responses_path, policy, baseline, categories=_categories(prompts_path),
                            n_boot=n_boot, seed=seed, confidence=confidence)
    per_rater = _per_rater(run.labels, policy, baseline, n_boot=n_boot, seed=seed, confidence=confidence)
    _write_labels(out, run)
    calls_made = {r: {"calls": s.calls, "cache_hits": s.cache_hits, "failed": s.failed} for r, s in run.stats.items()}
    return write_winrate(res, out, run.labels, extra={"per_rater": per_rater, "calls": calls_made}
                         if per_rater else {"calls": calls_made})
