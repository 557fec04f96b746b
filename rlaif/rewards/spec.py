"""`--reward` specs: the syntax, its validation, and the parsed record.

    SPEC[@WEIGHT]

    rule                      share of the prompt's constraints met (graded, 0..1)
    rule:all                  1 if every constraint is met, else 0
    rm:PATH                   a reward model trained by `rlaif train rm` (raw score)
    judge:NAME                a pointwise judge from judges/ (or a YAML path), score scaled to 0..1
    pairwise:NAME             a pairwise judge against metadata["reference"], both orders: P(policy wins)
    group:NAME[,pairs=M]      a pairwise judge on a prompt's samples against each other, both orders: each
                              sample's mean win probability (all pairs, or M opponents each; `rewards.group`)
    http://HOST:PORT/PATH     a remote reward server speaking OpenRLHF's /get_reward (https too)
    python:MODULE:FUNCTION    a TRL reward function: FUNCTION(prompts=, completions=, **fields) -> list[float | None]

The weight is a number after the last `@` (default 1; negative = a penalty; 0 = computed and reported
per source but left out of the sum). `@` is used rather than `*` because `*` is a shell glob and a URL
or a path ending in `@NUMBER` is rare (write `SPEC@1` to keep such a one whole).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from rlaif.errors import ConfigError

KINDS = ("rule", "rm", "judge", "pairwise", "group", "http", "python")
SPEC_HELP = ("rule, rule:all, rm:PATH, judge:NAME, pairwise:NAME, group:NAME[,pairs=M], http://HOST:PORT/get_reward, "
             "python:MODULE:FUNCTION (each optionally followed by @WEIGHT, e.g. judge:rubric@0.5)")
RULE_MODES = ("share", "all")
_WEIGHT = re.compile(r"@([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)$")
_MODULE = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")
_NAME = re.compile(r"^[A-Za-z_][\w]*$")


@dataclass(frozen=True)
class RewardSource:
    """One parsed `--reward`: what kind, its argument, its weight, and the name it is reported under."""

    spec: str  # as given
    kind: str  # one of KINDS
    arg: str  # rule: share|all; rm: path; judge/pairwise: judge name or YAML; http: URL; python: module:function
    weight: float = 1.0

    @property
    def name(self) -> str:
        """The key of `RewardResult.by_source`: the spec without its weight (and without URL credentials)."""
        if self.kind == "rule":
            return "rule" if self.arg == "share" else "rule:all"
        if self.kind == "http":
            return _without_credentials(self.arg)
        return f"{self.kind}:{self.arg}"


@dataclass(frozen=True)
class ScorerSettings:
    """What the scorer factories (`rlaif.scoring.KINDS`) build a source with: the judge sources' backend and
    call layer (`calls`: one `LiveCalls` shared by every judge source), the policy's tokenizer (for the
    chat-template text of an http source), the device of an `rm:` model, and the http client's settings."""

    calls: Any = None
    judge_model: str | None = None
    base_urls: list[str] | None = None
    api_key_env: str | None = None
    concurrency: int = 8
    timeout: float | None = None
    cache: bool = True
    tokenizer: Any = None
    device: str | None = None
    http_batch_size: int = 32
    http_retries: int = 3
    http_backoff_s: float = 1.0


def _bad(spec: str, problem: str, fix: str = "") -> ConfigError:
    return ConfigError(f"--reward '{spec}': {problem}. Fix: {fix or 'use one of ' + SPEC_HELP}")


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]).geturl()


def _split_weight(spec: str) -> tuple[str, float]:
    m = _WEIGHT.search(spec)
    if m is None:
        if "@" in spec and not spec.startswith(("http://", "https://")):
            raise _bad(spec, f"the weight '{spec.rpartition('@')[2]}' is not a number",
                       "write SPEC@WEIGHT with a number, e.g. rule@0.5")
        return spec, 1.0
    weight = float(m.group(1))
    if not math.isfinite(weight):
        raise _bad(spec, f"the weight {m.group(1)} is not finite", "give a finite number, e.g. rule@0.5")
    return spec[:m.start()], weight


def parse_reward_spec(spec: str) -> RewardSource:
    """One `--reward` value -> a `RewardSource`; `ConfigError` naming the spec and the valid kinds."""
    text = (spec or "").strip()
    if not text:
        raise _bad(spec, "empty reward spec")
    body, weight = _split_weight(text)
    if body.startswith(("http://", "https://")):
        parts = urlsplit(body)
        if not parts.hostname:
            raise _bad(spec, "the URL names no host", "write http://HOST:PORT/get_reward")
        return RewardSource(spec, "http", body, weight)
    kind, _, arg = body.partition(":")
    if kind not in KINDS or kind == "http":
        raise _bad(spec, f"unknown reward kind '{kind}'")
    if kind == "rule":
        mode = arg or "share"
        if mode not in RULE_MODES:
            raise _bad(spec, f"unknown rule mode '{arg}'",
                       "write rule (share of constraints met) or rule:all (1 only if all are met)")
        return RewardSource(spec, kind, mode, weight)
    if not arg:
        raise _bad(spec, f"'{kind}' needs an argument")
    if kind == "group":
        group_arg(arg, spec)
    if kind == "python":
        module, _, func = arg.rpartition(":")
        if not _MODULE.match(module) or not _NAME.match(func):
            raise _bad(spec, f"'{arg}' is not MODULE:FUNCTION", "write python:my_package.rewards:score")
    return RewardSource(spec, kind, arg, weight)


_PAIRS = re.compile(r"^pairs=(\d+)$")


def group_arg(arg: str, spec: str | None = None) -> tuple[str, int | None]:
    """`NAME[,pairs=M]` of a group reward -> (the judge, M or None for all pairs); `ConfigError` naming the spec."""
    name, sep, rest = arg.partition(",")
    if not name:
        raise _bad(spec or arg, "group needs a pairwise judge", "write group:pairwise or group:pairwise,pairs=2")
    if not sep:
        return name, None
    m = _PAIRS.match(rest.strip())
    if m is None or int(m.group(1)) < 1:
        raise _bad(spec or arg, f"'{rest}' is not pairs=M with M a whole number >= 1",
                   "write group:NAME (all pairs) or group:NAME,pairs=2 (each sample against 2 others)")
    return name, int(m.group(1))


def parse_reward_specs(specs: list[str]) -> list[RewardSource]:
    """Several `--reward` values; the same source twice is an error (its weights would be ambiguous)."""
    if not specs:
        raise ConfigError(f"no reward given. Fix: pass --reward SPEC (repeatable), one of {SPEC_HELP}")
    sources = [parse_reward_spec(s) for s in specs]
    names = [s.name for s in sources]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"the reward {', '.join(dup)} is given twice. "
                          "Fix: give each source once, with its weight as SOURCE@WEIGHT")
    return sources
