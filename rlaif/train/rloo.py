"""RLOO recipe (REINFORCE leave-one-out, Ahmadian et al. 2024, as TRL 1.16's RLOOTrainer), read top to bottom.

    rlaif train rloo --prompts prompts.jsonl --model local --reward rule -o runs/rloo [k=4 beta=0.05 ...]

The prelude (`rl/prelude.py`) loads the prompts, the policy and the frozen reference; then each step
(`OnlineSteps.step` in `rl/stages.py`) runs six stages, 4 and the loss of 5 being this recipe's:

1. sample k responses per prompt from the current policy;
2. score them with the reward callable;
3. reference log-probs, and the old ones when β > 0 (the KL in the reward is measured on the sampling policy);
4. targets: the KL-regularized sequence reward score − β·Σ_t (log π_old − log π_ref) (`rloo_rewards`), and the
   leave-one-out advantage: each response's reward minus the mean of the other scored members of its group
   (`rloo_advantages`; `normalize_advantages` whitens them over the batch);
5. `ppo_epochs` passes of `minibatches` optimizer steps on the loss: the sequence-level clipped ratio times
   the advantage (`rloo_loss`), the mean over the minibatch;
6. the step's metrics. The engine (`engine.py`) writes them and checkpoints; the model is saved at the end.
"""
from __future__ import annotations

from typing import Any

from rlaif.scoring import RewardFn
from rlaif.train.checkpoint import TrainResult
from rlaif.train.config import RLOOConfig
from rlaif.train.prelude import returns_finished_run
from rlaif.train.rl.losses import rloo_advantages, rloo_loss, rloo_rewards, zero_std_groups
from rlaif.train.rl.policy import PolicyOut
from rlaif.train.rl.prelude import start_online
from rlaif.train.rl.stages import (
    LogProbs,
    Micro,
    MicroLoss,
    OnlineSteps,
    Samples,
    Scores,
    Targets,
    gather_rows,
    train_online,
)


class RLOO(OnlineSteps):
    @property
    def needs_old_logps(self) -> bool:  # the KL in the reward is measured on the sampling policy
        return self.cfg.beta > 0

    def targets(self, samples: Samples, scores: Scores, logps: LogProbs) -> Targets:
        # KL-regularized rewards, then leave-one-out advantages (whitening spans every process)
        rt, keep = self.rt, scores.keep
        masked = scores.scores.masked_fill(keep == 0, float("nan"))
        old = logps.old if logps.old is not None else logps.ref  # β = 0: the KL term is unused
        rewards = rloo_rewards(masked, old, logps.ref, samples.rollout.response_mask.float(), self.cfg.beta)
        full = rloo_advantages(gather_rows(rt, rewards), self.cfg.k, self.cfg.normalize_advantages)
        n = samples.rollout.rows
        kept = keep.sum()
        flat = zero_std_groups(scores.scores, self.cfg.k)  # groups whose scores are all equal (TRL's count)
        return Targets(full[rt.rank * n:(rt.rank + 1) * n] * keep,  # score − β·KL: the optimized reward
                       stats={"reward_kl": (rewards.nan_to_num(0.0).mul(keep).sum(), kept),
                              "frac_reward_zero_std": (flat.sum(), flat.numel())})

    def loss(self, out: PolicyOut, micro: Micro) -> MicroLoss:
        # the sequence-level clipped ratio, the mean over the minibatch's kept responses
        cfg, b, rows = self.cfg, micro.batch, micro.rows
        mask, advantages = b.mask[rows].to(out.logps), b.targets.advantages[rows]
        res = rloo_loss(out.logps, micro.old, advantages.to(out.logps), mask, epsilon_low=cfg.epsilon,
                        epsilon_high=cfg.epsilon_high, num_sequences=micro.counts.seqs)
        kept = b.keep[rows].sum()
        return MicroLoss(res.loss, {"clip_frac": (res.clip_frac * len(rows), len(rows)),
                                    "advantage_abs": ((advantages.abs()).sum(), kept)})


@returns_finished_run
def train_rloo(config: RLOOConfig | dict | None = None, reward_fn: RewardFn | None = None,
               gold_fn: RewardFn | None = None, **overrides: Any) -> TrainResult:
    # the prelude: prompts, policy, reference
    with start_online("rloo", config, overrides, reward_fn, gold_fn=gold_fn) as run:
        # the engine runs RLOO's steps; the final model
        return train_online(run, RLOO(run))


__all__ = ["train_rloo", "RLOOConfig"]
