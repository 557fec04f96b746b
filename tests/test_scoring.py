"""rlaif/scoring.py: the reward contract (weighted sums, None propagation, errors kept, contract checks) and
the registry of scorer kinds (each built lazily; unknown kinds named; the old rule id kept)."""
from __future__ import annotations

import math
from pathlib import Path

import pytest

from rlaif.scoring import RewardBatch, RewardError, RewardResult, check_skipped, combine, combine_fns


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


# ---- the registry of scorer kinds ----------------------------------------------------------------------

def test_every_kind_resolves_lazily_to_its_factory():
    import subprocess
    import sys

    from rlaif import scoring

    assert set(scoring.KINDS) == {"llm", "rule", "reward_model", "http", "python"}
    # importing the registry loads none of the factories (nor torch): they are imported when first built
    code = ("import sys, rlaif.scoring; print(sorted(m for m in sys.modules if m.startswith(('rlaif.rewards', "
            "'rlaif.train', 'rlaif.judge', 'torch'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    for kind in scoring.KINDS.values():
        factory = scoring.scorer_factory(kind.name)
        assert callable(factory) and f"{factory.__module__}:{factory.__name__}" == kind.factory
    specs = {s: scoring.kind_of_spec(s).name for k in scoring.KINDS.values() for s in k.specs}
    assert specs == {"judge": "llm", "pairwise": "llm", "group": "llm", "rule": "rule", "rm": "reward_model",
                     "http": "http", "python": "python"}
    from rlaif.rewards import KINDS as SPEC_KINDS

    assert set(SPEC_KINDS) == set(specs)  # every --reward kind is built by the registry


def test_unknown_kind_names_the_valid_ones():
    from rlaif.errors import ConfigError
    from rlaif.scoring import kind_of_spec, scorer_factory

    with pytest.raises(ConfigError, match="llm, rule, reward_model, http, python"):
        scorer_factory("bogus")
    with pytest.raises(ConfigError, match="unknown scorer kind 'nope'.*judge, pairwise"):
        kind_of_spec("nope")


def test_rule_checkers_by_name_and_by_their_old_path():
    from rlaif.errors import ConfigError
    from rlaif.instructions.constraints import check
    from rlaif.scoring import RULE_RATER, rule_checker, rule_model

    assert rule_checker("constraints") is check and rule_checker("rlaif.constraints:check") is check
    assert rule_model("constraints") == rule_model("rlaif.constraints:check") == "rlaif.constraints:check"
    assert rule_model("judge_helpers:word_count_checker") == "judge_helpers:word_count_checker"  # a user's own
    assert RULE_RATER == "rule@v1:" + rule_model("constraints")
    with pytest.raises(ConfigError, match="unknown rule checker 'nope'.*constraints"):
        rule_checker("nope")


def test_legacy_rule_id_resolves_and_labels_the_same(tmp_path):
    """A judge YAML with the old `checker: rlaif.constraints:check` and the shipped `checker: constraints`
    have the same rater id and give the same labels."""
    from rlaif.judge import label_responses, load_judge
    from rlaif.records import Response

    old = tmp_path / "rule.yaml"
    old.write_text("name: rule\nkind: rule\nmode: pointwise\nversion: v1\nchecker: rlaif.constraints:check\n")
    cons = [{"family": "casing", "type": "lowercase"}]
    rs = [Response(prompt_id="p", prompt="q", policy=p, response=t, constraints=cons)
          for p, t in (("x", "all lower"), ("y", "Not Lower"))]
    runs = [label_responses(rs, [load_judge(j)]) for j in (str(old), "rule")]
    assert [j.rater for r in runs for j in r.judges] == ["rule@v1:rlaif.constraints:check"] * 2
    assert [lab.model_dump() for lab in runs[0].labels] == [lab.model_dump() for lab in runs[1].labels]
    assert runs[0].labels[0].winner == "a"


def test_reward_model_judge_reaches_training_code_only_through_the_registry():
    from rlaif.judge import load_judge
    from rlaif.scoring import TRAINED_REWARD_MODEL, reward_model_class

    j = load_judge("reward-model", model="ckpt")
    assert j.spec.scorer is None and j.rater == "reward-model@v1:ckpt"
    cls = reward_model_class(j.spec.scorer)
    assert f"{cls.__module__}:{cls.__name__}" == TRAINED_REWARD_MODEL
    assert reward_model_class("rlaif.train.reward:RewardScorer") is cls  # the old spelling in a judge YAML


def test_old_checker_path_resolves_to_the_same_function():
    # Rater ids in stored labels name `rlaif.constraints:check`: the old spelling resolves through the
    # registry (rlaif.scoring.RULES) to the same checker, and judges/rule.yaml's `constraints` keeps that id.
    import yaml

    import rlaif.instructions.constraints as C
    from rlaif.scoring import rule_checker, rule_model

    assert rule_checker("rlaif.constraints:check") is C.check
    assert rule_checker("rlaif.instructions.constraints:check") is C.check
    checker = yaml.safe_load((Path(__file__).resolve().parents[1] / "judges" / "rule.yaml").read_text())["checker"]
    assert checker == "constraints" and rule_checker(checker) is C.check
    assert rule_model(checker) == rule_model("rlaif.constraints:check") == "rlaif.constraints:check"


def test_users_functions_keep_their_shape_and_sys_exit_becomes_a_user_code_error(tmp_path, monkeypatch):
    """`_guarded` (rlaif.scoring): sync and async functions stay what they are (TRL runs `async def` rewards
    concurrently), results and other exceptions pass through, sys.exit is named with its line."""
    import asyncio
    import inspect

    from rlaif.errors import UserCodeError
    from rlaif.scoring import import_object

    (tmp_path / "user_rewards_mod.py").write_text(
        "import sys\n\n\ndef plain(x, *, k=1):\n    if x < 0:\n        sys.exit(3)\n    if x == 0:\n"
        "        raise ValueError('zero')\n    return x * k\n\n\nasync def later(x):\n    if x < 0:\n"
        "        sys.exit()\n    return x + 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    plain = import_object("user_rewards_mod:plain", "function", named_in="--reward 'python:user_rewards_mod:plain'")
    later = import_object("user_rewards_mod:later", "function")
    assert plain(2, k=3) == 6 and plain.__name__ == "plain" and not inspect.iscoroutinefunction(plain)
    with pytest.raises(ValueError, match="zero"):
        plain(0)
    with pytest.raises(UserCodeError) as e:
        plain(-1)
    assert str(e.value).startswith("--reward 'python:user_rewards_mod:plain': user_rewards_mod:plain called "
                                   f"sys.exit(3) at {tmp_path / 'user_rewards_mod.py'}:6")
    assert inspect.iscoroutinefunction(later) and asyncio.run(later(1)) == 2
    with pytest.raises(UserCodeError, match=r"called sys.exit\(None\) at .*user_rewards_mod.py:14"):
        asyncio.run(later(-1))
