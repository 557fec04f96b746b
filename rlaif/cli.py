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
@app.command(context_settings={"allow_extra_args": False})
def train(
    recipe: str = typer.Argument(..., help="rm | dpo | kto"),
    overrides: list[str] = typer.Argument(None, help="config overrides as key=value (e.g. beta=0.2 lora.r=8)"),
    data: Path = typer.Option(None, "--data", help="preference JSONL (rlaif/TRL format); KTO: prompt/completion/label"),
    model: str = typer.Option(None, "--model", help="'local' (the embedded default) or a local model directory"),
    out: Path = typer.Option(None, "-o", "--out", help="output directory (checkpoint, metrics.jsonl, model)"),
    config: Path = typer.Option(None, "--config", help="YAML config (default: the shipped one for the recipe)"),
) -> None:
    """Train a reward model (rm) or a policy (dpo, kto) from preference files; resumes after a kill.

    Multi-process: `torchrun --nproc_per_node N -m rlaif.cli train dpo ...` (DDP; fsdp=true on GPUs).
    """
    import json as _json
    from dataclasses import asdict

    from rlaif.train import RECIPES
    from rlaif.train import train as run_recipe
    from rlaif.train.config import CONFIG_DIR, load_config

    if recipe not in RECIPES:
        from rlaif.errors import ConfigError

        raise ConfigError(f"unknown recipe {recipe!r}. Fix: use one of {', '.join(RECIPES)}")
    cfg = load_config(recipe, config or CONFIG_DIR / f"{recipe}.yaml", overrides or [],
                      data=str(data) if data else None, model=model, out=str(out) if out else None)
    result = run_recipe(recipe, cfg)
    typer.echo(_json.dumps(asdict(result), indent=2))



# --- evaluation: winrate, diversity, eval --------------------------------------------------------


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
