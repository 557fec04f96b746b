"""Building a service's scorers from `rlaif serve`'s options (`ScorerOptions` -> `Scorers`).

Every name and model is checked here, before the server binds its port: a bad judge, model or reward-model
directory is a `ConfigError` naming the flag. Reward models get a process each (`rlaif.serve.workers`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rlaif.calls.options import CallOptions
from rlaif.errors import ConfigError
from rlaif.scoring import RULE_RATER
from rlaif.serve.scorers import PairScorer, PointScorer, Scorers
from rlaif.serve.workers import ProcessPointScorer


@dataclass
class ScorerOptions:
    """`rlaif serve`'s scorer options, spelled as `rlaif label` spells them."""

    judges: list[str] = field(default_factory=list)
    judge_models: list[str] = field(default_factory=list)
    reward_models: list[str] = field(default_factory=list)
    calls: CallOptions = CallOptions()  # the judges' calls: concurrency, cache, base URLs, key, timeout
    device: str | None = None
    reward: str | None = None  # default scorer of /get_reward


def _judge_scorer(name: str, model: str | None, o: ScorerOptions) -> PointScorer | PairScorer:
    from rlaif.judge.spec import load_judge
    from rlaif.rewards import build_reward_fn

    judge = load_judge(name, model=model)
    pairwise = judge.mode == "pairwise"
    http_opts = judge.kind == "llm"
    c = o.calls
    fn = build_reward_fn([f"{'pairwise' if pairwise else 'judge'}:{name}"], judge_model=model,
                         base_urls=c.base_urls if http_opts else None,
                         api_key_env=c.api_key_env if http_opts else None, concurrency=c.concurrency,
                         timeout=c.timeout_s, cache=c.cache, device=o.device)
    rater = fn.scorers[0].judge.rater
    return PairScorer(judge.name, rater, fn) if pairwise else PointScorer(judge.name, "judge", rater, fn)


def load_scorers(o: ScorerOptions) -> Scorers:
    """Every scorer the options name (bad names and models fail here, before the server starts)."""
    from rlaif.rewards import build_reward_fn

    if len(o.judge_models) not in (0, 1, len(o.judges)):
        raise ConfigError(f"{len(o.judge_models)} --judge-model values for {len(o.judges)} --judge values. "
                          "Fix: give --judge-model once (used by every judge) or once per --judge, in order")
    point: dict[str, PointScorer] = {}
    pair: dict[str, PairScorer] = {}
    built: list[Any] = []
    try:
        for i, path in enumerate(o.reward_models):
            name = "rm" if len(o.reward_models) == 1 else f"rm{i + 1}"
            try:
                point[name] = ProcessPointScorer(name, "rm", f"rm:{path}", f"rm:{path}", device=o.device,
                                                 cache=o.calls.cache)
            except ConfigError as e:  # named by this command's flag, not by the --reward spec it builds
                reason = str(e).removeprefix(f"--reward 'rm:{path}': ")
                raise ConfigError(f"--reward-model {path}: {reason}") from None
            built.append(point[name])
        for i, name in enumerate(o.judges):
            model = o.judge_models[i] if len(o.judge_models) == len(o.judges) else (o.judge_models or [None])[0]
            scorer = _judge_scorer(name, model, o)
            if scorer.name in point or scorer.name in pair:
                raise ConfigError(f"two scorers are named '{scorer.name}'. Fix: give each --judge once")
            built.append(scorer)
            (pair if isinstance(scorer, PairScorer) else point)[scorer.name] = scorer
        if "rule" not in point:
            point["rule"] = PointScorer("rule", "rule", RULE_RATER, build_reward_fn(["rule"]))
            built.append(point["rule"])
    except BaseException:
        for s in built:
            s.close()
        raise
    default = o.reward or next((n for n in point if n != "rule"), "rule")
    if default not in point:
        for s in built:
            s.close()
        raise ConfigError(f"--reward-scorer '{default}' is not a loaded pointwise scorer. Fix: use one of "
                          f"{', '.join(point)}")
    return Scorers(point, pair, default)
