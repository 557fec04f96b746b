"""`rlaif.client.reward_func` and its async twin inside TRL 1.16: the reward functions a real `GRPOTrainer` step
calls, backed by a real `rlaif serve` (the rule scorer on the dataset's constraints), their two dataset formats,
weighted scorers, and what they report through TRL's `log_metric` / `log_extra`."""
from __future__ import annotations

import asyncio
import math
from collections import defaultdict

import pytest
from serve_helpers import TOKEN, Served

from rlaif.client import async_reward_func, reward_func

trl = pytest.importorskip("trl")

THREE_WORDS = [{"family": "length", "type": "words", "n": 3, "relation": "at least"}]


@pytest.fixture(scope="module")
def svc(tmp_path_factory):
    with Served(["--reward-scorer", "rule"], cache=tmp_path_factory.mktemp("trl") / "cache", token=TOKEN) as s:
        yield s


def test_reward_func_takes_both_trl_formats_and_gives_none_not_zero(svc):
    fn = reward_func(svc.url, token=TOKEN)
    assert fn.__name__ == "rlaif_rule"
    plain = fn(prompts=["Say three words.", "Say more."], completions=["one two three", "one"],
               constraints=[THREE_WORDS, THREE_WORDS], trainer_state=None, log_metric=print)
    assert plain == [1.0, 0.0]
    conv = fn(prompts=[[{"role": "user", "content": "Say three words."}]] * 2,
              completions=[[{"role": "assistant", "content": "one two three four"}],
                           [{"role": "assistant", "content": "two"}]], constraints=[THREE_WORDS, None])
    assert conv[0] == 1.0 and conv[1] is None  # no constraints: unscored, and TRL makes it NaN, not 0
    fn.client.close()


class Logs:
    """TRL's `log_metric` / `log_extra` hooks, kept."""

    def __init__(self):
        self.metrics, self.extra = defaultdict(list), defaultdict(list)

    def kwargs(self) -> dict:
        return {"log_metric": lambda name, value: self.metrics[name].append(value),
                "log_extra": lambda column, values: self.extra[column].extend(values)}


def test_the_async_twin_weights_scorers_and_reports_through_trls_hooks(svc):
    fn = async_reward_func(svc.url, token=TOKEN, weights={"rule": 2.0})
    assert fn.__name__ == "rlaif_rule" and asyncio.iscoroutinefunction(fn)
    logs = Logs()
    prompts = ["Say three words."] * 3
    got = asyncio.run(fn(prompts=prompts, completions=["one two three", "one", "a b c"],
                         constraints=[THREE_WORDS, THREE_WORDS, None], **logs.kwargs()))
    assert got == [2.0, 0.0, None]  # 2 x the rule's share; no constraints: unscored, never 0
    assert dict(logs.metrics) == {"rlaif_rule/rule": [0.5], "rlaif_rule/rule/unscored": [1.0],
                                  "rlaif_rule/unscored": [1.0]}
    errors = logs.extra["rlaif_rule/error"]
    assert errors[:2] == [None, None] and "carries no constraints" in errors[2]
    # the sync one, without TRL's hooks (an older TRL): the same rewards, nothing logged
    sync = reward_func(svc.url, token=TOKEN, weights={"rule": 2.0})
    assert sync(prompts=prompts, completions=["one two three", "one", "a b c"],
                constraints=[THREE_WORDS, THREE_WORDS, None]) == got
    sync.client.close()
    with pytest.raises(ValueError, match="not both"):
        reward_func(svc.url, token=TOKEN, scorer="rule", weights={"rule": 1.0})
    with pytest.raises(ValueError, match="finite weight"):
        async_reward_func(svc.url, token=TOKEN, weights={"rule": math.inf})


def test_a_grpo_step_calls_the_service_sync_and_async(svc, tiny_model_dir, tmp_path):
    from datasets import Dataset
    from transformers import AutoTokenizer

    n0 = _items_scored(svc)
    args = trl.GRPOConfig(output_dir=str(tmp_path / "grpo"), per_device_train_batch_size=4, num_generations=2,
                          max_completion_length=6, max_steps=1, report_to=[], use_cpu=True, save_strategy="no",
                          logging_steps=1, seed=0)
    ds = Dataset.from_list([{"prompt": [{"role": "user", "content": f"Say three words about {w}."}],
                             "constraints": THREE_WORDS} for w in ("rain", "snow", "sun", "wind")])
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    # the async twin under another name, so TRL logs the two apart
    funcs = [reward_func(svc.url, token=TOKEN), async_reward_func(svc.url, token=TOKEN, weights={"rule": 1.0})]
    funcs[1].__name__ = "rlaif_rule_async"
    trainer = trl.GRPOTrainer(model=str(tiny_model_dir), reward_funcs=funcs, args=args, train_dataset=ds,
                              processing_class=tok)
    trainer.train()
    logged = next(h for h in trainer.state.log_history if "rewards/rlaif_rule/mean" in h)
    assert math.isfinite(logged["rewards/rlaif_rule/mean"]) and 0.0 <= logged["rewards/rlaif_rule/mean"] <= 1.0
    # both saw the same completions with the same scorer: the same mean, and each reported its unscored count
    assert logged["rewards/rlaif_rule_async/mean"] == pytest.approx(logged["rewards/rlaif_rule/mean"])
    assert logged["rlaif_rule/unscored"] == 0.0 and logged["rlaif_rule/rule"] == pytest.approx(
        logged["rewards/rlaif_rule/mean"])
    assert _items_scored(svc) - n0 >= 4  # the step's completions went through the service


def _items_scored(svc) -> float:
    for line in svc.get("/metrics").text.splitlines():
        if line.startswith('rlaif_serve_items_total{scorer="rule"}'):
            return float(line.split()[-1])
    return 0.0
