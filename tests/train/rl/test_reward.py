"""The reward contract (rlaif/train/rl/reward.py): weighted sums, None propagation, errors kept, contract checks."""
from __future__ import annotations

import math

import pytest

from rlaif.train.rl.reward import RewardBatch, RewardError, RewardResult, check_skipped, combine, combine_fns


def _batch(n: int = 3) -> RewardBatch:
    return RewardBatch([[{"role": "user", "content": f"q{i}"}] for i in range(n)], [f"a{i}" for i in range(n)],
                       [{"prompt_id": f"p{i}"} for i in range(n)])


def test_weighted_sum_and_by_source():
    out = combine({"rule": RewardResult([1.0, 0.0, 1.0]), "rm": [0.5, -1.0, 2.0]}, {"rule": 2.0})
    assert out.rewards == [2.5, -1.0, 4.0]
    assert out.by_source == {"rule": [1.0, 0.0, 1.0], "rm": [0.5, -1.0, 2.0]}
    assert out.errors == [None, None, None] and out.skipped == 0


def test_none_propagates_and_errors_are_kept():
    judge = RewardResult([0.7, None, None], errors=[None, "unparseable verdict", None])
    rule = RewardResult([1.0, 1.0, None], errors=[None, None, "no constraints on this prompt"])
    out = combine({"judge": judge, "rule": rule})
    assert out.rewards == [pytest.approx(1.7), None, None]
    assert out.errors[0] is None
    assert out.errors[1] == "judge: unparseable verdict"
    assert out.errors[2] == "judge: no reward and no reason given; rule: no constraints on this prompt"
    assert out.skipped == 2 and out.skipped_share == pytest.approx(2 / 3)
    assert out.by_source["judge"] == [0.7, None, None]


def test_a_zero_weight_source_is_logged_not_optimized():
    out = combine({"rule": [1.0, 0.0], "judge": [None, 0.3]}, {"judge": 0.0})
    assert out.rewards == [1.0, 0.0] and out.by_source["judge"] == [None, 0.3]


def test_non_finite_rewards_become_errors_never_zero():
    out = combine({"rm": [math.nan, math.inf, 1.0, True]})
    assert out.rewards == [None, None, 1.0, None]
    assert out.errors[0] == "rm: not a finite number: nan" and "True" in out.errors[3]


def test_contract_violations():
    with pytest.raises(RewardError, match="returned 2 rewards for 3 items"):
        combine({"a": [1.0, 2.0, 3.0], "b": [1.0, 2.0]})
    with pytest.raises(RewardError, match="unknown reward sources"):
        combine({"a": [1.0]}, {"b": 1.0})
    with pytest.raises(RewardError, match="no reward sources"):
        combine({})
    with pytest.raises(ValueError, match="errors"):
        RewardResult([1.0, 2.0], errors=[None])
    with pytest.raises(ValueError, match="one prompt, response and metadata"):
        RewardBatch([[]], ["a", "b"], [{}])


def test_combine_fns_and_the_skip_limit():
    def length(batch: RewardBatch) -> RewardResult:
        return RewardResult([float(len(r)) for r in batch.responses])

    def flaky(batch: RewardBatch) -> RewardResult:
        return RewardResult([None if i else 1.0 for i in range(len(batch))], errors=[None, "timeout", "timeout"])

    fn = combine_fns({"length": length, "flaky": flaky}, {"flaky": 0.5})
    out = fn(_batch())
    assert out.rewards == [2.5, None, None] and out.errors[1] == "flaky: timeout"
    check_skipped(out, max_skipped_share=0.7)
    with pytest.raises(RewardError, match="2 of 3 responses could not be scored.*flaky: timeout"):
        check_skipped(out, max_skipped_share=0.5)
