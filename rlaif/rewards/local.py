"""Reward sources computed in this process: the constraint checker, a trained reward model, a Python function.

Every source is a `rlaif.scoring.Scorer`: `score(batch)` returns `SourceScores`, one value or None per item,
and for each None the reason. `rule_scorer`, `model_scorer` and `function_scorer` are the registry's
factories of these kinds (`rlaif.scoring.KINDS`).
"""
from __future__ import annotations

import asyncio
import inspect
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from rlaif.calls.reward_model import ModelReward
from rlaif.errors import ConfigError, UserCodeError
from rlaif.scoring import RewardBatch, SourceScores, checked_list, import_object, rule_checker

if TYPE_CHECKING:
    from rlaif.rewards.spec import RewardSource, ScorerSettings


class RuleReward:
    """`rlaif.instructions.constraints.check` on metadata["constraints"]: the share of constraints met
    (`share`, graded: group methods learn from partial progress) or 1/0 for all met (`all`)."""

    def __init__(self, mode: str = "share"):
        self.mode = mode

    def score(self, batch: RewardBatch) -> SourceScores:
        check = rule_checker("constraints")
        values: list[float | None] = []
        errors: list[str | None] = []
        for response, meta in zip(batch.responses, batch.metadata, strict=True):
            constraints = meta.get("constraints")
            if not constraints:
                values.append(None)
                errors.append("the prompt carries no constraints (metadata 'constraints'): the rule reward "
                              "needs prompts with constraints, e.g. prompts/ifeval_id.jsonl")
                continue
            try:
                result = check(constraints, response)
            except UserCodeError:  # sys.exit in a checker of one's own: the run stops, saying where
                raise
            except Exception as e:  # a malformed constraint is that item's problem, not the batch's
                values.append(None)
                errors.append(f"constraint check failed: {e}")
                continue
            values.append(float(result.all_pass) if self.mode == "all" else result.share_passed)
            errors.append(None)
        return SourceScores(values, errors)

    def close(self) -> None:
        pass


class FunctionReward:
    """`python:MODULE:FUNCTION`, called the way TRL's `GRPOTrainer` calls a reward function, so TRL reward functions
    work unchanged: keyword arguments `prompts=` (the prompt file's prompts: strings, or message lists),
    `completions=` (strings, or `[{"role": "assistant", "content": ...}]` for message-list prompts),
    `completion_ids=` (the sampled token ids, where the trainer has them) and every other prompt-file field
    (`constraints`, `reference`, `prompt_id`, ...) as a list with one entry per item. It returns one float or
    None (unscored) per item; `async def` functions are awaited. A function without `**kwargs` is given only
    the fields it names."""

    def __init__(self, spec: str, path: str):
        self.func = import_object(path, "function", named_in=f"--reward '{spec}'", fix=_TRL_FIX)
        self.path = path
        self.accepts = _accepted_names(self.func, spec)

    def kwargs(self, batch: RewardBatch) -> dict[str, Any]:
        prompts = [meta.get("prompt", messages) for meta, messages in zip(batch.metadata, batch.prompts, strict=True)]
        completions = [r if isinstance(p, str) else [{"role": "assistant", "content": r}]
                       for p, r in zip(prompts, batch.responses, strict=True)]
        out: dict[str, Any] = {"prompts": prompts, "completions": completions}
        if batch.completion_ids is not None:
            out["completion_ids"] = batch.completion_ids
        fields = dict.fromkeys(k for meta in batch.metadata for k in meta if k not in _TRL_OWN)
        out.update({k: [meta.get(k) for meta in batch.metadata] for k in fields})
        return out if self.accepts is None else {k: v for k, v in out.items() if k in self.accepts}

    def score(self, batch: RewardBatch) -> SourceScores:
        n = len(batch.responses)
        try:
            values = self.func(**self.kwargs(batch))
            if inspect.isawaitable(values):
                values = _await(values)
        except UserCodeError:  # sys.exit in the user's function (rlaif.scoring._guarded): the run stops, saying where
            raise
        except Exception as e:  # the user's function failing is a batch with no rewards, and why
            return SourceScores.failed(n, f"{self.path} raised {type(e).__name__}: {e}")
        return checked_list(values, n, self.path)

    def close(self) -> None:
        pass


_TRL_OWN = ("prompt", "completion", "completion_ids")  # TRL's own arguments, never passed as dataset fields
_TRL_FIX = ("name a reward function written as for TRL: def FUNCTION(prompts, completions, **kwargs) -> "
            "list[float | None] (prompt-file fields such as constraints arrive as keyword arguments)")


def _accepted_names(func: Any, spec: str) -> set[str] | None:
    """The keyword names `func` takes (None: any, it has **kwargs); the old positional convention
    FUNCTION(prompts, responses, metadata) is refused with how to move to TRL's."""
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):  # a builtin or C callable: call it as TRL would
        return None
    if "responses" in params or "metadata" in params:
        name = getattr(func, "__name__", "the function")
        raise ConfigError(f"--reward '{spec}': {name}{inspect.signature(func)} uses the old calling convention "
                          "(prompts, responses, metadata); python rewards are now called as TRL calls them, with "
                          "keyword arguments. Fix: write def FUNCTION(prompts, completions, **kwargs): `completions` "
                          "are the responses, and each prompt-file field (constraints, reference, ...) is "
                          "kwargs['constraints'] etc., one entry per item")
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return None
    return {name for name, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def _await(awaitable: Any) -> Any:
    """An `async def` reward's result; from a thread that already runs an event loop, in a thread of its own."""
    async def wait() -> Any:
        return await awaitable

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(wait())
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, wait()).result()


def rule_scorer(src: RewardSource, settings: ScorerSettings) -> RuleReward:
    return RuleReward(src.arg)


def model_scorer(src: RewardSource, settings: ScorerSettings) -> ModelReward:
    try:
        return ModelReward(src.arg, device=settings.device, cache=settings.cache)
    except ConfigError as e:
        raise ConfigError(f"--reward '{src.spec}': {e}") from None


def function_scorer(src: RewardSource, settings: ScorerSettings) -> FunctionReward:
    return FunctionReward(src.spec, src.arg)
