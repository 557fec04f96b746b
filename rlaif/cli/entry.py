"""The typer app and the entry point: the only place errors become exit codes (2 for what the user can fix,
3, `rlaif.calls.CallsFailed`, when more than --max-failed of the calls failed)."""
from __future__ import annotations

import sys

import typer

from rlaif.errors import RlaifError

app = typer.Typer(
    help="RL from AI feedback: label, audit, train, evaluate.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # plain help and usage errors (rlaif.cli.helptext), not frames cut to 80 columns
)


@app.callback()
def _root() -> None:
    """RL from AI feedback: label, audit, train, evaluate."""



def warn(message: str | None) -> None:
    if message:
        typer.secho(f"warning: {message}", err=True, fg="yellow")


def command():
    """The click command of the app, every command's help written by `rlaif.cli.helptext` (plain text, no
    truncation, the metavars and the extra sections it adds)."""
    import typer.main

    from rlaif.cli.helptext import install

    return install(typer.main.get_command(app))


def main(argv: list[str] | None = None) -> None:
    """The `rlaif` entry point; `argv` (default: sys.argv[1:]) lets tests run a command in-process."""
    try:
        command().main(args=argv, prog_name="rlaif")
    except RlaifError as e:
        from rlaif.redact import redact

        # A second guard: the call layer redacts what it passes on; this catches any other path.
        typer.secho(f"error: {redact(e)}", err=True, fg="red")
        sys.exit(e.exit_code)
    except (OSError, UnicodeError) as e:
        # Last line of defence: the I/O layer (rlaif.records) and the path checks (rlaif.cli.paths) turn
        # these into PATH:LINE errors; one that slips past still gets one line and exit 2, not a traceback.
        where = getattr(e, "filename", None)
        typer.secho(f"error: {where + ': ' if isinstance(where, str) else ''}{getattr(e, 'strerror', None) or e}. "
                    "Fix: check the path and its permissions", err=True, fg="red")
        sys.exit(2)
    except KeyboardInterrupt:
        typer.secho("interrupted: re-run the same command to resume", err=True)
        sys.exit(130)
