"""The `rlaif` command line: thin typer commands.

Heavy imports (torch, transformers, SDKs, pandas) happen inside command bodies so
`rlaif --help` answers fast. Only `main()` turns rlaif errors into exit code 2.
Each command section below belongs to one area; keep them separate.
"""
from __future__ import annotations

import sys
from pathlib import Path

import typer

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


def main() -> None:
    try:
        app()
    except RlaifError as e:
        typer.secho(f"error: {e}", err=True, fg="red")
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        typer.secho("interrupted: re-run the same command to resume", err=True)
        sys.exit(130)


# --- foundation: generate ------------------------------------------------------------------------


# --- labeling: label, synth, probe ---------------------------------------------------------------


# --- audit: audit, elo, convert ------------------------------------------------------------------


# --- training: train -----------------------------------------------------------------------------


# --- evaluation: winrate, diversity, eval --------------------------------------------------------
@app.command()
def winrate(
    labels: Path = typer.Option(..., "--labels", help="labels.jsonl (both orders of each pair, any raters)"),
    policy: str = typer.Option(..., "--policy", help="the evaluated model, as named in model_a/model_b"),
    baseline: str = typer.Option(..., "--baseline", help="the reference model, as named in model_a/model_b"),
    out: Path = typer.Option(..., "-o", "--out", help="output directory (winrate.json, winrate.md)"),
    prompts: Path = typer.Option(None, "--prompts", help="prompt set whose categories give per-category rates"),
    n_boot: int = typer.Option(10_000, "--n-boot", help="bootstrap replicates"),
    seed: int = typer.Option(0, "--seed", help="bootstrap seed"),
) -> None:
    """Win rate of POLICY over BASELINE from label records, with a prompt-clustered 95% interval."""
    from rlaif.evaluate import winrate_from_labels_file

    d = winrate_from_labels_file(labels, policy, baseline, out, prompts_path=prompts, n_boot=n_boot, seed=seed)
    lc = "–" if d["lc_win_rate"] is None else f"{d['lc_win_rate']:.3f}"
    typer.echo(f"{policy} vs {baseline}: win rate {d['win_rate']:.3f} [{d['ci_low']:.3f}, {d['ci_high']:.3f}] "
               f"over {d['n']} comparisons ({d['wins']}-{d['losses']}-{d['ties']}), length-controlled {lc}")
    for w in d["warnings"]:
        typer.secho(f"warning: {w}", err=True, fg="yellow")
    typer.echo(f"wrote {out / 'winrate.json'} and {out / 'winrate.md'}")


@app.command()
def diversity(
    responses: Path = typer.Argument(..., help="responses.jsonl (several samples per prompt for per-input diversity)"),
    out: Path = typer.Option(..., "-o", "--out", help="output directory (diversity.json, diversity.md)"),
    tokenizer: str = typer.Option(None, "--tokenizer", help="tokenizer dir, or 'local'; default: whitespace words"),
    no_embedding: bool = typer.Option(False, "--no-embedding", help="skip the MiniLM embedding diversity"),
    embed_dtype: str = typer.Option("auto", "--embed-dtype", help="auto, float32 or bfloat16"),
) -> None:
    """Distinct-n, EAD, self-BLEU and embedding diversity of each policy's samples."""
    from rich.progress import Progress

    from rlaif.evaluate import diversity_from_file

    with Progress(transient=True, console=_stderr_console()) as bar:
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


def _stderr_console():
    from rich.console import Console

    return Console(stderr=True)




# --- the whole loop: demo ------------------------------------------------------------------------
@app.command()
def demo(
    out: Path = typer.Option(Path("runs/demo"), "-o", "--out", help="output directory"),
    quick: bool = typer.Option(False, "--quick", help="a smaller, faster run"),
) -> None:
    """Run the RLAIF loop offline on the embedded default model."""
    from rlaif.demo import run_demo

    run_demo(out, quick=quick)


if __name__ == "__main__":
    main()
