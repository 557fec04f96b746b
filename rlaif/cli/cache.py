"""`rlaif cache path|info|clear`: the call cache."""
from __future__ import annotations

import sys

import typer

from rlaif.cli.entry import app

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
