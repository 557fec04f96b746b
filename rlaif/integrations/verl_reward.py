"""verl's custom reward function over `rlaif serve` or over rlaif reward specs in the trainer's process.

    python -m verl.trainer.main_ppo ... \\
        custom_reward_function.path="$(python -m rlaif.integrations.verl_reward)" \\
        custom_reward_function.name=compute_score \\
        +custom_reward_function.reward_kwargs.url=http://127.0.0.1:8000      # the service (or RLAIF_URL)
        # or: +custom_reward_function.reward_kwargs.reward=rule              # a --reward spec, in-process

verl calls `compute_score(data_source=, solution_str=, ground_truth=, extra_info=, **reward_kwargs)` per
response (`compute_score_async` is the `async def` its reward loop awaits; `compute_score_batch` takes the
plural lists of verl's batch reward manager) and takes a float or a dict whose `"score"` is the reward and whose
other keys it logs. Each answer here is a dict: `score`, `unscored` (0 or 1) and, with several sources, each
source's own value (`rlaif/<source>`, NaN where it gave none).

What an item is made of: the response is `solution_str`; the prompt is `extra_info["prompt"]` (a string or chat
messages; `extra_info["question"]` too), else empty (a judge then sees no question: store the prompt in
extra_info when preparing the data); `ground_truth` is read as `/get_reward` reads a label (a list, or its JSON,
is the item's constraints; a dict is taken as it is; text is the reference answer), and `extra_info`'s own
`constraints` / `reference` win over it.

reward_kwargs: `url` (default: $RLAIF_URL), `scorer` or `weights` ({scorer: weight}) of the service,
`token_env` (the variable holding the service's token, default RLAIF_SERVE_TOKEN); or `reward`: one `--reward`
spec or a list of them (rule, rm:PATH, judge:NAME@0.5, ...), built once per process; `unscored_reward`: the
score of an item that could not be scored (default: none, and such an item is an error, never a silent number).
"""
import asyncio
import math
import os
import threading
from typing import Any

from rlaif.errors import ConfigError, RlaifError

_LOCK = threading.Lock()
_CLIENTS: dict = {}  # (url, token) -> RewardClient, shared by verl's threads (httpx's client is thread-safe)
_REWARDS: dict = {}  # tuple of specs -> RewardFunction, built once per process


class UnscoredError(RlaifError):
    """An item could not be scored and no `unscored_reward` was given."""


def _item(solution_str: str, ground_truth: Any, extra_info: Any) -> tuple[Any, dict]:
    from rlaif.serve.openrlhf import label_metadata

    extra = dict(extra_info) if isinstance(extra_info, dict) else {}
    prompt = extra.get("prompt", extra.get("question")) or ""
    meta = {**label_metadata(ground_truth), **{k: extra[k] for k in ("constraints", "reference") if extra.get(k)}}
    return prompt, meta


def _answer(values: dict[str, float | None], weights: dict[str, float], why: str | None,
            unscored_reward: float | None) -> dict:
    """verl's dict: the weighted score (or `unscored_reward`), the unscored flag, each source's value."""
    parts = [(w, values.get(s)) for s, w in weights.items() if w != 0]
    score = None if any(v is None for _, v in parts) else sum(w * v for w, v in parts)
    if score is None:
        if unscored_reward is None:
            raise UnscoredError(f"rlaif could not score a response ({why or 'no reason given'}). Fix: repair the "
                                "reward source, or give +custom_reward_function.reward_kwargs.unscored_reward=VALUE")
        score = float(unscored_reward)
    out = {"score": float(score), "unscored": float(any(v is None for _, v in parts))}
    if len(weights) > 1:
        out.update({f"rlaif/{s}": math.nan if values.get(s) is None else values[s] for s in weights})
    return out


def _service(url: str | None, scorer: str | None, weights: dict | None, token_env: str):
    from rlaif.client import RewardClient

    url = url or os.environ.get("RLAIF_URL")
    if not url:
        raise ConfigError("no rlaif service and no reward spec given. Fix: set reward_kwargs.url (or RLAIF_URL) "
                          "to where `rlaif serve` runs, or reward_kwargs.reward to a --reward spec such as rule")
    token = os.environ.get(token_env) or None
    with _LOCK:
        client = _CLIENTS.get((url, token))
        if client is None:
            client = _CLIENTS[(url, token)] = RewardClient(url, token)
        if weights is None:
            weights = {scorer or client.judges()["reward"]: 1.0}
    return client, url, token, {str(k): float(v) for k, v in weights.items()}


def _local(reward: Any):
    from rlaif.rewards import build_reward_fn

    specs = tuple([reward] if isinstance(reward, str) else list(reward))
    with _LOCK:
        fn = _REWARDS.get(specs)
        if fn is None:
            fn = _REWARDS[specs] = build_reward_fn(list(specs))
    return fn


