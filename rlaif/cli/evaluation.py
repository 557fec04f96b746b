"""`rlaif winrate`, `diversity`, `eval` and `demo`: trained policies scored."""
from __future__ import annotations

from pathlib import Path

import typer

from rlaif.cli.entry import app
from rlaif.cli.options import (
    _JUDGE_HELP,
    _JUDGE_MODEL_HELP,
    ApiKeyEnv,
    Concurrency,
    MaxFailed,
    Precision,
    Timeout,
    call_options,
    local_precision,
    prompts_help,
)
from rlaif.cli.paths import file_or_name, folder_or_name, input_file, output_dir, prompt_set


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
    prompts: str = typer.Option(None, "--prompts", help=prompts_help("categories give per-category rates; "
                                                                     "constraints feed the rule judge"),
                                callback=prompt_set),
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
    prompts_path = Path(prompts) if prompts else None
    if labels is not None:
        if judge or judge_model:
            raise ConfigError("--judge/--judge-model judge RESPONSES; --labels are judged already. Fix: drop one")
        run = winrate_from_labels_file(labels, policy, baseline, out, prompts_path=prompts_path, n_boot=bootstrap,
                                       seed=seed)
    else:
        if not judge:
            raise ConfigError("judging RESPONSES needs a judge. Fix: add --judge NAME (e.g. pairwise-logprob)")
        from rlaif.judge import load_judges

        run = winrate_from_responses_file(responses, load_judges(judge, judge_model), policy, baseline, out,
                                          prompts_path=prompts_path, n_boot=bootstrap, seed=seed,
                                          options=call_options(concurrency, base_url, api_key_env, timeout,
                                                               max_failed))
    typer.echo(run.summary)
    for w in run.result["warnings"]:
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
                                                     "dpo=hf:runs/dpo (the -o folder of `rlaif train dpo`)"),
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
    precision: Precision = "auto",
) -> None:
    """Evaluate a policy against a baseline on an eval suite: win rate per judge with intervals, the ID−OOD
    gap, compliance, diversity. Resumable; a re-run makes zero calls."""
    from rlaif.eval.runner import run_eval

    local_precision("local", precision)  # checks the choice; run_eval applies it to the hf: and local policies
    r = run_eval(suite, policy, baseline, out, limit=limit, samples=samples, max_tokens=max_tokens,
                 temperature=temperature, reward_model=reward_model, judge_model=judge_model,
                 embedding=False if no_embedding else None, prompts_offset=offset, kl=kl, precision=precision,
                 options=call_options(concurrency, base_url, api_key_env, timeout, max_failed))
    typer.echo(r.summary)


# --- the whole loop: demo ------------------------------------------------------------------------
@app.command()
def demo(
    out: Path = typer.Option(Path("runs/demo"), "-o", "--out", help="output directory", callback=output_dir),
    quick: bool = typer.Option(False, "--quick", help="a smaller, faster run that only proves the path"),
    seed: int = typer.Option(0, "--seed", help="every sampling and training seed (the prompts stay the same)"),
    hacking: bool = typer.Option(False, "--hacking", help="also GRPO against the trained reward model with the "
                                 "checker as gold: the reward-hacking picture (a few more minutes)"),
) -> None:
    """Run the RLAIF loop offline on the embedded default model."""
    from rlaif.pipelines.demo import run_demo
    from rlaif.train.modeling import quiet_library_loads

    quiet_library_loads()  # no transformers loading/writing bars between the demo's progress lines
    run_demo(out, quick=quick, seed=seed, hacking=hacking)
