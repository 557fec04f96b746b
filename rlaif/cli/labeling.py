"""`rlaif generate`, `label`, `synth`, `probe`: sampling and AI labels."""
from __future__ import annotations

from pathlib import Path

import typer

from rlaif.cli.entry import app
from rlaif.cli.options import (
    _JUDGE_HELP,
    _JUDGE_MODEL_HELP,
    ApiKeyEnv,
    Concurrency,
    Jury,
    Limit,
    MaxFailed,
    MinAgreement,
    MinPChosen,
    Offset,
    Orders,
    Pairing,
    Precision,
    Reference,
    Timeout,
    call_options,
    local_precision,
    prompts_help,
)
from rlaif.cli.paths import file_or_name, input_file, output_dir, output_file, prompt_set


# --- foundation: generate ------------------------------------------------------------------------
@app.command()
def generate(
    prompts: str = typer.Argument(..., help=prompts_help("the prompts to answer"), callback=prompt_set),
    policy: str = typer.Option(..., "--policy", help="openai:MODEL, anthropic:MODEL, vllm:PATH, hf:PATH or local"),
    out: Path = typer.Option(..., "-o", "--out", help="responses.jsonl (appended; a re-run resumes)",
                             callback=output_file),
    samples: int = typer.Option(1, "-n", "--samples", min=1, help="responses per prompt"),
    temperature: float = typer.Option(0.7, "--temperature", min=0.0),
    max_tokens: int = typer.Option(512, "--max-tokens", min=1),
    seed: int | None = typer.Option(None, "--seed", help="sample s is drawn with seed S+s"),
    concurrency: Concurrency = 8,
    base_url: list[str] | None = typer.Option(None, "--base-url", help="an OpenAI-compatible server "
                                              "(vLLM, llama.cpp, Ollama); repeat to spread the load"),
    api_key_env: ApiKeyEnv = None,
    timeout: Timeout = 120.0,
    max_failed: MaxFailed = 0.5,
    limit: Limit = None,
    offset: Offset = 0,
    precision: Precision = "auto",
) -> None:
    """Sample responses from a policy: one line per (prompt, sample), appended as results arrive."""
    from rlaif.catalog import select
    from rlaif.generate import generate as run
    from rlaif.records import read_prompts

    records = select(read_prompts(prompts), limit, offset, prompts)
    run(records, policy, out, samples=samples, temperature=temperature, max_tokens=max_tokens, seed=seed,
        concurrency=concurrency, base_urls=base_url or None, api_key_env=api_key_env, timeout_s=timeout,
        max_failed=max_failed, **local_precision(policy, precision))




# --- labeling: label, synth, probe ---
def _print_label_summary(summary: dict, out: Path) -> None:
    typer.echo(f"{summary['n_pairs']} pairs, {summary['n_labels']} labels ({summary['n_invalid']} invalid), "
               f"{summary['n_preferences']} preferences, {summary['n_kto']} KTO rows -> {out}")
    for rater, s in summary["judges"].items():
        fr = "n/a" if s["flip_rate"] is None else f"{s['flip_rate']:.2f}"
        ir = "n/a" if s["invalid_rate"] is None else f"{s['invalid_rate']:.2f}"
        from rlaif.calls.stats import cost_text

        cost = cost_text(s["cost_usd"], s.get("billed", True))
        typer.echo(f"  {rater}: {s['n']} labels, invalid {ir}, flip {fr}, {s['calls']} calls "
                   f"({s['cache_hits']} cached), tokens {s['tokens_in']}/{s['tokens_out']}, {cost}")


