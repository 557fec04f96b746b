"""The `rlaif` command line: thin typer commands.

Heavy imports (torch, transformers, SDKs, pandas) happen inside command bodies so
`rlaif --help` answers fast. Only `main()` turns rlaif errors into exit codes: 2 for what the
user can fix, 3 (`rlaif.calls.CallsFailed`) when more than --max-failed of the calls failed.
Each command section below belongs to one area; keep them separate.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from rlaif.cli_paths import file_or_name, folder_or_name, input_file, output_dir, output_file
from rlaif.errors import RlaifError

app = typer.Typer(
    help="RL from AI feedback: label, audit, train, evaluate.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """RL from AI feedback: label, audit, train, evaluate."""


# Options several commands share, declared once so a flag means one thing everywhere
# (tests/test_cli_conventions.py checks the spellings across all commands).
Concurrency = Annotated[int, typer.Option("--concurrency", "-c", min=1, help="calls in flight at once")]
ApiKeyEnv = Annotated[str | None, typer.Option("--api-key-env", help="environment variable holding the API key "
                                                "(default OPENAI_API_KEY / ANTHROPIC_API_KEY)")]
Timeout = Annotated[float, typer.Option("--timeout", min=0.1, help="seconds per call before it is retried")]
MaxFailed = Annotated[float, typer.Option("--max-failed", min=0.0, max=1.0,
                                          help="share of the calls made that may fail for good (after retries) "
                                               "before the run exits 3; what was answered is kept for the re-run "
                                               "(0: any failure, 1: never)")]
# How `rlaif label` and `rlaif synth` build and filter preference pairs.
Orders = Annotated[str, typer.Option("--orders", help="both | random | ab: the orders each pair is shown in")]
Pairing = Annotated[str, typer.Option("--pairing", help="all | best-worst | reference")]
Reference = Annotated[str | None, typer.Option("--reference", help="the baseline policy for --pairing reference")]
Jury = Annotated[str, typer.Option("--jury", help="majority | mean | dawid-skene")]
MinAgreement = Annotated[float, typer.Option("--min-agreement", help="drop pairs whose judges agree less")]
MinPChosen = Annotated[float, typer.Option("--min-p-chosen", help="drop preferences whose consensus "
                                                                  "probability is lower (e.g. 0.7)")]


def _warn(message: str | None) -> None:
    if message:
        typer.secho(f"warning: {message}", err=True, fg="yellow")


def main(argv: list[str] | None = None) -> None:
    """The `rlaif` entry point; `argv` (default: sys.argv[1:]) lets tests run a command in-process."""
    try:
        app(args=argv)
    except RlaifError as e:
        from rlaif.redact import redact

        # A second guard: the call layer redacts what it passes on; this catches any other path.
        typer.secho(f"error: {redact(e)}", err=True, fg="red")
        sys.exit(e.exit_code)
    except (OSError, UnicodeError) as e:
        # Last line of defence: the I/O layer (rlaif.records) and the path checks (rlaif.cli_paths) turn
        # these into PATH:LINE errors; one that slips past still gets one line and exit 2, not a traceback.
        where = getattr(e, "filename", None)
        typer.secho(f"error: {where + ': ' if isinstance(where, str) else ''}{getattr(e, 'strerror', None) or e}. "
                    "Fix: check the path and its permissions", err=True, fg="red")
        sys.exit(2)
    except KeyboardInterrupt:
        typer.secho("interrupted: re-run the same command to resume", err=True)
        sys.exit(130)


# --- foundation: generate ------------------------------------------------------------------------
@app.command()
def generate(
    prompts: str = typer.Argument(..., help="prompt file (.jsonl: plain, Alpaca, chat or MT-Bench lines) "
                                            "or a built-in prompt set name, e.g. demo", callback=file_or_name),
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
) -> None:
    """Sample responses from a policy: one line per (prompt, sample), appended as results arrive."""
    from rlaif.catalog import find
    from rlaif.generate import generate as run
    from rlaif.records import read_prompts

    records = read_prompts(find("prompts", prompts))
    run(records, policy, out, samples=samples, temperature=temperature, max_tokens=max_tokens, seed=seed,
        concurrency=concurrency, base_urls=base_url or None, api_key_env=api_key_env, timeout_s=timeout,
        max_failed=max_failed)


# --- labeling: label, synth, probe ---------------------------------------------------------------
_JUDGE_HELP = ("a built-in judge (pairwise, pairwise-logprob, pairwise-cot, rubric, rubric-aspects, binary, rule, "
               "reward-model) or a judge YAML file; repeat for a jury")
_JUDGE_MODEL_HELP = ("run the judge(s) on this backend/model instead (openai:MODEL, anthropic:MODEL, hf:PATH, "
                     "vllm:PATH, local; a checkpoint dir for reward-model): once for all judges, or once per --judge")


def _print_label_summary(summary: dict, out: Path) -> None:
    typer.echo(f"{summary['n_pairs']} pairs, {summary['n_labels']} labels ({summary['n_invalid']} invalid), "
               f"{summary['n_preferences']} preferences, {summary['n_kto']} KTO rows -> {out}")
    for rater, s in summary["judges"].items():
        fr = "n/a" if s["flip_rate"] is None else f"{s['flip_rate']:.2f}"
        ir = "n/a" if s["invalid_rate"] is None else f"{s['invalid_rate']:.2f}"
        cost = "unknown" if s["cost_usd"] is None else f"${s['cost_usd']:.4f}"
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
    prompts: Path = typer.Option(None, "--prompts", help="prompts JSONL whose constraints the rule judge checks",
                                 callback=input_file),
    reparse: bool = typer.Option(False, "--reparse", help="re-parse the raw outputs stored in OUTDIR; no calls"),
    concurrency: Concurrency = 8,
    no_cache: bool = typer.Option(False, "--no-cache", help="do not read or write the call cache"),
    seed: int = typer.Option(0, "--seed", help="seed for --orders random"),
    timeout: Timeout = 120.0,
    max_failed: MaxFailed = 0.5,
) -> None:
    """Label response pairs with AI judges: both orders, soft labels, juries.

    Writes OUTDIR/labels.jsonl, scores.jsonl (pointwise judges), preferences.jsonl (TRL format),
    kto.jsonl and summary.json. Re-running makes no repeated calls (call cache).
    """
    from rlaif.judge import load_judges, run_label

    judges = load_judges(judge, judge_model)
    summary = run_label(responses, judges, out, pairing=pairing, reference=reference, orders=orders, jury=jury,
                        min_agreement=min_agreement, min_p_chosen=min_p_chosen, reparse=reparse,
                        prompts_path=prompts, seed=seed,
                        concurrency=concurrency, cache=not no_cache, base_urls=base_url or None,
                        api_key_env=api_key_env, timeout_s=timeout, max_failed=max_failed)
    _print_label_summary(summary, out)


@app.command()
def synth(
    prompts: str = typer.Argument(..., help="prompt file (.jsonl) or a built-in prompt set name, e.g. demo",
                                  callback=file_or_name),
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
) -> None:
    """Generate responses from several policies and label them in one command (a synthetic preference set)."""
    from rlaif.judge import load_judges
    from rlaif.judge.synth import run_synth

    judges = load_judges(judge, judge_model)
    summary = run_synth(prompts, policy, judges, out, samples=samples, temperature=temperature,
                        max_tokens=max_tokens, seed=seed, concurrency=concurrency, base_urls=base_url or None,
                        judge_base_urls=judge_base_url or None, api_key_env=api_key_env, pairing=pairing,
                        reference=reference, orders=orders, jury=jury, min_agreement=min_agreement,
                        min_p_chosen=min_p_chosen, timeout_s=timeout, max_failed=max_failed)
    _print_label_summary(summary, out)


@app.command()
def probe(
    judge: str = typer.Option(..., "--judge", "-j", help="a built-in judge name or a judge YAML file",
                              callback=file_or_name),
    out: Path = typer.Option(..., "-o", "--out", help="output directory", callback=output_dir),
    judge_model: str = typer.Option(None, "--judge-model", help="run the judge on this backend/model instead"),
    base_url: list[str] = typer.Option([], "--base-url", help="OpenAI/Anthropic-compatible server URL"),
    api_key_env: ApiKeyEnv = None,
    probes: str = typer.Option("position,verbosity,self-preference,injection", "--probes",
                               help="comma-separated subset of the probes"),
    probe_set: str = typer.Option("probes_v1", "--probe-set", help="probe items in prompts/ (or a path)",
                                  callback=file_or_name),
    concurrency: Concurrency = 8,
    timeout: Timeout = 120.0,
    max_failed: MaxFailed = 0.5,
) -> None:
    """Run a judge on bias probes with known answers; writes OUTDIR/probe.json and probe_labels.jsonl."""
    from rlaif.judge import load_judge
    from rlaif.judge.probe import run_probes

    j = load_judge(judge, model=judge_model)
    names = tuple(p.strip() for p in probes.split(",") if p.strip())
    report = run_probes(j, out, probe_set=probe_set, probes=names, concurrency=concurrency, progress=None,
                        base_urls=base_url or None, api_key_env=api_key_env, timeout_s=timeout,
                        max_failed=max_failed)
    typer.echo(f"{report['judge']} on {report['probe_set']} -> {out / 'probe.json'}")
    for name, r in report["probes"].items():
        if r["n"] == 0:
            typer.echo(f"  {name:16s} n=0  {r.get('note', 'no valid verdicts')}")
            continue
        typer.echo(f"  {name:16s} wrong {r['wrong']}/{r['n']} = {r['wrong_rate']:.2f} "
                   f"[{r['ci_low']:.2f}, {r['ci_high']:.2f}]")


# --- audit: audit, elo, convert ------------------------------------------------------------------
@app.command()
def audit(
    labels: Path = typer.Argument(..., help="label JSONL (rlaif label output, or `rlaif convert` output)",
                                  callback=input_file),
    out: Path = typer.Option(..., "-o", "--out", help="output directory: audit.json, audit.md, audit.html",
                             callback=output_dir),
    gold: str = typer.Option(None, "--gold", help="a rater name in LABELS whose verdicts are gold, or a gold "
                             "label file (JSONL lines with item and winner)", callback=file_or_name),
    bootstrap: int = typer.Option(1000, "--bootstrap", min=0, help="bootstrap rounds for the 95% intervals "
                                  "(0: no intervals)"),
    seed: int = typer.Option(0, "--seed", help="bootstrap seed"),
    length_margin: int = typer.Option(30, "--length-margin", min=0, help="characters two responses must differ "
                                      "by to count in longer_preferred_rate"),
) -> None:
    """Audit judges and labelers: position and length bias, self-preference, accuracy, agreement."""
    from rlaif.audit import audit_labels, read_gold
    from rlaif.errors import InputError
    from rlaif.records import read_labels, write_json, write_text
    from rlaif.report.audit_page import render_audit_html, render_audit_md

    rows, duplicates = read_labels(labels)
    if not rows:
        raise InputError(labels, None, "the file holds no labels",
                         "pass a label JSONL file (`rlaif label` or `rlaif convert` output) with at least one line")
    _warn(duplicates.warning())
    gold_arg, gold_labels = gold, []
    if gold is not None and Path(gold).is_file():
        gold_labels = read_gold(gold)
        gold_arg = gold_labels
    result = audit_labels(rows, gold_arg, rounds=bootstrap, seed=seed, length_margin=length_margin)
    if gold_labels:
        result["gold"]["source"] = f"file:{gold}"
    html = render_audit_html(result, rows, gold_labels)
    md = render_audit_md(result)
    write_json(out / "audit.json", result)
    write_text(out / "audit.md", md)
    write_text(out / "audit.html", html)
    typer.echo(f"audited {result['n_raters']} raters on {result['n_items']} items -> {out}/audit.json, "
               "audit.md, audit.html")


@app.command()
def elo(
    battles: Path = typer.Argument(..., help="label JSONL or Chatbot-Arena-style battles (JSONL or JSON list)",
                                   callback=input_file),
    out: Path = typer.Option(..., "-o", "--out", help="output directory: leaderboard.json/.csv/.svg/.html",
                             callback=output_dir),
    bootstrap: int = typer.Option(1000, "--bootstrap", min=0, help="bootstrap rounds (0: no intervals)"),
    anchor: str = typer.Option(None, "--anchor", help="MODEL=RATING: shift ratings so MODEL has RATING"),
    style_control: str = typer.Option(None, "--style-control", help="'length': add a length-difference "
                                      "covariate to the Bradley–Terry regression"),
    online: bool = typer.Option(False, "--online", help="online Elo (sequential updates) instead of "
                                "Bradley–Terry"),
    k: float = typer.Option(4.0, "--k", min=0.0, help="K-factor for --online"),
    seed: int = typer.Option(0, "--seed", help="bootstrap seed"),
) -> None:
    """Rank models: Bradley–Terry ratings with bootstrap intervals and CI-aware ranks."""
    from rich.progress import Progress

    from rlaif.elo import leaderboard, leaderboard_csv, parse_anchor, read_battles
    from rlaif.progress import stderr_console
    from rlaif.records import write_json, write_text
    from rlaif.report.elo_page import leaderboard_svg, render_elo_html

    with Progress(transient=True, console=stderr_console()) as bar:
        task = bar.add_task("bootstrap", total=1.0)
        battle_file = read_battles(battles)
        board = leaderboard(battle_file, rounds=bootstrap, seed=seed, anchor=parse_anchor(anchor),
                            method="elo" if online else "bt", k=k, style=style_control,
                            progress=lambda f: bar.update(task, completed=f))
    _warn(battle_file.duplicates.warning() if battle_file.duplicates else None)
    if not board["comparison_graph_connected"]:
        typer.secho("warning: the models fall into groups that never met; ratings across groups are not "
                    "comparable", err=True, fg="yellow")
    write_json(out / "leaderboard.json", board)
    write_text(out / "leaderboard.csv", leaderboard_csv(board))
    write_text(out / "leaderboard.svg", leaderboard_svg(board))
    write_text(out / "leaderboard.html", render_elo_html(board))
    top = board["ratings"][0]
    typer.echo(f"{board['n_models']} models, {board['n_battles']} battles; top: {top['model']} "
               f"({top['rating']:.1f}) -> {out}/leaderboard.json, .csv, .svg, .html")


@app.command()
def convert(
    inputs: list[Path] = typer.Argument(..., help="files in one of the formats below", callback=input_file),
    out: Path = typer.Option(..., "-o", "--out", help="output label JSONL", callback=output_file),
    fmt: str = typer.Option("auto", "--format", "-f", help="auto, pandalm, llmbar, arena, mt-bench, alpaca-eval"),
) -> None:
    """Convert PandaLM, LLMBar, Chatbot Arena, MT-Bench or AlpacaEval judgments into label JSONL."""
    from rlaif.convert import convert as run_convert
    from rlaif.records import write_jsonl

    labels = run_convert(fmt, list(inputs))
    write_jsonl(out, labels)
    typer.echo(f"{len(labels)} labels by {len({lb.rater for lb in labels})} raters -> {out}")


# --- training: train -----------------------------------------------------------------------------
@app.command(context_settings={"allow_extra_args": False})
def train(
    recipe: str = typer.Argument(..., help="rm | dpo | kto (from preference files) | ppo | rloo | grpo (online, from "
                                           "prompts and a reward) | online-dpo (rounds of sampling, judging, DPO)"),
    overrides: list[str] = typer.Argument(None, help="config overrides as key=value (e.g. beta=0.2 lora.r=8)"),
    data: Path = typer.Option(None, "--data", help="preference JSONL (rlaif/TRL format); KTO: prompt/completion/label",
                              callback=input_file),
    model: str = typer.Option(None, "--model", help="'local' (the embedded default) or a local model directory",
                              callback=folder_or_name),
    out: Path = typer.Option(None, "-o", "--out", help="output directory (checkpoint, metrics.jsonl, model)",
                             callback=output_dir),
    config: Path = typer.Option(None, "--config", help="YAML config (default: the shipped one for the recipe)",
                                callback=input_file),
    prompts: str = typer.Option(None, "--prompts", help="ppo/rloo/grpo/online-dpo: prompts JSONL or a built-in prompt "
                                                       "set (constraints and other fields reach the reward as "
                                                       "metadata; online-dpo adds the rule checker)",
                                callback=file_or_name),
    reward: list[str] = typer.Option([], "--reward", help="ppo/rloo/grpo, repeatable: rule, rule:all, rm:PATH, "
                                     "judge:NAME, pairwise:NAME, http://HOST:PORT/get_reward, python:MODULE:FUNC, "
                                     "each optionally @WEIGHT"),
    judge: list[str] = typer.Option([], "--judge", "-j", help="online-dpo: " + _JUDGE_HELP, callback=file_or_name),
    judge_model: list[str] = typer.Option([], "--judge-model", help="the judges' backend (openai:MODEL, "
                                          "anthropic:MODEL, vllm:PATH, local): online-dpo's --judge, or the "
                                          "judge:/pairwise: rewards (once)"),
    base_url: list[str] = typer.Option([], "--base-url", help="OpenAI/Anthropic-compatible server URL for the judges "
                                                               "(repeat to spread the load)"),
    api_key_env: ApiKeyEnv = None,
    concurrency: Concurrency = 8,
    timeout: float = typer.Option(None, "--timeout", min=0.1, help="seconds per judge or reward-server call"),
) -> None:
    """Train a reward model (rm) or a policy (dpo, kto) from preference files, a policy online from prompts and
    a reward (ppo, rloo, grpo), or a policy by rounds of sampling, AI judging and DPO (online-dpo); resumes
    after a kill.

    Multi-process: `torchrun --nproc_per_node N -m rlaif.cli train dpo ...` (DDP; fsdp=true on GPUs).
    """
    import json as _json
    from dataclasses import asdict

    from rlaif.catalog import find
    from rlaif.train import ONLINE_RECIPES
    from rlaif.train import train as run_recipe
    from rlaif.train.config import CONFIG_DIR, load_config

    if recipe == "online-dpo":
        _train_online_dpo(overrides or [], prompts=prompts, judge=judge, judge_model=judge_model, model=model,
                          out=out, config=config, data=data, base_url=base_url, api_key_env=api_key_env,
                          concurrency=concurrency)
        return
    _check_train_flags(recipe, data=data, prompts=prompts, reward=reward, judge=judge, judge_model=judge_model,
                       base_url=base_url, api_key_env=api_key_env)
    online = recipe in ONLINE_RECIPES
    source = ({"prompts": str(find("prompts", prompts)) if prompts else None} if online
              else {"data": str(data) if data else None})
    cfg = load_config(recipe, config or CONFIG_DIR / f"{recipe}.yaml", overrides or [], **source, model=model,
                      out=str(out) if out else None)
    if not online:
        typer.echo(_json.dumps(asdict(run_recipe(recipe, cfg)), indent=2))
        return
    from rlaif.rewards import build_reward_fn

    tokenizer = None
    if any(r.startswith(("http://", "https://")) for r in reward):  # the server gets chat-template text
        from rlaif.train.modeling import load_tokenizer, model_path

        tokenizer = load_tokenizer(model_path(cfg.model))
    with build_reward_fn(reward, judge_model=judge_model[0] if judge_model else None, base_urls=base_url or None,
                         api_key_env=api_key_env, concurrency=concurrency, timeout=timeout,
                         tokenizer=tokenizer) as reward_fn:
        result = run_recipe(recipe, cfg, reward_fn)
    typer.echo(_json.dumps(asdict(result), indent=2))


def _check_train_flags(recipe: str, *, data, prompts, reward, judge, judge_model, base_url, api_key_env) -> None:
    """Each recipe family takes its own inputs: refuse the flags of another one, saying which they belong to."""
    from rlaif.errors import ConfigError
    from rlaif.train import ONLINE_RECIPES, RECIPES

    if recipe not in RECIPES:
        raise ConfigError(f"unknown recipe {recipe!r}. Fix: use one of {', '.join(RECIPES)}, online-dpo")
    online = recipe in ONLINE_RECIPES
    if judge:
        raise ConfigError(f"--judge is for online-dpo, not {recipe}. Fix: drop it, or give the judge as "
                          "--reward judge:NAME / pairwise:NAME")
    if online and data:
        raise ConfigError(f"{recipe} samples from prompts, it reads no --data. Fix: pass --prompts FILE")
    if not online and (prompts or reward or judge_model or base_url or api_key_env):
        raise ConfigError(f"--prompts, --reward, --judge-model, --base-url and --api-key-env are for the online "
                          f"recipes ({', '.join(ONLINE_RECIPES)}, online-dpo); {recipe} trains on --data")
    if len(judge_model) > 1:
        raise ConfigError("--judge-model once for the online recipes: every judge: / pairwise: reward runs on it")


def _train_online_dpo(overrides: list[str], *, prompts, judge, judge_model, model, out, config, data, base_url,
                      api_key_env, concurrency) -> None:
    from rlaif.errors import ConfigError
    from rlaif.online_dpo import DEFAULT_CONFIG, load_online_config, run_online_dpo

    if data is not None:
        raise ConfigError("online-dpo makes its own preference data each round. Fix: drop --data, pass --prompts")
    cfg = load_online_config(config or DEFAULT_CONFIG, overrides, prompts=prompts, model=model,
                             out=str(out) if out else None, judges=judge or None, judge_models=judge_model or None)
    summary = run_online_dpo(cfg, concurrency=concurrency, base_urls=base_url or None, api_key_env=api_key_env)
    from rlaif.report.markdown import fmt

    for rd in summary["rounds"]:
        c = (rd["reward"] or {}).get("checker") or {}
        judges = "".join(f"; {r.split('@')[0]}: position consistency {fmt(j['position_consistency'])}, "
                         f"accuracy vs checker {fmt(j['accuracy_vs_checker'])}" for r, j in rd["judges"].items())
        typer.echo(f"round {rd['round']}: {rd['labels']['n_preferences']} preferences ({rd['soft_labels']['n']} "
                   f"soft), samples' all-pass rate {fmt(c.get('all_pass_rate'))}{judges}")
    typer.echo(f"wrote {summary['out']}/online_dpo.json, report.md and report.html")


# --- evaluation: winrate, diversity, eval --------------------------------------------------------
@app.command()
def winrate(
    responses: Path = typer.Argument(None, help="responses JSONL holding both policies' samples (`rlaif generate` "
                                               "output of each, concatenated); judged with --judge",
                                   callback=input_file),
    labels: Path = typer.Option(None, "--labels", help="or: labels.jsonl already judged (both orders, any raters)",
                                callback=input_file),
    policy: str = typer.Option(..., "--policy", help="the evaluated model, as named in the files"),
    baseline: str = typer.Option(..., "--baseline", help="the reference model, as named in the files"),
    out: Path = typer.Option(..., "-o", "--out", help="output directory (winrate.json, .md, .html; labels.jsonl)",
                             callback=output_dir),
    judge: list[str] = typer.Option([], "--judge", "-j", help=_JUDGE_HELP, callback=file_or_name),
    judge_model: list[str] = typer.Option([], "--judge-model", help=_JUDGE_MODEL_HELP),
    base_url: list[str] = typer.Option([], "--base-url", help="OpenAI/Anthropic-compatible server URL for the judges"),
    api_key_env: ApiKeyEnv = None,
    prompts: Path = typer.Option(None, "--prompts", help="prompt set: categories give per-category rates; "
                                                         "constraints feed the rule judge", callback=input_file),
    concurrency: Concurrency = 8,
    bootstrap: int = typer.Option(10_000, "--bootstrap", min=1, help="bootstrap rounds for the 95% interval"),
    seed: int = typer.Option(0, "--seed", help="bootstrap seed"),
    timeout: Timeout = 120.0,
    max_failed: MaxFailed = 0.5,
) -> None:
    """Win rate of POLICY over BASELINE with a prompt-clustered 95% interval: judge RESPONSES (both orders)
    or read --labels."""
    from rlaif.errors import ConfigError
    from rlaif.eval.winrate import winrate_from_labels_file, winrate_from_responses_file

    if (responses is None) == (labels is None):
        raise ConfigError("give either RESPONSES (to judge) or --labels (already judged). "
                          "Fix: e.g. `rlaif winrate responses.jsonl --judge pairwise ...` or `--labels labels.jsonl`")
    if labels is not None:
        if judge or judge_model:
            raise ConfigError("--judge/--judge-model judge RESPONSES; --labels are judged already. Fix: drop one")
        d = winrate_from_labels_file(labels, policy, baseline, out, prompts_path=prompts, n_boot=bootstrap,
                                     seed=seed)
    else:
        if not judge:
            raise ConfigError("judging RESPONSES needs a judge. Fix: add --judge NAME (e.g. pairwise-logprob)")
        from rlaif.judge import load_judges

        d = winrate_from_responses_file(responses, load_judges(judge, judge_model), policy, baseline, out,
                                        prompts_path=prompts, concurrency=concurrency, base_urls=base_url or None,
                                        api_key_env=api_key_env, n_boot=bootstrap, seed=seed, timeout_s=timeout,
                                        max_failed=max_failed)
    lc = "–" if d["lc_win_rate"] is None else f"{d['lc_win_rate']:.3f}"
    typer.echo(f"{policy} vs {baseline}: win rate {d['win_rate']:.3f} [{d['ci_low']:.3f}, {d['ci_high']:.3f}] "
               f"over {d['n']} comparisons ({d['wins']}-{d['losses']}-{d['ties']}), length-controlled {lc}")
    for w in d["warnings"]:
        typer.secho(f"warning: {w}", err=True, fg="yellow")
    typer.echo(f"wrote {out / 'winrate.json'}, winrate.md and winrate.html")


@app.command()
def diversity(
    responses: Path = typer.Argument(..., help="responses.jsonl (several samples per prompt for per-input diversity)",
                                     callback=input_file),
    out: Path = typer.Option(..., "-o", "--out", help="output directory (diversity.json, diversity.md)",
                             callback=output_dir),
    tokenizer: str = typer.Option(None, "--tokenizer", help="tokens of every n-gram metric: a tokenizer dir, 'local' "
                                  "or 'whitespace'; default: whitespace words for distinct-n and self-BLEU, the "
                                  "embedded model's tokenizer (fixed vocabulary) for EAD", callback=folder_or_name),
    no_embedding: bool = typer.Option(False, "--no-embedding", help="skip the MiniLM embedding diversity"),
    embed_dtype: str = typer.Option("auto", "--embed-dtype",
                                    help="auto (bfloat16 where the hardware has it natively, else float32), "
                                         "float32, bfloat16 or float16"),
) -> None:
    """Distinct-n, EAD, self-BLEU and embedding diversity of each policy's samples."""
    from rich.progress import Progress

    from rlaif.eval.diversity import diversity_from_file
    from rlaif.progress import stderr_console

    with Progress(transient=True, console=stderr_console()) as bar:
        task = bar.add_task("embedding", total=None, visible=not no_embedding)
        report = diversity_from_file(responses, out, tokenizer=tokenizer, embedding=not no_embedding,
                                     embed_dtype=embed_dtype,
                                     progress=lambda done, total: bar.update(task, completed=done, total=total))
    def f(x, fmt=".3f"):
        return "–" if x is None else format(x, fmt)

    for policy, v in report.items():
        m = v["per_input"]
        typer.echo(f"{policy}: per-input distinct-2 {f(m['distinct_2'])}, EAD {f(m['ead'])}, "
                   f"self-BLEU {f(m['self_bleu'], '.1f')}, embedding {f(m['embedding'])}")
    typer.echo(f"wrote {out / 'diversity.json'} and {out / 'diversity.md'}")


