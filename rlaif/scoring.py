"""Scoring a response, in one place: the reward contract, the `Scorer` protocol and the registry of scorer kinds.

The contract of online RL: the trainer hands a `RewardBatch` to a `RewardFn` and gets a `RewardResult`.
A reward is a float or None; None means "this item could not be scored" (the trainer drops the item and
counts it, never treats it as 0), and `errors` says why. `combine` makes one result of several sources
(a weighted sum); `combine_fns` does the same for the functions themselves.

A `Scorer` is one source: `score(batch) -> SourceScores` (a value or None per item, and why) and `close()`.
Every kind of scorer is built by a lazy factory named in `KINDS` (llm judge, rule, trained reward model,
http, python), imported only when a scorer of that kind is built, so this module stays a leaf (stdlib and
`rlaif.errors`) that `train`, `judge`, `rewards` and `serve` all import. The factories are the only
place a name becomes code: the trained reward model's (`TRAINED_REWARD_MODEL`, through `reward_model_class`)
is the only one that reaches into `rlaif.train`; rule checkers are named in `RULES`.
"""
from __future__ import annotations

import functools
import importlib
import inspect
import math
import sysconfig
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from rlaif.errors import ConfigError, RlaifError, UserCodeError

Messages = list[dict]  # chat messages: [{"role": ..., "content": ...}, ...]


class RewardError(RlaifError):
    """A reward function broke the contract or failed for too much of a batch."""


@dataclass
class RewardBatch:
    """What the trainer hands the reward function: one entry per sampled response."""

    prompts: list[Messages]  # chat messages of each prompt (what the policy saw)
    responses: list[str]  # decoded response text (special tokens stripped)
    metadata: list[dict]  # the prompt record's fields: prompt_id, constraints, reference, category, ...
    completion_ids: list[list[int]] | None = None  # the sampled token ids of each response, where the trainer has them

    def __post_init__(self):
        if not len(self.prompts) == len(self.responses) == len(self.metadata):
            raise ValueError(f"RewardBatch needs one prompt, response and metadata per item (got "
                             f"{len(self.prompts)}, {len(self.responses)}, {len(self.metadata)})")
        if self.completion_ids is not None and len(self.completion_ids) != len(self.responses):
            raise ValueError(f"RewardBatch has {len(self.completion_ids)} completion_ids for "
                             f"{len(self.responses)} responses")

    def rows(self, rows: Sequence[int]) -> RewardBatch:
        """The batch restricted to `rows`, in that order."""
        ids = None if self.completion_ids is None else [self.completion_ids[i] for i in rows]
        return RewardBatch([self.prompts[i] for i in rows], [self.responses[i] for i in rows],
                           [self.metadata[i] for i in rows], ids)

    def __len__(self) -> int:
        return len(self.responses)


@dataclass
class RewardResult:
    rewards: list[float | None]  # None = this item could not be scored
    by_source: dict[str, list[float | None]] = field(default_factory=dict)  # per source, for metrics
    errors: list[str | None] | None = None  # why an item is None (None: no errors); filled to len(rewards)

    def __post_init__(self):
        if self.errors is None:
            self.errors = [None] * len(self.rewards)
        if len(self.errors) != len(self.rewards):
            raise ValueError(f"RewardResult has {len(self.rewards)} rewards but {len(self.errors)} errors")

    @property
    def skipped(self) -> int:
        return sum(r is None for r in self.rewards)

    @property
    def skipped_share(self) -> float:
        return self.skipped / len(self.rewards) if self.rewards else 0.0


RewardFn = Callable[[RewardBatch], RewardResult]


def _checked(name: str, result: RewardResult | Sequence[float | None], n: int) -> RewardResult:
    """The source's result with its length checked and non-finite rewards turned into errors."""
    if not isinstance(result, RewardResult):
        result = RewardResult(list(result))
    if len(result.rewards) != n:
        raise RewardError(f"reward source {name!r} returned {len(result.rewards)} rewards for {n} items. "
                          "Fix: return one reward (or None) per response")
    rewards, errors = list(result.rewards), list(result.errors)
    for i, r in enumerate(rewards):
        if r is None:
            errors[i] = errors[i] or "no reward and no reason given"
        elif isinstance(r, bool) or not isinstance(r, (int, float)) or not math.isfinite(r):
            rewards[i], errors[i] = None, f"not a finite number: {r!r}"
    return RewardResult([None if r is None else float(r) for r in rewards], result.by_source, errors)


