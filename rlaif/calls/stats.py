"""`CallStats`, the one count of model calls (and a reward model's items): served, cached, failed and why,
tokens, cost; and the share that failed for good, checked against `--max-failed`.

The call layer records a request that failed after its retries (on_error="record") and goes on;
a command adds up what its runs made (`CallStats.total`, `add`) and, once its partial outputs are
written, `check`s the share: above the limit it stops with `CallsFailed` (exit 3) naming the most
common error with its count; below it, a warning. Failed calls are never cached, so a re-run of
the same command makes only them again.
"""
from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from rlaif.errors import BackendError, ConfigError

__all__ = ["DEFAULT_MAX_FAILED", "CallStats", "CallsFailed", "check_max_failed"]

DEFAULT_MAX_FAILED = 0.5


class CallsFailed(BackendError):
    """Too many calls failed for good (a dead server, a wrong URL). Exit 3, apart from exit 2 (fix your
    input): what was answered is kept and a re-run resumes, so a script may simply try again later."""

    exit_code = 3


def cost_text(cost_usd: float | None, billed: bool) -> str:
    """The one wording of a cost, wherever it is shown: local calls cost nothing and say so; a dollar amount
    for billed APIs; unknown only when a billed model has no price in rlaif/calls/pricing.py."""
    if cost_usd is None:
        return "cost unknown (a billed model has no price in rlaif/calls/pricing.py)"
    if not billed:
        return "no cost (local)"
    return f"${cost_usd:.4f}"


def check_max_failed(max_failed: float) -> float:
    if not 0.0 <= max_failed <= 1.0:
        raise ConfigError(f"--max-failed {max_failed:g} is outside 0..1. Fix: a share of the calls, e.g. "
                          f"--max-failed {DEFAULT_MAX_FAILED} (0: any failure stops the run, 1: none does)")
    return max_failed


@dataclass
class CallStats:
    """What model calls cost and how many failed: one call-layer run, one judge or reward source over a
    command, or a command's total (`CallStats.total`). The one counter of calls: summary.json, probe.json,
    eval.json, the trainers' metrics and the service's /metrics read theirs from it."""

    requests: int = 0  # requests asked for
    cache_hits: int = 0  # served from the cache (or a duplicate of another request in the same run)
    calls: int = 0  # requests the backend (or a reward model) served successfully
    failed: int = 0  # requests that failed for good
    attempts: int = 0  # backend.complete invocations, retries included
    retries: int = 0
    input_tokens: int = 0  # tokens of the calls made (cache hits cost nothing)
    output_tokens: int = 0
    cost_usd: float | None = 0.0  # None: a call was made to a billed model the price table does not know
    billed: bool = False  # some calls went to a billed API (else local engines and servers: they cost nothing)
    wall_s: float = 0.0
    errors: Counter = field(default_factory=Counter)  # error message (redacted) -> requests that failed with it

    def summary(self) -> str:
        cost = cost_text(self.cost_usd, self.billed)
        return (f"{self.requests} requests: {self.calls} calls, {self.cache_hits} cached, {self.failed} failed, "
                f"{self.retries} retries; tokens in {self.input_tokens}, out {self.output_tokens}; {cost}; "
                f"{self.wall_s:.1f}s")

    def add(self, other: CallStats) -> None:
        """Count another run's calls in. Its unknown cost (a billed model without a price) makes this one
        unknown; local calls add nothing."""
        for name in _SUMMED:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.errors.update(other.errors)
        self.billed = self.billed or other.billed
        if other.cost_usd is not None:
            if self.cost_usd is not None:
                self.cost_usd += other.cost_usd
        elif other.calls:
            self.cost_usd = None

    @classmethod
    def total(cls, stats: Iterable[CallStats]) -> CallStats:
        """Summed over a command's runs (or judges)."""
        out = cls()
        for s in stats:
            out.add(s)
        return out

    @property
    def share_failed(self) -> float:
        made = self.calls + self.failed
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
        made = self.calls + self.failed
        counted = f"{what}: {self.failed} of {made} calls failed"
        if self.share_failed > max_failed:
            kept = (f" The {self.calls} answered calls are kept (call cache, and the outputs written so far)."
                    if self.calls else "")
            raise CallsFailed(
                f"{counted} ({self.share_failed:.0%}, more than --max-failed {max_failed:g}); most common: "
                f"{self.cause()}.{kept} Fix: deal with the cause above, then re-run the same command: it makes "
                "only the missing calls")
        print(f"warning: {counted} (most common: {self.cause()}); they are not cached: re-run the same "
              "command to retry them", file=sys.stderr)


_SUMMED = ("requests", "cache_hits", "calls", "failed", "attempts", "retries", "input_tokens", "output_tokens",
           "wall_s")
