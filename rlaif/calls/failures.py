"""The share of a command's calls that failed for good, checked against `--max-failed`.

The call layer records a request that failed after its retries (on_error="record") and goes on;
a command adds up what its runs made (`FailureCount.add`) and, once its partial outputs are
written, `check`s the share: above the limit it stops with `CallsFailed` (exit 3) naming the most
common error with its count; below it, a warning. Failed calls are never cached, so a re-run of
the same command makes only them again.
"""
from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from rlaif.errors import BackendError, ConfigError

__all__ = ["DEFAULT_MAX_FAILED", "CallsFailed", "FailureCount", "check_max_failed"]

DEFAULT_MAX_FAILED = 0.5


class CallsFailed(BackendError):
    """Too many calls failed for good (a dead server, a wrong URL). Exit 3, apart from exit 2 (fix your
    input): what was answered is kept and a re-run resumes, so a script may simply try again later."""

    exit_code = 3


def check_max_failed(max_failed: float) -> float:
    if not 0.0 <= max_failed <= 1.0:
        raise ConfigError(f"--max-failed {max_failed:g} is outside 0..1. Fix: a share of the calls, e.g. "
                          f"--max-failed {DEFAULT_MAX_FAILED} (0: any failure stops the run, 1: none does)")
    return max_failed


@dataclass
class FailureCount:
    """Calls answered and failed over one command's call-layer runs, and the errors they failed with."""

    answered: int = 0
    failed: int = 0
    errors: Counter = field(default_factory=Counter)  # redacted error message -> requests

    @classmethod
    def of(cls, stats: Iterable[Any]) -> FailureCount:
        """Summed over CallStats / JudgeStats-like objects (`.calls`, `.failed`, `.errors`)."""
        total = cls()
        for s in stats:
            total.add(s)
        return total

    def add(self, stats: Any) -> None:
        self.answered += stats.calls
        self.failed += stats.failed
        self.errors.update(getattr(stats, "errors", None) or {})

    @property
    def share(self) -> float:
        made = self.answered + self.failed
        return self.failed / made if made else 0.0

    def cause(self) -> str:
        if not self.errors:
            return "no error recorded"
        message, n = self.errors.most_common(1)[0]
        others = f"; {len(self.errors) - 1} other error{'s' * (len(self.errors) > 2)}" if len(self.errors) > 1 else ""
        return f"{n}x {message.rstrip().rstrip('.')}{others}"  # the sentence's period comes after

    def check(self, max_failed: float, what: str) -> None:
        """Raise CallsFailed above `max_failed`; warn on stderr for any failure below it."""
        if not self.failed:
            return
        made = self.answered + self.failed
        counted = f"{what}: {self.failed} of {made} calls failed"
        if self.share > max_failed:
            kept = (f" The {self.answered} answered calls are kept (call cache, and the outputs written so far)."
                    if self.answered else "")
            raise CallsFailed(
                f"{counted} ({self.share:.0%}, more than --max-failed {max_failed:g}); most common: "
                f"{self.cause()}.{kept} Fix: deal with the cause above, then re-run the same command: it makes "
                "only the missing calls")
        print(f"warning: {counted} (most common: {self.cause()}); they are not cached: re-run the same "
              "command to retry them", file=sys.stderr)
