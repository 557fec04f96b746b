"""The training progress bar: optimizer steps, with the latest loss, accuracy and throughput."""
from __future__ import annotations

import sys

from rlaif.train.runtime import Runtime


class StepProgress:
    """A rich progress bar of optimizer steps on stderr (main process, terminals only)."""

    def __init__(self, rt: Runtime, total: int, start: int, label: str):
        self.bar = None
        if rt.is_main and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(),
                                TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
                                console=Console(stderr=True))
            self.task = self.bar.add_task(label, total=total, completed=start, info="")
            self.bar.start()

    def __call__(self, step: int, row: dict) -> None:
        """Move to `step` and show the train metrics `row` of that step."""
        if self.bar is not None:
            acc = row.get("reward_accuracy")
            info = f"loss {row['loss']:.4f}" + (f" acc {acc:.2f}" if acc is not None else "")
            self.bar.update(self.task, completed=step, info=f"{info} {row['tokens_per_s']:.0f} tok/s")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