def combine(sources: Mapping[str, RewardResult | Sequence[float | None]],
            weights: Mapping[str, float] | None = None) -> RewardResult:
    """The weighted sum of several sources' results, item by item (weights default to 1).

    An item is None if any source with a non-zero weight gave None (or a non-finite value) for it, and its
    error lists each such source as "name: why". `by_source` holds every source's rewards under its name
    (weight-0 sources too: they are logged, not optimized).
    """
    if not sources:
        raise RewardError("no reward sources. Fix: pass at least one --reward")
    weights = dict(weights or {})
    unknown = sorted(set(weights) - set(sources))
    if unknown:
        raise RewardError(f"weights given for unknown reward sources {unknown}; sources are {sorted(sources)}")
    first = next(iter(sources.values()))
    n = len(first.rewards if isinstance(first, RewardResult) else first)
    checked = {name: _checked(name, res, n) for name, res in sources.items()}
    rewards: list[float | None] = [0.0] * n
    errors: list[str | None] = [None] * n
    for name, res in checked.items():
        w = float(weights.get(name, 1.0))
        if w == 0.0:
            continue
        for i, r in enumerate(res.rewards):
            if r is None:
                rewards[i] = None
                errors[i] = "; ".join(e for e in (errors[i], f"{name}: {res.errors[i]}") if e)
            elif rewards[i] is not None:
                rewards[i] += w * r
    return RewardResult(rewards, {name: res.rewards for name, res in checked.items()}, errors)


def combine_fns(fns: Mapping[str, RewardFn], weights: Mapping[str, float] | None = None) -> RewardFn:
    """One RewardFn calling every source on the batch and combining their results with `combine`."""
    def reward(batch: RewardBatch) -> RewardResult:
        return combine({name: fn(batch) for name, fn in fns.items()}, weights)

    return reward


def check_skipped(result: RewardResult, max_skipped_share: float = 0.5) -> None:
    """Stop the run when more than `max_skipped_share` of a batch could not be scored."""
    if result.rewards and result.skipped_share > max_skipped_share:
        first = next((e for e in result.errors if e), "no reason given")
        raise RewardError(f"{result.skipped} of {len(result.rewards)} responses could not be scored (more than "
                          f"max_skipped_share={max_skipped_share}); first error: {first}. Fix: repair the reward "
                          "source, or raise max_skipped_share")


# ---- one source's scores and the Scorer protocol ---------------------------------------------------------

@dataclass
class SourceScores:
    """One source's verdict on a batch: `values[i]` is None exactly when `errors[i]` says why; `raw`: the
    judge's output per item, for sources that have one (what `rlaif serve` reports)."""

    values: list[float | None]
    errors: list[str | None]
    raw: list[str | None] | None = None

    @classmethod
    def failed(cls, n: int, error: str) -> SourceScores:
        return cls([None] * n, [error] * n)


def checked_value(v: Any) -> tuple[float | None, str | None]:
    """A reward as returned by a scorer -> (float, None), or (None, why) for a missing or non-finite one."""
    if v is None:
        return None, "no reward for this item (None)"
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        try:
            v = float(v)  # numpy and torch scalars
        except (TypeError, ValueError):
            return None, f"not a number: {v!r}"
    v = float(v)
    if not math.isfinite(v):
        return None, f"not a finite number: {v!r}"
    return v, None


def checked_list(values: Any, n: int, who: str) -> SourceScores:
    """A scorer's list of rewards, length-checked and each value checked."""
    try:
        values = list(values)
    except TypeError:
        return SourceScores.failed(n, f"{who} returned {type(values).__name__}, not a list of rewards")
    if len(values) != n:
        return SourceScores.failed(n, f"{who} returned {len(values)} rewards for {n} items")
    pairs = [checked_value(v) for v in values]
    return SourceScores([v for v, _ in pairs], [None if e is None else f"{who}: {e}" for _, e in pairs])


class Scorer(Protocol):
    """One scoring source of any kind: a value or None (and why) per item of a batch."""

    def score(self, batch: RewardBatch) -> SourceScores: ...

    def close(self) -> None: ...


