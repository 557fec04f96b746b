"""Progress on stderr: a rich bar for long loops, or nothing when it is off.

A leaf (rich only, imported lazily) so the call layer and the trainer share one bar:
`bar = ProgressBar(total, "label")` (shown when stderr is a terminal unless `enabled`
says otherwise; `completed` resumes part-way), then `bar.advance(n, info)` or
`bar.update(completed, info)`, and `bar.close()` (or use it as a context manager).
"""
from __future__ import annotations

import sys
from typing import Any

__all__ = ["ProgressBar", "stderr_console"]


def stderr_console() -> Any:
    """A rich Console writing to stderr, so progress never mixes into piped stdout."""
    from rich.console import Console

    return Console(stderr=True)


class ProgressBar:
    """Description, bar, done/total, a free-text info field, time remaining."""

    def __init__(self, total: int | None, description: str, *, enabled: bool | None = None, completed: int = 0,
                 transient: bool = False):
        self._bar = None
        if sys.stderr.isatty() if enabled is None else enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[info]}"), TimeRemainingColumn(),
                                 console=stderr_console(), transient=transient)
            self._task = self._bar.add_task(description, total=total, completed=completed, info="")
            self._bar.start()

    def advance(self, n: int, info: str = "") -> None:
        if self._bar is not None and n:
            self._bar.update(self._task, advance=n, info=info)

    def update(self, completed: int, info: str = "") -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=completed, info=info)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
