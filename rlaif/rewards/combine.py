"""`build_reward_fn(specs) -> RewardFunction`: the sources of several `--reward` specs behind one
`RewardFn`, their weighted sum in `rewards` and each source's own values in `by_source`.

An item's reward is None when any source with a non-zero weight gave it None (the reasons joined in
`errors`); a zero-weight source is computed and reported but never makes an item None. API keys from the
environment are masked in every error text.
"""
from __future__ import annotations

import os
from typing import Any

from rlaif.calls.stats import CallStats
from rlaif.errors import BackendError, ConfigError
from rlaif.redact import redact, remember_secret
from rlaif.rewards.spec import RewardSource, ScorerSettings, parse_reward_specs
from rlaif.scoring import RewardBatch, RewardResult, SourceScores, combine, kind_of_spec, scorer_factory

_KEY_VARS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")


class RewardFunction:
    """A `RewardFn` (call it with a `RewardBatch`); `close()` (or `with`) frees clients and models."""

    def __init__(self, sources: list[RewardSource], scorers: list[Any], calls: Any = None):
        self.sources, self.scorers, self.calls = sources, scorers, calls

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.sources]

    @staticmethod
    def redact(text: str) -> str:
        return redact(text)

    def score_source(self, index: int, batch: RewardBatch) -> SourceScores:
        """One source's own scores (and raw outputs, where it has them) on the batch, errors masked."""
        src, scorer = self.sources[index], self.scorers[index]
        n = len(batch.responses)
        try:
            out = scorer.score(batch)
        except BackendError as e:  # fails every call (bad key, unknown model): stop, with the key masked
            raise BackendError(self.redact(f"--reward '{src.name}': {e}")) from None
        if len(out.values) != n or len(out.errors) != n:
            return SourceScores.failed(n, f"{src.name} gave {len(out.values)} values for {n} items")
        return SourceScores(out.values, [None if e is None else self.redact(e) for e in out.errors], out.raw)

    def __call__(self, batch: RewardBatch) -> RewardResult:
        n = len(batch.responses)
        if len(batch.prompts) != n or len(batch.metadata) != n:
            raise ValueError(f"RewardBatch of {len(batch.prompts)} prompts, {n} responses, "
                             f"{len(batch.metadata)} metadata: one of each per item")
        scores = [self.score_source(i, batch) for i in range(len(self.sources))]
        return combine({src.name: RewardResult(s.values, errors=s.errors) for src, s in zip(self.sources, scores,
                                                                                           strict=True)},
                       {src.name: src.weight for src in self.sources})

    def stats(self) -> dict[str, CallStats]:
        """Per source that makes calls (judges, reward models): calls made, cache hits, failed calls."""
        return {src.name: sc.stats for src, sc in zip(self.sources, self.scorers, strict=True)
                if getattr(sc, "stats", None) is not None}

    def close(self) -> None:
        for sc in self.scorers:
            sc.close()
        if self.calls is not None:
            self.calls.close()

    def __enter__(self) -> RewardFunction:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _secrets(api_key_env: str | None) -> tuple[str, ...]:
    names = (*_KEY_VARS, api_key_env) if api_key_env else _KEY_VARS
    return tuple(v for v in (os.environ.get(k) for k in names) if v and len(v) >= 6)


def build_reward_fn(specs: list[str], *, judge_model: str | None = None, base_urls: list[str] | None = None,
                    api_key_env: str | None = None, concurrency: int = 8, timeout: float | None = None,
                    cache: bool = True, tokenizer: Any = None, device: str | None = None,
                    http_batch_size: int = 32, http_retries: int = 3, http_backoff_s: float = 1.0) -> RewardFunction:
    """Parse and build every `--reward` spec (bad ones raise `ConfigError` before any work is done), each
    by its kind's factory in the registry (`rlaif.scoring.KINDS`).

    judge_model / base_urls / api_key_env / concurrency / timeout / cache: the judge sources' backend and
    call layer, as `rlaif label` takes them (timeout also bounds each /get_reward request); tokenizer: the
    policy's, for the chat-template text sent to an http source; device: where an `rm:` model runs.
    """
    sources = parse_reward_specs(specs)
    if all(s.weight == 0 for s in sources):
        raise ConfigError("every --reward has weight 0, so every reward would be 0. Fix: give one a weight, "
                          "e.g. rule@1")
    judged = [s for s in sources if kind_of_spec(s.kind).name == "llm"]
    if (base_urls or api_key_env or judge_model) and not judged:
        raise ConfigError("--judge-model, --base-url and --api-key-env apply to judge: and pairwise: rewards, "
                          "and none is given. Fix: drop them, or add --reward judge:NAME")
    calls = None
    scorers: list[Any] = []
    try:
        if judged:
            from rlaif.rewards.judged import live_calls

            calls = live_calls(concurrency=concurrency, cache=cache, base_urls=base_urls, api_key_env=api_key_env)
        settings = ScorerSettings(calls, judge_model, base_urls, api_key_env, concurrency, timeout, cache,
                                  tokenizer, device, http_batch_size, http_retries, http_backoff_s)
        for src in sources:
            scorers.append(scorer_factory(kind_of_spec(src.kind).name)(src, settings))
    except BaseException:
        RewardFunction(sources[:len(scorers)], scorers, calls).close()
        raise
    for secret in _secrets(api_key_env):
        remember_secret(secret)
    return RewardFunction(sources, scorers, calls)