def _score_local(reward: Any, items: list[tuple[str, Any, Any, Any]], unscored_reward: float | None) -> list[dict]:
    from rlaif.records import as_messages
    from rlaif.scoring import RewardBatch

    fn = _local(reward)
    made = [_item(s, g, e) for _, s, g, e in items]
    batch = RewardBatch([as_messages(p) for p, _ in made], [s for _, s, _, _ in items],
                        [{"data_source": d, **meta} for (d, *_), (_, meta) in zip(items, made, strict=True)])
    result = fn(batch)
    weights = {src.name: src.weight for src in fn.sources}
    return [_answer({name: result.by_source[name][i] for name in weights}, weights, result.errors[i],
                    unscored_reward) for i in range(len(items))]


def _service_answers(results: list, weights: dict, unscored_reward: float | None) -> list[dict]:
    return [_answer(r.scores, weights, "; ".join(f"{s}: {e}" for s, e in r.errors.items() if e) or None,
                    unscored_reward) for r in results]


def _requests(items: list[tuple[str, Any, Any, Any]]) -> dict:
    made = [_item(s, g, e) for _, s, g, e in items]
    return {"prompts": [p for p, _ in made], "responses": [s for _, s, _, _ in items],
            "constraints": [m.get("constraints") for _, m in made], "references": [m.get("reference") for _, m in made]}


_OURS = ("url", "scorer", "weights", "reward", "token_env", "unscored_reward")
_VERLS = ("reward_router_address", "reward_model_tokenizer")  # what verl's reward managers add: not ours, unused


def _check(reward_kwargs: dict) -> None:
    unknown = sorted(set(reward_kwargs) - set(_OURS) - set(_VERLS))
    if unknown:
        raise ConfigError(f"custom_reward_function.reward_kwargs: unknown {', '.join(unknown)}. Fix: use "
                          f"{', '.join(_OURS)}")
    if reward_kwargs.get("reward") is not None and reward_kwargs.get("url") is not None:
        raise ConfigError("custom_reward_function.reward_kwargs: both url and reward given. Fix: give url (the "
                          "service) or reward (--reward specs run in the trainer's process), not both")
    fill = reward_kwargs.get("unscored_reward")
    if fill is not None and (isinstance(fill, bool) or not isinstance(fill, (int, float)) or not math.isfinite(fill)):
        raise ConfigError(f"custom_reward_function.reward_kwargs.unscored_reward={fill!r} is not a finite number. "
                          "Fix: give a number such as 0, or leave it out")


def _score_batch(items: list, *, url: str | None = None, scorer: str | None = None, weights: dict | None = None,
                 reward: Any = None, token_env: str = "RLAIF_SERVE_TOKEN", unscored_reward: float | None = None,
                 **verls: Any) -> list[dict]:
    _check({"url": url, "reward": reward, "unscored_reward": unscored_reward, **verls})
    if reward is not None:
        return _score_local(reward, items, unscored_reward)
    client, _, _, weights = _service(url, scorer, weights, token_env)
    results = client.score(**_requests(items), scorers=list(weights))
    return _service_answers(results, weights, unscored_reward)


def compute_score(data_source: str, solution_str: str, ground_truth: Any, extra_info: Any = None,
                  **reward_kwargs: Any) -> dict:
    """verl's custom reward function (see the module docstring): a dict with "score"."""
    return _score_batch([(data_source, solution_str, ground_truth, extra_info)], **reward_kwargs)[0]


def compute_score_batch(data_sources: list, solution_strs: list, ground_truths: list, extra_infos: list | None = None,
                        **reward_kwargs: Any) -> list[dict]:
    """verl's batch reward manager's call: the plural lists in, one dict per response out (one request)."""
    extra_infos = extra_infos if extra_infos is not None else [None] * len(solution_strs)
    return _score_batch(list(zip(data_sources, solution_strs, ground_truths, extra_infos, strict=True)),
                        **reward_kwargs)


async def compute_score_async(data_source: str, solution_str: str, ground_truth: Any, extra_info: Any = None,
                              **reward_kwargs: Any) -> dict:
    """`compute_score` as an `async def` (verl's reward loop awaits it): the service over httpx's async client,
    a local spec in a worker thread."""
    item = [(data_source, solution_str, ground_truth, extra_info)]
    _check(reward_kwargs)
    if reward_kwargs.get("reward") is not None:
        return (await asyncio.to_thread(_score_batch, item, **reward_kwargs))[0]
    from rlaif.client import AsyncRewardClient

    url, scorer, weights = reward_kwargs.get("url"), reward_kwargs.get("scorer"), reward_kwargs.get("weights")
    _, url, token, weights = await asyncio.to_thread(_service, url, scorer, weights,
                                                     reward_kwargs.get("token_env", "RLAIF_SERVE_TOKEN"))
    results = await AsyncRewardClient(url, token).score(**_requests(item), scorers=list(weights))
    return _service_answers(results, weights, reward_kwargs.get("unscored_reward"))[0]


if __name__ == "__main__":  # `python -m rlaif.integrations.verl_reward`: the path to give verl
    print(os.path.abspath(__file__))