# ---- the registry: kinds of scorer, each built by a lazy factory ----------------------------------------

def import_object(path: str, what: str, *, named_in: str = "the judge's YAML", fix: str | None = None) -> Any:
    """`package.module:name` -> the callable it names (a checker, a scorer, a factory, a reward function);
    the errors say where the path came from (`named_in`) and how to fix it. The user's own code (any module
    outside rlaif) is guarded: see `_import_users` and `_guarded`."""
    module, _, attr = path.rpartition(":")
    ours = module == "rlaif" or module.startswith("rlaif.")
    try:
        mod = importlib.import_module(module) if ours else _import_users(module, named_in)
    except ImportError as e:
        raise ConfigError(f"{named_in}: cannot import module '{module}' ({e}). "
                          "Fix: put the module on PYTHONPATH or install its package") from None
    obj = getattr(mod, attr, None)
    if not callable(obj):
        raise ConfigError(f"{named_in}: module '{module}' has no {what} '{attr}'. "
                          f"Fix: {fix or f'correct the module:name in {named_in}'}")
    return obj if ours or not inspect.isfunction(obj) else _guarded(obj, f"{named_in}: {path}")


# ---- the user's own code: a failure to import, or sys.exit, is that module failing -------------------------

def _where(e: BaseException) -> str:
    """FILE:LINE where `e` was raised: a SyntaxError's own position, else the deepest frame of its traceback in
    the user's code (not in rlaif, the standard library or an installed package: json.loads failing is the
    line that called it)."""
    if isinstance(e, SyntaxError) and e.filename:
        return f"{e.filename}:{e.lineno}"
    frames = [f for f in traceback.extract_tb(e.__traceback__) if not f.filename.startswith("<")]
    paths = sysconfig.get_paths()
    libraries = tuple(str(Path(p).resolve()) for p in (paths["stdlib"], paths["purelib"], paths["platlib"],
                                                       Path(__file__).parent))
    users = [f for f in frames if not str(Path(f.filename).resolve()).startswith(libraries)] or frames
    return f"{users[-1].filename}:{users[-1].lineno}" if users else "an unknown line"