@app.command("eval")
def eval_suite(
    suite: str = typer.Argument(..., help="a built-in suite (ifeval, assistant) or a suite YAML file",
                                callback=file_or_name),
    policy: str = typer.Option(..., "--policy", help="[NAME=]SPEC[,temperature=T]: the evaluated policy, e.g. "
                                                     "dpo=hf:runs/dpo/model"),
    baseline: str = typer.Option(None, "--baseline", help="[NAME=]SPEC[,temperature=T] (default: the suite's)"),
    out: Path = typer.Option(..., "-o", "--out", help="output directory (eval.json, eval.md, eval.html, <split>/)",
                             callback=output_dir),
    limit: int = typer.Option(None, "--limit", min=1, help="prompts per split (default: the suite's)"),
    offset: int = typer.Option(0, "--offset", min=0, help="skip the first N prompts of each split (e.g. trained on)"),
    samples: int = typer.Option(None, "--samples", "-n", min=1, help="samples per prompt (default: the suite's)"),
    max_tokens: int = typer.Option(None, "--max-tokens", min=1),
    temperature: float = typer.Option(None, "--temperature", min=0.0),
    reward_model: str = typer.Option(None, "--reward-model", help="a `rlaif train rm` directory: mean rewards, "
                                     "its win rate, and the KL estimate", callback=folder_or_name),
    kl: bool = typer.Option(None, "--kl/--no-kl", help="estimate KL(policy ‖ baseline) (local/hf specs; "
                                                       "default: with --reward-model)"),
    judge_model: str = typer.Option(None, "--judge-model", help="run the suite's LLM judges on this backend"),
    base_url: list[str] = typer.Option([], "--base-url", help="OpenAI/Anthropic-compatible server URL "
                                                               "(policies and judges; repeat to spread the load)"),
    api_key_env: ApiKeyEnv = None,
    no_embedding: bool = typer.Option(False, "--no-embedding", help="skip the MiniLM embedding diversity"),
    concurrency: Concurrency = 8,
    timeout: Timeout = 120.0,
    max_failed: MaxFailed = 0.5,
) -> None:
    """Evaluate a policy against a baseline on an eval suite: win rate per judge with intervals, the ID−OOD
    gap, compliance, diversity. Resumable; a re-run makes zero calls."""
    from rlaif.eval.runner import run_eval

    r = run_eval(suite, policy, baseline, out, limit=limit, samples=samples, max_tokens=max_tokens,
                 temperature=temperature, reward_model=reward_model, judge_model=judge_model,
                 base_urls=base_url or None, embedding=False if no_embedding else None, concurrency=concurrency,
                 progress=None, prompts_offset=offset, api_key_env=api_key_env, kl=kl, timeout_s=timeout,
                 max_failed=max_failed)
    for split, s in r["splits"].items():
        for rater, w in s.get("win_rate", {}).items():
            if w["win_rate"] is not None:
                typer.echo(f"{split} ({s['kind']}) {rater}: win rate {w['win_rate']:.3f} "
                           f"[{w['ci_low']:.3f}, {w['ci_high']:.3f}] over {w['n']}")
        for name, c in (s.get("compliance") or {}).items():
            typer.echo(f"{split} ({s['kind']}) compliance {name}: {c['all_pass_rate']:.3f} "
                       f"[{c['ci_low']:.3f}, {c['ci_high']:.3f}]")
    for rater, g in ((r["generalization_gap"] or {}).get("win_rate") or {}).items():
        typer.echo(f"gap ID−OOD {rater}: {g['gap']:+.3f} [{g['ci_low']:+.3f}, {g['ci_high']:+.3f}]")
    typer.echo(f"{r['calls']['made']} calls, {r['calls']['cache_hits']} cached -> {out}/eval.json, eval.md, eval.html")