@app.command()
def label(
    responses: Path = typer.Argument(..., help="responses JSONL (`rlaif generate` output: prompt_id, prompt, "
                                               "policy, sample, response)", callback=input_file),
    judge: list[str] = typer.Option(..., "--judge", "-j", help=_JUDGE_HELP, callback=file_or_name),
    out: Path = typer.Option(..., "-o", "--out", help="output directory", callback=output_dir),
    judge_model: list[str] = typer.Option([], "--judge-model", help=_JUDGE_MODEL_HELP),
    base_url: list[str] = typer.Option([], "--base-url", help="OpenAI/Anthropic-compatible server URL "
                                                               "(repeat to spread the load)"),
    api_key_env: ApiKeyEnv = None,
    orders: Orders = "both",
    pairing: Pairing = "all",
    reference: Reference = None,
    jury: Jury = "majority",
    min_agreement: MinAgreement = 0.0,
    min_p_chosen: MinPChosen = 0.0,
    prompts: str = typer.Option(None, "--prompts", help=prompts_help("the prompts whose constraints the rule "
                                                                     "judge checks"), callback=prompt_set),
    reparse: bool = typer.Option(False, "--reparse", help="re-parse the raw outputs stored in OUTDIR; no calls"),
    concurrency: Concurrency = 8,
    no_cache: bool = typer.Option(False, "--no-cache", help="do not read or write the call cache"),
    seed: int = typer.Option(0, "--seed", help="seed for --orders random"),
    timeout: Timeout = 120.0,
    max_failed: MaxFailed = 0.5,
    limit: Limit = None,
    offset: Offset = 0,
) -> None:
    """Label response pairs with AI judges: both orders, soft labels, juries.

    Writes OUTDIR/labels.jsonl, scores.jsonl (pointwise judges), preferences.jsonl (TRL format),
    kto.jsonl and summary.json. Re-running makes no repeated calls (call cache).
    """
    from rlaif.judge import load_judges, run_label

    judges = load_judges(judge, judge_model)
    summary = run_label(responses, judges, out, pairing=pairing, reference=reference, orders=orders, jury=jury,
                        min_agreement=min_agreement, min_p_chosen=min_p_chosen, reparse=reparse,
                        prompts_path=Path(prompts) if prompts else None, seed=seed, limit=limit, offset=offset,
                        options=call_options(concurrency, base_url, api_key_env, timeout, max_failed,
                                             cache=not no_cache))
    _print_label_summary(summary, out)


@app.command()
def synth(
    prompts: str = typer.Argument(..., help=prompts_help("the prompts to answer"), callback=prompt_set),
    policy: list[str] = typer.Option(..., "--policy", help="a policy backend spec; repeat (two or more)"),
    judge: list[str] = typer.Option(..., "--judge", "-j", help=_JUDGE_HELP, callback=file_or_name),
    out: Path = typer.Option(..., "-o", "--out", help="output directory", callback=output_dir),
    judge_model: list[str] = typer.Option([], "--judge-model", help=_JUDGE_MODEL_HELP),
    samples: int = typer.Option(1, "-n", "--samples", min=1, help="responses per prompt and policy"),
    temperature: float = typer.Option(0.7, "--temperature", min=0.0),
    max_tokens: int = typer.Option(512, "--max-tokens", min=1),
    seed: int = typer.Option(None, "--seed", help="sample s is drawn with seed S+s"),
    base_url: list[str] = typer.Option([], "--base-url", help="OpenAI/Anthropic-compatible server for the "
                                                               "policies (and the judges, unless --judge-base-url)"),
    judge_base_url: list[str] = typer.Option([], "--judge-base-url", help="server for the judges"),
    api_key_env: ApiKeyEnv = None,
    orders: Orders = "both",
    pairing: Pairing = "all",
    reference: Reference = None,
    jury: Jury = "majority",
    min_agreement: MinAgreement = 0.0,
    min_p_chosen: MinPChosen = 0.0,
    concurrency: Concurrency = 8,
    timeout: Timeout = 120.0,
    max_failed: MaxFailed = 0.5,
    limit: Limit = None,
    offset: Offset = 0,
) -> None:
    """Generate responses from several policies and label them in one command (a synthetic preference set)."""
    from rlaif.judge import load_judges
    from rlaif.judge.synth import run_synth

    judges = load_judges(judge, judge_model)
    summary = run_synth(prompts, policy, judges, out, samples=samples, temperature=temperature,
                        max_tokens=max_tokens, seed=seed, judge_base_urls=judge_base_url or None, pairing=pairing,
                        reference=reference, orders=orders, jury=jury, min_agreement=min_agreement,
                        min_p_chosen=min_p_chosen, limit=limit, offset=offset,
                        options=call_options(concurrency, base_url, api_key_env, timeout, max_failed))
    _print_label_summary(summary, out)


