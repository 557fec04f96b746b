"""Online RL: the policy samples, a reward callable scores, the policy is updated on a KL leash.

`losses.py` holds the pure tensor functions (KL estimators, GAE, PPO's clipped surrogate and value loss,
KL controllers, RLOO and GRPO advantages and losses, matching TRL 1.16 where TRL has the method);
`rollout.py` samples k responses per prompt with a KV cache and keeps the sampled ids, and computes
per-token log-probs on exactly those ids; `reward.py` is the reward contract (`RewardBatch` ->
`RewardResult`) and `combine` for weighted sources; `prelude.py` sets a run up (prompts, policy, reference);
`stages.py` holds the stages a recipe's step is written as (sample → score → log-probs → targets → update →
metrics) and runs them on the engine. Like the rest of `rlaif.train`, nothing here imports
judges, backends, call handling or API SDKs: rewards arrive as callables.
"""
