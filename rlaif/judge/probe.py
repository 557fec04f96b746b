"""Active bias probes: a judge on pairs where the right answer is known, written for this project.

The probe set (`prompts/probes_v1.jsonl`) holds items {id, prompt, better, worse}: `worse` is
plainly wrong. Every probe pair puts the right answer as `a` and is judged in both orders:

- position: better vs worse; wrong = the verdict changes with the order (one count per pair).
- verbosity: better vs worse padded with fluent filler (`prompts/probe_filler_v1.txt`).
- injection: better vs worse carrying a sentence addressed to the judge (`probe_injections_v1.txt`).
- self-preference: the judge model's own answer, generated now, vs the reference `better` answer;
  wrong = it prefers its own (reference answers are written to be at least as good).
For the last three, wrong = a verdict (one per order) naming the worse side; ties are not wrong
and are counted apart. Each rate carries a Wilson interval.
- master-key: answers made only of a master key (`:`, `Solution`, ...) that the judge must never reward
  (`rlaif.judge.master_keys`: pointwise, binary and pairwise-vs-reference judges), with a failure test whose
  verdict is kept for `rlaif audit` and `rlaif serve` (`rlaif.judge.probe_store`).
With a retest (`ProbeSettings.retest`), the position pairs are judged N more times without the cache
(`rlaif.judge.retest`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlaif import catalog
from rlaif.backends.base import Request
from rlaif.calls.options import CallOptions
from rlaif.calls.stats import CallStats
from rlaif.errors import ConfigError, InputError
from rlaif.judge.jury import judge_verdicts
from rlaif.judge.labeling import LiveCalls
from rlaif.judge.master_keys import (
    DEFAULT_MAX_FPR,
    DEFAULT_THRESHOLD,
    MASTER_KEYS,
    check_limits,
    load_master_keys,
    master_key_probe,
)
from rlaif.judge.pairing import Pair, make_pair
from rlaif.judge.pipeline import label_pairs
from rlaif.judge.probe_store import record_probe
from rlaif.judge.retest import check_retest, run_retest
from rlaif.judge.spec import Judge
from rlaif.outlock import locks_output
from rlaif.records import Label, Response, iter_json_lines, read_text, write_json, write_jsonl, write_text
from rlaif.stats.intervals import wilson_interval

PROBES = ("position", "verbosity", "self-preference", "injection", "master-key")


@dataclass(frozen=True)
class ProbeItem:
    id: str
    prompt: str
    better: str
    worse: str


def load_probe_items(name: str = "probes_v1") -> list[ProbeItem]:
    path = catalog.find("prompts", name, suffixes=(".jsonl",))
    out = []
    for n, obj in iter_json_lines(path):
        missing = [k for k in ("id", "prompt", "better", "worse") if not isinstance(obj.get(k), str)]
        if missing:
            raise InputError(path, n, f"probe item lacks {', '.join(missing)}",
                             'each line is {"id", "prompt", "better", "worse"} (strings)')
        out.append(ProbeItem(obj["id"], obj["prompt"], obj["better"], obj["worse"]))
    if not out:
        raise InputError(path, None, "the probe set is empty", "add probe items")
    return out


def load_lines(name: str) -> list[str]:
    """Non-empty, non-comment lines of a text file in prompts/."""
    path = catalog.find("prompts", name, suffixes=(".txt",))
    lines = [s.strip() for s in read_text(path).splitlines()]
    lines = [s for s in lines if s and not s.startswith("#")]
    if not lines:
        raise InputError(path, None, "no lines", "add one sentence per line")
    return lines


def _resp(item: ProbeItem, policy: str, text: str) -> Response:
    return Response(prompt_id=item.id, prompt=item.prompt, policy=policy, response=text)


def build_probe_pairs(items: list[ProbeItem], fillers: list[str], injections: list[str],
                      own: dict[str, str] | None = None) -> dict[str, list[Pair]]:
    """probe name -> pairs, the right answer always as `a` (both orders are judged)."""
    pairs: dict[str, list[Pair]] = {name: [] for name in PROBES}
    for n, it in enumerate(items):
        good = _resp(it, "better", it.better)
        pairs["position"].append(make_pair(good, _resp(it, "worse", it.worse)))
        padded = f"{it.worse} {fillers[n % len(fillers)]}"
        pairs["verbosity"].append(make_pair(good, _resp(it, "worse+filler", padded)))
        injected = f"{it.worse} {injections[n % len(injections)]}"
        pairs["injection"].append(make_pair(good, _resp(it, "worse+injection", injected)))
        if own is not None and own.get(it.id, "").strip():
            pairs["self-preference"].append(make_pair(_resp(it, "reference", it.better), _resp(it, "self", own[it.id])))
    return pairs


def own_answers(judge: Judge, items: list[ProbeItem], calls: Any, stats: CallStats,
                max_tokens: int = 200) -> dict[str, str]:
    """The judge model answering the probe prompts itself (greedy), for the self-preference probe."""
    reqs = [Request(messages=[{"role": "user", "content": it.prompt}], max_tokens=max_tokens, temperature=0.0)
            for it in items]
    comps = calls.run(judge, [f"self|{it.id}" for it in items], reqs, stats, what=f"{judge.rater} answers")
    return {it.id: c.text for it, c in zip(items, comps, strict=True)}


def probe_rates(name: str, labels: list[Label], alpha: float = 0.05) -> dict:
    if name == "position":
        verdicts = judge_verdicts(labels)
        both = [v for per in verdicts.values() for v in per.values() if v.flipped is not None]
        n, wrong, ties = len(both), sum(v.flipped for v in both), 0
        invalid = sum(1 for per in verdicts.values() for v in per.values() if v.flipped is None)
    else:
        valid = [x for x in labels if x.error is None and x.winner is not None]
        n, wrong, ties = len(valid), sum(x.winner == "b" for x in valid), sum(x.winner == "tie" for x in valid)
        invalid = len(labels) - len(valid)
    lo, hi = wilson_interval(wrong / n, n, 1 - alpha) if n else (None, None)
    return {"n": n, "wrong": wrong, "wrong_rate": wrong / n if n else None, "ci_low": lo, "ci_high": hi,
            "n_ties": ties, "n_invalid": invalid}


@dataclass(frozen=True)
class ProbeSettings:
    """What `rlaif probe` adds to the bias probes: the master-key file and its failure test, and the retest."""

    master_keys: str = MASTER_KEYS
    max_fpr: float = DEFAULT_MAX_FPR
    threshold: float = DEFAULT_THRESHOLD
    retest: int = 0  # repetitions of the uncached retest (0: none)
    record: bool = True  # keep the verdict in the probe store for `rlaif audit` / `rlaif serve`


def _check_probes(judge: Judge, probes: tuple[str, ...], settings: ProbeSettings) -> None:
    unknown = [p for p in probes if p not in PROBES]
    if unknown:
        raise ConfigError(f"unknown probe {', '.join(unknown)}. Fix: use some of {', '.join(PROBES)}")
    if judge.kind == "rule":
        raise ConfigError(f"judge '{judge.name}' checks constraints, which the probe items do not carry. "
                          "Fix: probe a model judge (LLM or reward model)")
    if judge.mode == "binary" and "master-key" not in probes:
        raise ConfigError(f"judge '{judge.name}' is binary (good/bad), not a preference judge. "
                          "Fix: probe a pairwise or pointwise judge, or a binary one with --probes master-key")
    if "master-key" in probes:
        check_limits(settings.max_fpr, settings.threshold)
        load_master_keys(settings.master_keys)  # a bad key file fails before any call
    if settings.retest:
        check_retest(judge, settings.retest)


def _not_applicable(judge: Judge, name: str) -> str | None:
    if name == "master-key":
        return None
    if judge.mode == "binary":
        return "not applicable: a binary judge gives no preference between two answers"
    if name == "position" and judge.mode != "pairwise":
        return "not applicable: a pointwise judge sees one response at a time"
    return None


def _bias_probe(judge: Judge, name: str, pairs: list[Pair], calls: Any, alpha: float) -> tuple[dict, list[Label]]:
    run = label_pairs(pairs, [judge], orders="both", calls=calls)
    for lab in run.labels:
        lab.probe = name  # type: ignore[attr-defined]  (extra field)
    rates = probe_rates(name, run.labels, alpha)
    if name == "self-preference" and judge.kind != "llm":
        rates["note"] = "not applicable: the judge generates no text of its own"
    return rates | {"_stats": run.stats[judge.rater]}, run.labels


@locks_output("out", directory=True)
def run_probes(judge: Judge, out: Path | None = None, *, probe_set: str = "probes_v1",
               filler: str = "probe_filler_v1", injections: str = "probe_injections_v1",
               probes: tuple[str, ...] = PROBES, calls: Any = None, alpha: float = 0.05,
               options: CallOptions = CallOptions(progress=False),
               settings: ProbeSettings = ProbeSettings()) -> dict:
    """Run the probes; returns (and writes to OUT/probe.json, probe.md, probe_labels.jsonl, master_key_scores.jsonl
    and with a retest retest.jsonl) the report `{"judge", "probe_set", "probes": {name: {...}}, "retest"?}`;
    bias probes: {n, wrong, wrong_rate, ci_low, ci_high, n_ties, n_invalid}; master-key: see
    `rlaif.judge.master_keys`; retest: see `rlaif.judge.retest`."""
    _check_probes(judge, probes, settings)
    items = load_probe_items(probe_set)
    own_calls = calls is None
    calls = calls or LiveCalls.of(options)
    stats = CallStats()
    report: dict = {"judge": judge.rater, "probe_set": probe_set, "alpha": alpha, "probes": {}}
    all_labels: list[Label] = []
    key_scores: list = []
    retest_rows: list[dict] = []
    try:
        own = None
        if "self-preference" in probes and judge.kind == "llm" and judge.mode != "binary":
            own = own_answers(judge, items, calls, stats)
        pairs = build_probe_pairs(items, load_lines(filler), load_lines(injections), own)
        for name in probes:
            note = _not_applicable(judge, name)
            if note is not None:
                report["probes"][name] = {**probe_rates(name, []), "note": note}
            elif name == "master-key":
                mk, labels, key_scores = master_key_probe(judge, items, calls, stats, keys_file=settings.master_keys,
                                                          alpha=alpha, max_fpr=settings.max_fpr,
                                                          threshold=settings.threshold)
                for lab in labels:
                    lab.probe = name  # type: ignore[attr-defined]  (extra field)
                all_labels += labels
                report["probes"][name] = mk
            else:
                rates, labels = _bias_probe(judge, name, pairs[name], calls, alpha)
                stats.add(rates.pop("_stats"))
                all_labels += labels
                report["probes"][name] = rates
        if settings.retest:
            report["retest"], retest_rows = run_retest(judge, pairs["position"], settings.retest, options, stats,
                                                       alpha=alpha)
        report["usage"] = {"calls": stats.calls, "cache_hits": stats.cache_hits, "tokens_in": stats.input_tokens,
                           "tokens_out": stats.output_tokens,
                           "cost_usd": round(stats.cost_usd, 6) if stats.cost_usd is not None else None,
                           "billed": stats.billed}
    finally:
        if own_calls:
            calls.close()
    if out is not None:
        _write(Path(out), report, all_labels, key_scores, retest_rows)
    stats.check(options.max_failed, f"probe {judge.rater}")
    if settings.record and ("master-key" in report["probes"] or "retest" in report):
        record_probe(report, out)
    return report


def _write(out: Path, report: dict, labels: list[Label], key_scores: list, retest_rows: list[dict]) -> None:
    from rlaif.report.probe_page import render_probe_md

    write_jsonl(out / "probe_labels.jsonl", labels)
    if key_scores:
        write_jsonl(out / "master_key_scores.jsonl", key_scores)
    if retest_rows:
        write_jsonl(out / "retest.jsonl", retest_rows)
    write_json(out / "probe.json", report)
    write_text(out / "probe.md", render_probe_md(report))
