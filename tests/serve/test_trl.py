"""`rlaif.client.reward_func` inside TRL 1.16: the reward function a real `GRPOTrainer` step calls, backed by
a real `rlaif serve` (the rule scorer on the dataset's constraints), and its two dataset formats."""
from __future__ import annotations

import math

import pytest
from serve_helpers import TOKEN, Served

from rlaif.client import reward_func

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


def test_a_grpo_step_calls_the_service(svc, tiny_model_dir, tmp_path):
    from datasets import Dataset
    from transformers import AutoTokenizer

    n0 = _items_scored(svc)
    args = trl.GRPOConfig(output_dir=str(tmp_path / "grpo"), per_device_train_batch_size=4, num_generations=2,
                          max_completion_length=6, max_steps=1, report_to=[], use_cpu=True, save_strategy="no",
                          logging_steps=1, seed=0)
    ds = Dataset.from_list([{"prompt": [{"role": "user", "content": f"Say three words about {w}."}],
                             "constraints": THREE_WORDS} for w in ("rain", "snow", "sun", "wind")])
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    trainer = trl.GRPOTrainer(model=str(tiny_model_dir), reward_funcs=[reward_func(svc.url, token=TOKEN)],
                              args=args, train_dataset=ds, processing_class=tok)
    trainer.train()
    logged = next(h for h in trainer.state.log_history if "rewards/rlaif_rule/mean" in h)
    assert math.isfinite(logged["rewards/rlaif_rule/mean"]) and 0.0 <= logged["rewards/rlaif_rule/mean"] <= 1.0
    assert _items_scored(svc) - n0 >= 4  # the step's completions went through the service


def _items_scored(svc) -> float:
    for line in svc.get("/metrics").text.splitlines():
        if line.startswith('rlaif_serve_items_total{scorer="rule"}'):
            return float(line.split()[-1])
    return 0.0
