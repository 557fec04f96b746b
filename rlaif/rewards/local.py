"""Reward sources computed in this process: the constraint checker, a trained reward model, a Python function.

Every source is a `rlaif.scoring.Scorer`: `score(batch)` returns `SourceScores`, one value or None per item,
and for each None the reason. `rule_scorer`, `model_scorer` and `function_scorer` are the registry's
factories of these kinds (`rlaif.scoring.KINDS`).
"""
from __future__ import annotations

import asyncio
import inspect
import math
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from rlaif.calls.stats import CallStats
from rlaif.errors import ConfigError, UserCodeError
from rlaif.scoring import RewardBatch, SourceScores, checked_list, import_object, reward_model_class, rule_checker

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


class ModelReward:
    """A reward model trained by `rlaif train rm` (`rlaif.scoring.reward_model_class`: `RewardScorer`, the
    training tokenization, batched).
    The raw score is the reward (no squashing: its scale is what the RM's loss made it).

    With `cache`, each score is a row of the call cache (`$RLAIF_CACHE/calls.sqlite`, backend `rm`), keyed by
    the model's weights fingerprint, its tokenization limits, the prompt and the response: an item scored
    before, by this process or an earlier one (also one killed with -9), costs no forward."""

    def __init__(self, path: str, *, device: str | None = None, batch_size: int = 16, cache: bool = False):
        from pathlib import Path

        from rlaif.backends.hf_backend import weights_fingerprint

        self.scorer = reward_model_class()(path, device=device, batch_size=batch_size)
        self.path = path
        self.stats = CallStats()  # calls: items the model scored; cache_hits: items the cache answered
        # the scorer's digest of the files' contents (RewardScorer), else names, sizes and times (a scorer of one's own)
        fingerprint = getattr(self.scorer, "fingerprint", None) or weights_fingerprint(Path(path))
        self.model_id = f"{Path(path).resolve()}@{fingerprint}"
        self.cache = None
        if cache:
            from rlaif.calls.cache import CallCache

            self.cache = CallCache()

    def _keys(self, batch: RewardBatch) -> list[tuple[str, dict]]:
        from rlaif.calls.cache import record_key

        enc = self.scorer.encoder
        out = []
        for prompt, response in zip(batch.prompts, batch.responses, strict=True):
            fields = {"prompt": prompt, "response": response, "max_length": enc.max_length,
                      "max_prompt_length": enc.max_prompt_length}
            out.append((record_key("rm", self.model_id, fields), fields))
        return out

    def score(self, batch: RewardBatch) -> SourceScores:
        n = len(batch.responses)
        keys = self._keys(batch) if self.cache is not None else []
        found = self.cache.get_many([k for k, _ in keys]) if keys else {}
        values: list[Any] = [found[k].extra["reward"] if k in found else None for k, _ in keys] or [None] * n
        todo = [i for i in range(n) if not keys or keys[i][0] not in found]
        if found:
            self.stats.cache_hits += n - len(todo)
            self.cache.count_record_hits("rm", self.model_id, n - len(todo))
        if todo:
            try:
                fresh = self.scorer.score([batch.prompts[i] for i in todo], [batch.responses[i] for i in todo])
            except Exception as e:  # e.g. out of memory: the items still to score are unscored, and say why
                self.stats.failed += len(todo)
                out = checked_list(values, n, f"reward model {self.path}")
                for i in todo:
                    out.errors[i] = f"reward model {self.path} failed: {type(e).__name__}: {e}"
                return out
            self.stats.calls += len(todo)
            for i, v in zip(todo, fresh, strict=True):
                values[i] = v
                if self.cache is not None and math.isfinite(v):
                    self.cache.put_record(keys[i][0], "rm", self.model_id, keys[i][1], _completion(v))
            if self.cache is not None:
                self.cache.flush()  # committed before the scores are used: a kill -9 now never repeats them
        return checked_list(values, n, f"reward model {self.path}")

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()
            self.cache = None
        self.scorer = None


def _completion(value: float):
    from rlaif.backends.base import Completion

    return Completion(text=repr(value), extra={"reward": value})


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