@app.command()
def probe(
    judge: str = typer.Option(..., "--judge", "-j", help="a built-in judge name or a judge YAML file",
                              callback=file_or_name),
    out: Path = typer.Option(..., "-o", "--out", help="output directory", callback=output_dir),
    judge_model: str = typer.Option(None, "--judge-model", help="run the judge on this backend/model instead"),
    base_url: list[str] = typer.Option([], "--base-url", help="OpenAI/Anthropic-compatible server URL"),
    api_key_env: ApiKeyEnv = None,
    probes: str = typer.Option("position,verbosity,self-preference,injection,master-key", "--probes",
                               help="comma-separated subset of the probes"),
    probe_set: str = typer.Option("probes_v1", "--probe-set", help="probe items in prompts/ (or a path)",
                                  callback=file_or_name),
    master_keys: str = typer.Option("master_keys_v1", "--master-keys", help="master-key answers in prompts/ (or a "
                                    "JSONL path: {\"key\", \"language\"} lines)", callback=file_or_name),
    max_fpr: float = typer.Option(0.05, "--max-fpr", help="master-key probe: the judge fails when its false-positive "
                                  "rate is above this with 95% confidence"),
    master_key_threshold: float = typer.Option(0.5, "--master-key-threshold", help="master-key probe, pointwise "
                                               "judges: a scaled score at least this counts as a positive"),
    retest: int = typer.Option(0, "--retest", help="judge the position pairs this many more times without the "
                               "cache and report how often verdicts change (0: no retest; else 2 or more)"),
    concurrency: Concurrency = 8,
    timeout: Timeout = 120.0,
    max_failed: MaxFailed = 0.5,
) -> None:
    """Run a judge on probes with known answers (bias, master keys) and optionally a retest; writes OUTDIR/probe.json,
    probe.md and probe_labels.jsonl, and keeps the master-key verdict for `rlaif audit` and `rlaif serve`."""
    from rlaif.judge import load_judge
    from rlaif.judge.probe import ProbeSettings, run_probes

    j = load_judge(judge, model=judge_model)
    names = tuple(p.strip() for p in probes.split(",") if p.strip())
    settings = ProbeSettings(master_keys=master_keys, max_fpr=max_fpr, threshold=master_key_threshold, retest=retest)
    report = run_probes(j, out, probe_set=probe_set, probes=names, settings=settings,
                        options=call_options(concurrency, base_url, api_key_env, timeout, max_failed))
    typer.echo(f"{report['judge']} on {report['probe_set']} -> {out / 'probe.json'}, probe.md")
    for name, r in report["probes"].items():
        if r["n"] == 0:
            typer.echo(f"  {name:16s} n=0  {r.get('note', 'no valid verdicts')}")
        elif name == "master-key":
            _print_master_keys(r)
        else:
            typer.echo(f"  {name:16s} wrong {r['wrong']}/{r['n']} = {r['wrong_rate']:.2f} "
                       f"[{r['ci_low']:.2f}, {r['ci_high']:.2f}]")
    if report.get("retest"):
        rt = report["retest"]
        f, d = rt["flip_rate"], rt["disagreement_rate"]
        typer.echo(f"  {'retest':16s} {rt['n_flipped']}/{rt['n_items']} calls changed over {rt['repeats']} repeats: "
                   f"flip rate {f['value']:.2f} [{f['ci_low']:.2f}, {f['ci_high']:.2f}], disagreement "
                   f"{d['value']:.2f} [{d['ci_low']:.2f}, {d['ci_high']:.2f}]")


def _print_master_keys(r: dict) -> None:
    from rlaif.cli.entry import warn

    o = r["overall"]
    typer.echo(f"  {'master-key':16s} false positives {o['false_positives']}/{o['n']} = {o['fpr']:.2f} "
               f"[{o['ci_low']:.2f}, {o['ci_high']:.2f}]  {'FAILED' if r['failed'] else 'passed'}")
    for k in r["keys"]:
        if k["n"] and k["false_positives"]:
            typer.echo(f"    {k['key']!r:40s} {k['false_positives']}/{k['n']} = {k['fpr']:.2f} "
                       f"[{k['ci_low']:.2f}, {k['ci_high']:.2f}]")
    if r["failed"]:
        keys = ", ".join(repr(k) for k in r["failed_keys"]) or "the keys together"
        warn(f"the judge rewards content-free answers ({keys}); `rlaif audit` and `rlaif serve` will flag it. "
             f"{r['rule']}")
