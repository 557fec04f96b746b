"""`group:NAME[,pairs=M]`: a prompt's samples judged against each other in both orders through the real openai SDK
on a loopback server; each sample's mean win probability by hand, the pairs= subset, lone samples, costs."""
from __future__ import annotations

import json
import re
from collections import Counter

import pytest
from fakeserver import FakeServer

from rlaif.errors import ConfigError
from rlaif.rewards import build_reward_fn, parse_reward_spec
from rlaif.rewards.group import calls_per_group, describe_cost, group_pairs
from rlaif.scoring import RewardBatch

KEY = "sk-test-group-key-0123456789"
_SHOWN = re.compile(r"Answer A:\n<<<\n(.*?)\n>>>\n\nAnswer B:\n<<<\n(.*?)\n>>>", re.S)


def longer_wins(call) -> str:
    a, b = _SHOWN.search(call.prompt).groups()
    return "[[A]]" if len(a) > len(b) else "[[B]]" if len(b) > len(a) else "[[C]]"


def first_if_longer(call) -> str:
    """Position-biased: the first answer wins when it is at least as long, else a tie."""
    a, b = _SHOWN.search(call.prompt).groups()
    return "[[A]]" if len(a) >= len(b) else "[[C]]"


def groups(*sizes: int) -> RewardBatch:
    """Group g has `sizes[g]` samples 'x', 'xx', ...; rows of a group are consecutive, as GRPO hands them."""
    prompts, responses, meta = [], [], []
    for g, k in enumerate(sizes):
        for s in range(k):
            prompts.append([{"role": "user", "content": f"Question {g}"}])
            responses.append("x" * (s + 1))
            meta.append({"prompt_id": f"q{g}"})
    return RewardBatch(prompts, responses, meta)


@pytest.fixture
def judge_env(monkeypatch):
    monkeypatch.setenv("JUDGE_KEY", KEY)
    return dict(judge_model="openai:judge", api_key_env="JUDGE_KEY")


def test_all_pairs_both_orders_mean_win_probability(judge_env):
    with FakeServer(reply=longer_wins) as srv, build_reward_fn(["group:pairwise"], base_urls=[srv.openai_url],
                                                               **judge_env) as fn:
        res = fn(groups(3))
        shown = Counter(_SHOWN.search(c.prompt).groups() for c in srv.calls)
    assert srv.count == 6  # 3 pairs x 2 orders
    assert set(shown) == {(a, b) for a in ("x", "xx", "xxx") for b in ("x", "xx", "xxx") if a != b}
    assert res.rewards == [0.0, 0.5, 1.0]  # x loses twice; xx wins one of two; xxx wins both


def test_a_position_biased_judge_by_hand(judge_env):
    # pair (short, long): short first -> tie (0.5 for short); long first -> long wins (0 for short): short 0.25
    with FakeServer(reply=first_if_longer) as srv, build_reward_fn(["group:pairwise"], base_urls=[srv.openai_url],
                                                                   **judge_env) as fn:
        res = fn(groups(3))
    assert res.rewards == [0.25, pytest.approx((0.75 + 0.25) / 2), 0.75]


def test_pairs_subset_two_groups_and_a_lone_sample(judge_env):
    with FakeServer(reply=longer_wins) as srv, build_reward_fn(["group:pairwise,pairs=1"],
                                                               base_urls=[srv.openai_url], **judge_env) as fn:
        res = fn(groups(4, 4, 1))
    # k=4, one opponent each: (0, 2) and (1, 3) in each group, both orders
    assert srv.count == 2 * 2 * 2
    assert res.rewards[:8] == [0.0, 0.0, 1.0, 1.0] * 2
    assert res.rewards[8] is None and "only sample of its prompt" in res.errors[8]
    assert fn.stats()["group:pairwise,pairs=1"].calls == 8


def test_round_robin_subset_is_regular():
    for k in range(2, 10):
        assert group_pairs(k) == [(i, j) for i in range(k) for j in range(i + 1, k)]
        for m in range(1, k - 1):
            degree = Counter(x for p in group_pairs(k, m) for x in p)
            want = m if m * k % 2 == 0 else m + 1
            assert all(degree[i] == want for i in range(k)), (k, m, degree)
        assert group_pairs(k, k - 1) == group_pairs(k)
    assert calls_per_group(4) == 12 and calls_per_group(4, 1) == 4 and calls_per_group(5, 2) == 10
    line = describe_cost("group:pairwise", 4, None, 8, 10)
    assert "12 judge calls per prompt, 96 per step, 960 for 10 steps" in line


@pytest.mark.parametrize("spec, says", [
    ("group:pairwise,pairs=0", "pairs=M"), ("group:pairwise,pairs=two", "pairs=M"),
    ("group:pairwise,every=2", "pairs=M"), ("group:,pairs=2", "needs a pairwise judge")])
def test_bad_group_specs_name_the_spec(spec, says):
    with pytest.raises(ConfigError, match=re.escape(says) + ".*Fix:"):
        parse_reward_spec(spec)


def test_a_pointwise_judge_is_refused():
    assert parse_reward_spec("group:rubric,pairs=2").arg == "rubric,pairs=2"
    with pytest.raises(ConfigError, match="group:rubric.*not pairwise.*Fix:"):
        build_reward_fn(["group:rubric"])


def test_grpo_prints_the_cost_then_trains_on_the_group_reward(tiny_model_dir, tmp_path, monkeypatch):
    from tests.support.cli_helpers import rlaif_inproc
    from tests.support.rl_helpers import write_prompts

    monkeypatch.setenv("JUDGE_KEY", KEY)
    prompts = write_prompts(tmp_path / "prompts.jsonl", n=4)
    with FakeServer(reply=longer_wins) as srv:
        r = rlaif_inproc("train", "grpo", "batch_size=2", "k=3", "max_new_tokens=8", "max_steps=2", "threads=1",
                         "--prompts", prompts, "--model", tiny_model_dir, "--reward", "group:pairwise",
                         "--judge-model", "openai:judge", "--base-url", srv.openai_url, "--api-key-env", "JUDGE_KEY",
                         "-o", tmp_path / "run")
        calls = srv.count
    assert r.code == 0, r.stderr
    # 3 pairs x 2 orders per prompt, 2 prompts a step, 2 steps; identical requests are asked once (cache)
    assert "group:pairwise: k=3 samples per prompt, 3 pairs (all pairs) in both orders = 6 judge calls per " \
           "prompt, 12 per step, 24 for 2 steps" in r.stderr
    assert 0 < calls <= 24
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert any("reward" in row for row in rows)
    r = rlaif_inproc("train", "ppo", "--prompts", prompts, "--model", tiny_model_dir, "--reward", "group:pairwise",
                     "-o", tmp_path / "ppo")
    assert r.code == 2 and "--reward group:pairwise" in r.stderr and "k=1" in r.stderr and "Fix:" in r.stderr
