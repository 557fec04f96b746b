"""Judges that are not language models: Python rule checkers and trained reward models.

Both are named in the judge YAML by an import path ("module:function" / "module:Class") and
imported only when the judge runs, so rlaif.judge never imports torch or the training code.
"""
from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Iterable
from typing import Any

from rlaif.errors import ConfigError
from rlaif.judge.parsers import Score


def import_object(path: str, what: str) -> Any:
    """`package.module:attr` -> the object, with an error that says how to fix a bad path."""
    module, _, attr = path.partition(":")
    try:
        mod = importlib.import_module(module)
    except ImportError as e:
        raise ConfigError(f"cannot import the {what} module '{module}' ({e}). "
                          f"Fix: install the package that provides it, or point the judge's YAML at another "
                          f"'module:name'") from None
    try:
        return getattr(mod, attr)
    except AttributeError:
        raise ConfigError(f"module '{module}' has no '{attr}' (the {what} named '{path}'). "
                          "Fix: correct the 'module:name' in the judge's YAML") from None


# What a checker's result may carry, most informative first (rlaif.instructions.constraints' CheckResult has
# `share_passed`; a per-constraint result has `passed`).
_KEYS = ("share_passed", "score", "fraction", "passed", "ok", "followed")


def _passed(x: Any) -> float:
    """One checker result -> a number in [0, 1]."""
    if isinstance(x, bool):
        return float(x)
    if isinstance(x, (int, float)):
        return float(x)
    if isinstance(x, dict):
        for k in _KEYS:
            if k in x:
                return _passed(x[k])
        raise TypeError(f"checker result dict has none of {', '.join(_KEYS)}: {sorted(x)}")
    for k in _KEYS:
        if hasattr(x, k):
            return _passed(getattr(x, k))
    if isinstance(x, Iterable) and not isinstance(x, str):
        parts = [_passed(p) for p in x]
        if not parts:
            raise TypeError("checker returned an empty list")
        return sum(parts) / len(parts)
    raise TypeError(f"checker returned {type(x).__name__}; expected a bool, a number, or a list of results")


def rule_score(checker: Callable, constraints: list[dict] | None, response: str, binary: bool) -> Score:
    """The share of the constraints a response satisfies (binary: 1 only if it satisfies all)."""
    if not constraints:
        return Score(error="the prompt has no constraints to check")
    try:
        frac = _passed(checker(constraints, response))
    except Exception as e:  # a malformed constraint on one prompt is that item's problem, not the run's
        return Score(error=f"checker failed: {type(e).__name__}: {e}")
    if not 0.0 <= frac <= 1.0:
        return Score(error=f"checker returned {frac:g}, outside 0..1")
    return Score(value=(1.0 if frac >= 1.0 else 0.0) if binary else frac)


class LazyRewardModel:
    """Builds `scorer_class(path)` on first use (it loads torch and the checkpoint)."""

    def __init__(self, scorer_path: str, model_path: str):
        self.scorer_path, self.model_path = scorer_path, model_path
        self._scorer = None

    def score(self, prompts: list, responses: list[str]) -> list[float]:
        if self._scorer is None:
            cls = import_object(self.scorer_path, "reward model scorer")
            self._scorer = cls(self.model_path)
        scores = [float(s) for s in self._scorer.score(prompts, responses)]
        if len(scores) != len(responses):
            raise ConfigError(f"reward model scorer returned {len(scores)} scores for {len(responses)} responses. "
                              f"Fix: {self.scorer_path}.score must return one score per response")
        return scores


def sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)