def _import_users(module: str, named_in: str) -> Any:
    """`importlib.import_module` of the user's module; any error raised while it runs (a SyntaxError, an
    exception, sys.exit) -> UserCodeError naming the module, the line and the error. A module that is not
    there stays an ImportError (the caller's 'cannot import')."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        if e.name is not None and (module == e.name or module.startswith(e.name + ".")):
            raise  # the module itself (or its package) is not there
        problem = e
    except (Exception, SystemExit) as e:  # the user's code may raise anything
        problem = e
    what = (f"called sys.exit({problem.code!r})" if isinstance(problem, SystemExit)
            else f"raised {type(problem).__name__}: {problem}")
    where = _where(problem)
    raise UserCodeError(f"{named_in}: importing module '{module}' failed: it {what} at {where}. Fix: correct "
                        f"{where} (`python -c 'import {module}'` shows the same error)") from None


def _guarded(fn: Callable, path: str) -> Callable:
    """`fn` of the user's module, with sys.exit inside it turned into a UserCodeError naming where: user code
    must not end a training run (its other exceptions stay the caller's: an unscored batch, and why)."""
    def ended(e: SystemExit) -> UserCodeError:
        return UserCodeError(f"{path} called sys.exit({e.code!r}) at {_where(e)}, which would end this run "
                             "without a word. Fix: raise an exception instead (the batch is then unscored, with its "
                             "message) or return None for the items it cannot score; then re-run the same command, "
                             "which resumes from the last checkpoint")

    if inspect.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def guarded_async(*args: Any, **kwargs: Any) -> Any:
            try:
                return await fn(*args, **kwargs)
            except SystemExit as e:
                raise ended(e) from None
        return guarded_async

    @functools.wraps(fn)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SystemExit as e:
            raise ended(e) from None
    return guarded


@dataclass(frozen=True)
class ScorerKind:
    """A kind of scorer: its factory (`module:function`, imported when a scorer of the kind is first built,
    called as factory(source, settings) -> Scorer) and the `--reward` spec kinds that build it."""

    name: str
    factory: str
    specs: tuple[str, ...]
    holds: str


KINDS: dict[str, ScorerKind] = {k.name: k for k in (
    ScorerKind("llm", "rlaif.rewards.judged:judge_scorer", ("judge", "pairwise", "group"),
               "a catalog judge: a pointwise score, P(policy wins) of a pairwise one, or a sample's mean win "
               "probability against the others of its prompt, through rlaif.calls"),
    ScorerKind("rule", "rlaif.rewards.local:rule_scorer", ("rule",),
               "the constraint checker: share of the prompt's constraints met, or 1/0 for all met"),
    ScorerKind("reward_model", "rlaif.rewards.local:model_scorer", ("rm",),
               "a reward model trained by `rlaif train rm` (through `reward_model_class`)"),
    ScorerKind("http", "rlaif.rewards.remote:http_scorer", ("http",),
               "a remote server speaking OpenRLHF's /get_reward"),
    ScorerKind("python", "rlaif.rewards.local:function_scorer", ("python",),
               "a Python function(prompts, responses, metadata) -> list[float | None]"),
)}


def kind_of_spec(spec_kind: str) -> ScorerKind:
    """The scorer kind a `--reward` spec kind (rule, rm, judge, pairwise, http, python) builds."""
    for k in KINDS.values():
        if spec_kind in k.specs:
            return k
    raise ConfigError(f"unknown scorer kind '{spec_kind}'. Fix: use one of "
                      f"{', '.join(s for k in KINDS.values() for s in k.specs)}")


def scorer_factory(kind: str) -> Callable[..., Scorer]:
    """The factory of a kind of scorer, imported now; `ConfigError` naming the valid kinds for an unknown one."""
    if kind not in KINDS:
        raise ConfigError(f"unknown scorer kind '{kind}'. Fix: use one of {', '.join(KINDS)}")
    return import_object(KINDS[kind].factory, f"{kind} scorer factory")


# ---- rule checkers by name ------------------------------------------------------------------------------

@dataclass(frozen=True)
class RuleChecker:
    """A built-in rule checker: `checker(constraints, response)`. `rater_model` is what rater ids name it by:
    kept as stored label files spell it, so their ids (and the cache keys built on them) never change."""

    name: str
    target: str
    rater_model: str


RULES: dict[str, RuleChecker] = {r.name: r for r in (
    RuleChecker("constraints", "rlaif.instructions.constraints:check", "rlaif.constraints:check"),
)}
# Old spellings of built-in checkers (the module path they were imported by) -> their name.
RULE_ALIASES = {"rlaif.constraints:check": "constraints", "rlaif.instructions.constraints:check": "constraints"}
RULE_RATER = "rule@v1:rlaif.constraints:check"  # the rater id of judges/rule.yaml and of `rlaif serve`'s rule


def rule_model(checker: str) -> str:
    """The rater-id model of a judge YAML's `checker`: a built-in's stable id, else the user's `module:function`."""
    name = RULE_ALIASES.get(checker, checker)
    return RULES[name].rater_model if name in RULES else checker


def rule_checker(checker: str) -> Callable:
    """A judge YAML's `checker` -> the function: a built-in by name (or old spelling), else `module:function`."""
    name = RULE_ALIASES.get(checker, checker)
    if name in RULES:
        return import_object(RULES[name].target, "rule checker")
    if ":" not in checker:
        raise ConfigError(f"unknown rule checker '{checker}'. Fix: use one of {', '.join(RULES)}, or "
                          "'module:function'")
    return import_object(checker, "rule checker")


# ---- the trained reward model's factory -----------------------------------------------------------------

# The only name of training code outside `rlaif.train`, `rlaif.cli` and the pipelines: loaded on first use.
TRAINED_REWARD_MODEL = "rlaif.train.reward_model:RewardScorer"
# The old spelling in judge YAMLs (`scorer: rlaif.train.reward:RewardScorer`) -> the built-in.
_REWARD_MODEL_ALIASES = ("rlaif.train.reward:RewardScorer", TRAINED_REWARD_MODEL)


def reward_model_class(scorer: str | None = None) -> Any:
    """The trained reward model's class (`Class(path, ...)`, `.score(prompts, responses)`), or a user's
    `module:Class` that stands in for it."""
    target = TRAINED_REWARD_MODEL if scorer is None or scorer in _REWARD_MODEL_ALIASES else scorer
    return import_object(target, "reward model scorer")
