"""Progress on stderr: a rich bar for long loops on a terminal, one plain line per interval elsewhere, or nothing.

A leaf (rich only, imported lazily) so the call layer and the trainer share one bar:
`bar = ProgressBar(total, "label")` (shown when stderr is a terminal unless `enabled`
says otherwise; `completed` resumes part-way; `lines_every=N` prints a plain line every N
steps when there is no terminal, for logs and CI), then `bar.advance(n, info)` or
`bar.update(completed, info)`, and `bar.close()` (or use it as a context manager).
"""
from __future__ import annotations

import sys
import time
from typing import Any

__all__ = ["ProgressBar", "stderr_console", "format_seconds"]


def stderr_console() -> Any:
    """A rich Console writing to stderr, so progress never mixes into piped stdout."""
    from rich.console import Console

    return Console(stderr=True)


def format_seconds(seconds: float) -> str:
    """12s, 3m05s, 1h02m."""
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


class ProgressBar:
    """Description, bar, done/total, a free-text info field, time remaining; or, with `lines_every` and no
    terminal, `description done/total info elapsed ETA` as a line every `lines_every` steps and at the end."""

    def __init__(self, total: int | None, description: str, *, enabled: bool | None = None, completed: int = 0,
                 transient: bool = False, lines_every: int | None = None):
        self._bar = None
        self._lines_every = None
        self._total, self._description = total, description
        self._start, self._start_done = time.perf_counter(), completed  # the rate counts this session's steps only
        on = sys.stderr.isatty() if enabled is None else enabled
        if on and sys.stderr.isatty() or on and not lines_every:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[info]}"), TimeRemainingColumn(),
                                 console=stderr_console(), transient=transient)
            self._task = self._bar.add_task(description, total=total, completed=completed, info="")
            self._bar.start()
        elif enabled is not False and lines_every:
            self._lines_every = lines_every

    def advance(self, n: int, info: str = "") -> None:
        if self._bar is not None and n:
            self._bar.update(self._task, advance=n, info=info)

    def update(self, completed: int, info: str = "") -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=completed, info=info)
        elif self._lines_every and (completed % self._lines_every == 0 or completed == self._total):
            print(self._line(completed, info), file=sys.stderr, flush=True)

    def _line(self, completed: int, info: str) -> str:
        elapsed = time.perf_counter() - self._start
        done = completed - self._start_done
        line = f"{self._description} {completed}/{self._total}" if self._total else f"{self._description} {completed}"
        line += f"  {info}" if info else ""
        line += f"  {format_seconds(elapsed)}"
        if self._total and done > 0 and completed < self._total:
            line += f"  ETA {format_seconds(elapsed / done * (self._total - completed))}"
        return line

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