# --- the whole loop: demo ------------------------------------------------------------------------
@app.command()
def demo(
    out: Path = typer.Option(Path("runs/demo"), "-o", "--out", help="output directory", callback=output_dir),
    quick: bool = typer.Option(False, "--quick", help="a smaller, faster run"),
) -> None:
    """Run the RLAIF loop offline on the embedded default model."""
    from rlaif.demo import run_demo

    run_demo(out, quick=quick)


# --- the service: serve ---------------------------------------------------------------------------
@app.command()
def serve(
    judge: list[str] = typer.Option([], "--judge", "-j", help=_JUDGE_HELP + " (pairwise judges: /v1/compare)",
                                    callback=file_or_name),
    judge_model: list[str] = typer.Option([], "--judge-model", help=_JUDGE_MODEL_HELP),
    reward_model: list[str] = typer.Option([], "--reward-model", help="a reward model trained by `rlaif train rm` "
                                           "(its -o directory); repeatable", callback=folder_or_name),
    reward_scorer: str | None = typer.Option(None, "--reward-scorer", help="the scorer /get_reward uses (default: "
                                             "the first reward model, else the first pointwise judge, else rule)"),
    host: str = typer.Option("127.0.0.1", "--host", help="address to bind; any non-loopback one needs "
                                                         "RLAIF_SERVE_TOKEN"),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="port (0: any free port, printed)"),
    base_url: list[str] = typer.Option([], "--base-url", help="OpenAI/Anthropic-compatible server URL "
                                                               "(repeat to spread the load)"),
    api_key_env: ApiKeyEnv = None,
    concurrency: Concurrency = 8,
    timeout: Timeout = 120.0,
    no_cache: bool = typer.Option(False, "--no-cache", help="do not read or write the call cache"),
    device: str | None = typer.Option(None, "--device", help="where reward models run (default: cuda if available)"),
    max_batch: int = typer.Option(64, "--max-batch", min=1, help="items per scorer batch"),
    max_wait_ms: float = typer.Option(2.0, "--max-wait-ms", min=0.0, help="longest wait for a batch to fill"),
    max_queue: int = typer.Option(4096, "--max-queue", min=1, help="items queued per scorer before 429"),
    max_body_bytes: int = typer.Option(16 * 1024 * 1024, "--max-body-bytes", min=1, help="largest request body"),
    max_items: int = typer.Option(1024, "--max-items", min=1, help="most items in one request"),
    max_text_chars: int = typer.Option(100_000, "--max-text-chars", min=1, help="longest prompt or response"),
    drain_timeout: float = typer.Option(60.0, "--drain-timeout", min=0.0, help="seconds to finish requests in "
                                                                               "flight after SIGTERM"),
) -> None:
    """Serve judges and reward models over HTTP for RL trainers (OpenRLHF /get_reward, /v1/score, /v1/compare).

    Prints `rlaif serve: http://HOST:PORT`, serves until SIGTERM, finishes the requests in flight, exits 0.
    """
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        from rlaif.errors import MissingDependency

        raise MissingDependency(e.name or "uvicorn", "serve", "rlaif serve") from None
    from rlaif.serve.app import Batching
    from rlaif.serve.limits import Limits
    from rlaif.serve.scorers import ScorerOptions
    from rlaif.serve.server import ServeOptions
    from rlaif.serve.server import serve as run

    run(ScorerOptions(judges=judge, judge_models=judge_model, reward_models=reward_model, base_urls=base_url or None,
                      api_key_env=api_key_env, concurrency=concurrency, timeout=timeout, cache=not no_cache,
                      device=device, reward=reward_scorer),
        ServeOptions(host=host, port=port, drain_timeout=drain_timeout),
        Limits(max_body_bytes=max_body_bytes, max_items=max_items, max_text_chars=max_text_chars),
        Batching(max_batch=max_batch, max_wait_ms=max_wait_ms, max_queue=max_queue))


