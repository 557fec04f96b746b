"""Rewards for the online trainers: `--reward` specs -> one `RewardFn` (the contract in `rlaif.scoring`).

    fn = build_reward_fn(["rule", "judge:rubric@0.5"], judge_model="openai:gpt-4o-mini")
    result = fn(RewardBatch(prompts, responses, metadata))   # result.rewards, .by_source, .errors

This package sits above `rlaif.judge` and imports no `rlaif.train` (the trained reward model comes through
`rlaif.scoring`'s lazy factory): the trainers take the callable and never import judges, backends or the
call layer. Each source is built by its kind's factory in the registry `rlaif.scoring.KINDS`. Modules:
`spec` (the syntax, `parse_reward_spec`), `local` (rule checker, reward model, Python function), `judged`
(catalog judges, pointwise and pairwise), `remote` (OpenRLHF `/get_reward` over HTTP), `combine`
(`build_reward_fn`, the weighted sum).
"""
from rlaif.rewards.combine import RewardFunction, build_reward_fn
from rlaif.rewards.spec import KINDS, SPEC_HELP, RewardSource, parse_reward_spec, parse_reward_specs

__all__ = ["KINDS", "SPEC_HELP", "RewardFunction", "RewardSource", "build_reward_fn",
           "parse_reward_spec", "parse_reward_specs"]
