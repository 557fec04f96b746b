"""A trained reward model's scores as calls: cached in the call cache, counted like any model call.

One class for both places a reward model scores: the `rm:` reward source (training, the service) and the
`reward-model` judge (labels, evaluation). The model class itself is named through `rlaif.scoring`, never imported.
"""
from __future__ import annotations

import math
from typing import Any

from rlaif.calls.stats import CallStats
from rlaif.scoring import RewardBatch, SourceScores, checked_list, reward_model_class


class ModelReward:
    """A reward model trained by `rlaif train rm` (`rlaif.scoring.reward_model_class`: `RewardScorer`, the
    training tokenization, batched), or a user's `scorer` class (`module:Class`, built as `Class(path)`) in its place;
    the `rm:` reward source and the `reward-model` judge.
    The raw score is the reward (no squashing: its scale is what the RM's loss made it).

    With `cache`, each score is a row of the call cache (`$RLAIF_CACHE/calls.sqlite`, backend `rm`), keyed by
    the model's weights fingerprint, its tokenization limits, the prompt and the response: an item scored
    before, by this process or an earlier one (also one killed with -9), costs no forward."""

    def __init__(self, path: str, *, scorer: str | None = None, device: str | None = None, batch_size: int = 16,
                 cache: bool = False):
        from pathlib import Path

        from rlaif.backends.hf_backend import weights_fingerprint

        kwargs = {} if scorer is not None else {"device": device, "batch_size": batch_size}  # a user's class: path only
        self.scorer = reward_model_class(scorer)(path, **kwargs)
        self.path = path
        self.stats = CallStats()  # calls: items the model scored; cache_hits: items the cache answered
        # the scorer's digest of the files' contents (RewardScorer), else names, sizes and times (a scorer of one's own;
        # one whose path is no file or folder cannot be told apart from its next version, so it is never cached)
        fingerprint = getattr(self.scorer, "fingerprint", None)
        if fingerprint is None and Path(path).exists():
            fingerprint = weights_fingerprint(Path(path))
        self.model_id = f"{Path(path).resolve()}@{fingerprint}" if scorer is None else \
            f"{scorer}:{Path(path).resolve()}@{fingerprint}"
        self.cache = None
        if cache and fingerprint is not None:
            from rlaif.calls.cache import CallCache

            self.cache = CallCache()

    def _keys(self, batch: RewardBatch) -> list[tuple[str, dict]]:
        from rlaif.calls.cache import record_key

        enc = getattr(self.scorer, "encoder", None)  # a scorer of one's own may have no tokenization limits
        limits = {} if enc is None else {"max_length": enc.max_length, "max_prompt_length": enc.max_prompt_length}
        out = []
        for prompt, response in zip(batch.prompts, batch.responses, strict=True):
            fields = {"prompt": prompt, "response": response, **limits}
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