# --- the call cache: cache path, cache info, cache clear -----------------------------------------
cache_app = typer.Typer(help="The call cache ($RLAIF_CACHE/calls.sqlite): where it is, what it holds, clear it.",
                        no_args_is_help=True)
app.add_typer(cache_app, name="cache")


def _interactive() -> bool:
    return sys.stdin.isatty()


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


@cache_app.command("path")
def cache_path() -> None:
    """Print where the call cache lives (it may not exist yet)."""
    from rlaif.calls.cache import cache_path as path

    typer.echo(str(path()))


@cache_app.command("info")
def cache_info() -> None:
    """Size on disk, entries and hits (requests served from the cache), per backend and model."""
    from rlaif.calls.cache import cache_info as info

    i = info()
    if not i.exists:
        typer.echo(f"{i.path}: no call cache yet")
        return
    typer.echo(f"{i.path}: {_size(i.size_bytes)}, {i.entries} entries, {i.hits} hits")
    for m in i.models:
        model = "" if m.model in m.backend else f" ({m.model})"
        typer.echo(f"  {m.backend}{model}: {m.entries} entries, {m.hits} hits")


@cache_app.command("clear")
def cache_clear(
    yes: bool = typer.Option(False, "--yes", "-y", help="delete without asking (needed without a terminal)"),
) -> None:
    """Delete the call cache: every later request is a new call."""
    from rlaif.calls.cache import cache_info as info
    from rlaif.calls.cache import clear_cache
    from rlaif.errors import ConfigError

    i = info()
    if not i.exists:
        typer.echo(f"{i.path}: no call cache; nothing to delete")
        return
    if not yes:
        if not _interactive():
            raise ConfigError("`rlaif cache clear` asks before deleting, and stdin is not a terminal. "
                              "Fix: pass --yes")
        typer.confirm(f"delete {i.path} ({_size(i.size_bytes)}, {i.entries} entries)?", abort=True)
    removed = clear_cache(i.path)
    typer.echo(f"deleted {', '.join(str(f) for f in removed)}")


if __name__ == "__main__":
    main()
