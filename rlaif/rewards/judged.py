"""Reward sources that are judges from the catalog, through the judge package (and so `rlaif.calls`:
cache, retries, concurrency): a pointwise judge's score, or a pairwise judge's P(policy beats reference).

Each batch item becomes a `Response` (policy "policy", sample = its index in the batch) so the judge code
runs unchanged: `score_responses` for pointwise judges, `judge_pairs` in both orders for pairwise ones.
"""
from __future__ import annotations

from typing import Any

from rlaif.calls.stats import CallStats
from rlaif.errors import ConfigError, RlaifError
from rlaif.judge.labeling import LiveCalls, ScoreContext, judge_pairs, score_responses
from rlaif.judge.pairing import make_pair
from rlaif.judge.spec import Judge, load_judge
from rlaif.records import Response
from rlaif.rewards.spec import RewardSource, ScorerSettings, group_arg
from rlaif.scoring import RewardBatch, SourceScores

POLICY, REFERENCE = "policy", "reference"


def load_reward_judge(src: RewardSource, *, judge_model: str | None, base_urls: list[str] | None,
                      api_key_env: str | None, timeout: float | None) -> Judge:
    """The judge a `judge:`/`pairwise:` spec names, on `judge_model` if given, its mode checked.
    HTTP backends are built here so `timeout` applies (LiveCalls would build them with the default)."""
    try:
        judge = load_judge(group_arg(src.arg, src.spec)[0] if src.kind == "group" else src.arg, model=judge_model)
        if judge.kind == "llm":
            from rlaif.backends import DEFAULT_TIMEOUT_S, get_backend, is_http

            if is_http(judge.model):
                judge.backend = get_backend(judge.model, base_urls=base_urls, api_key_env=api_key_env,
                                            timeout_s=timeout or DEFAULT_TIMEOUT_S)
    except RlaifError as e:
        raise ConfigError(f"--reward '{src.spec}': {e}") from None
    if src.kind in ("pairwise", "group") and judge.mode != "pairwise":
        raise ConfigError(f"--reward '{src.spec}': judge '{judge.name}' is {judge.mode}, not pairwise. "
                          f"Fix: use judge:{judge.name} for a {judge.mode} judge, or a pairwise judge "
                          "(pairwise, pairwise-logprob, pairwise-cot)")
    if src.kind == "judge" and judge.mode == "pairwise":
        raise ConfigError(f"--reward '{src.spec}': judge '{judge.name}' is pairwise. Fix: use pairwise:{src.arg} "
                          "(against metadata['reference']) or a pointwise judge (rubric, rubric-aspects, binary)")
    return judge


def _response(batch: RewardBatch, i: int, policy: str = POLICY, text: str | None = None) -> Response:
    meta = batch.metadata[i]
    return Response(prompt_id=str(meta.get("prompt_id", f"item{i}")), prompt=batch.prompts[i], policy=policy,
                    sample=i, response=batch.responses[i] if text is None else text,
                    constraints=meta.get("constraints"))  # extra field: a rule-kind judge reads it


class JudgeReward:
    """A pointwise (or binary) judge's score per response. A judge declaring `score_range: [lo, hi]` is
    scaled to (score - lo) / (hi - lo) in 0..1; binary judges give 1/0; others (no range) give the raw score."""

    def __init__(self, judge: Judge, calls: Any):
        self.judge, self.calls = judge, calls
        self.stats = CallStats()
        self.context = ScoreContext()  # holds a loaded rule checker across batches (a reward model: `calls`)
        rng = judge.spec.score_range
        usable = rng is not None and judge.mode != "binary" and rng[1] > rng[0]
        self.scale = (float(rng[0]), float(rng[1])) if usable else None

    def _scaled(self, v: float) -> float:
        if self.scale is None:
            return v
        lo, hi = self.scale
        return (v - lo) / (hi - lo)

    def score(self, batch: RewardBatch) -> SourceScores:
        responses = [_response(batch, i) for i in range(len(batch.responses))]
        records = score_responses(self.judge, responses, self.calls, context=self.context, stats=self.stats)
        values = [None if r.score is None else self._scaled(r.score) for r in records]
        errors = [None if r.score is not None else f"{self.judge.rater}: {r.error or 'no score'}" for r in records]
        return SourceScores(values, errors, [r.raw for r in records])

    def close(self) -> None:
        pass


class PairwiseReward:
    """A pairwise judge on (policy response, reference answer), asked in both orders: the reward is the
    order-averaged P(policy wins) (a tie counts 0.5; a judge that always picks one position gives 0.5).
    The reference is metadata["reference"]: the prompt file's field, or the trainer's base-policy sample.
    An item with either order unparsed is None: one order alone would bring the position bias back."""

    def __init__(self, judge: Judge, calls: Any):
        self.judge, self.calls = judge, calls
        self.stats = CallStats()

    def score(self, batch: RewardBatch) -> SourceScores:
        n = len(batch.responses)
        values: list[float | None] = [None] * n
        errors: list[str | None] = [None] * n
        pairs, where = [], []
        for i, meta in enumerate(batch.metadata):
            ref = meta.get("reference")
            if not isinstance(ref, str) or not ref.strip():
                errors[i] = ("no reference answer (metadata 'reference'): pairwise rewards need a 'reference' "
                             "field in the prompt file or the base policy's sample passed by the trainer")
                continue
            pairs.append(make_pair(_response(batch, i), _response(batch, i, REFERENCE, ref)))
            where.append(i)
        by_item: dict[str, dict[str, Any]] = {}
        for lab in judge_pairs(self.judge, pairs, self.calls, orders="both", stats=self.stats):
            by_item.setdefault(lab.item, {})[lab.order] = lab
        for pair, i in zip(pairs, where, strict=True):
            got = by_item.get(pair.item, {})
            missing = [f"order {o}: {got[o].error if o in got else 'not asked'}" for o in ("ab", "ba")
                       if o not in got or got[o].p_a is None]
            if missing:
                errors[i] = f"{self.judge.rater} gave no verdict in " + "; ".join(missing)
            else:
                values[i] = (got["ab"].p_a + got["ba"].p_a) / 2
        return SourceScores(values, errors)

    def close(self) -> None:
        pass


def live_calls(*, concurrency: int, cache: bool, base_urls: list[str] | None,
               api_key_env: str | None) -> LiveCalls:
    """One call layer for every judge source of a reward function (backends built once, reused)."""
    return LiveCalls(concurrency=concurrency, cache=cache, progress=False, base_urls=base_urls,
                     api_key_env=api_key_env)


def judge_scorer(src: RewardSource, settings: ScorerSettings) -> Any:
    """The registry's factory of the llm kind (`rlaif.scoring.KINDS`): `judge:NAME`, `pairwise:NAME` or
    `group:NAME[,pairs=M]` (`rlaif.rewards.group`)."""
    judge = load_reward_judge(src, judge_model=settings.judge_model, base_urls=settings.base_urls,
                              api_key_env=settings.api_key_env, timeout=settings.timeout)
    if src.kind == "group":
        from rlaif.rewards.group import GroupReward

        return GroupReward(judge, settings.calls, group_arg(src.arg, src.spec)[1])
    return (PairwiseReward if src.kind == "pairwise" else JudgeReward)(judge, settings.calls)
