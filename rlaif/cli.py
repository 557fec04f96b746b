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
