"""RLOO recipe (REINFORCE leave-one-out, Ahmadian et al. 2024, as TRL 1.16's RLOOTrainer), read top to bottom.

    rlaif train rloo --prompts prompts.jsonl --model local --reward rule -o runs/rloo [k=4 beta=0.05 ...]

1. prompts, policy and the frozen reference (the online prelude, `rl/online.py`);
2. each step: k responses per prompt from the current policy, scored by the reward callable;
3. the KL-regularized sequence reward score − β·Σ_t (log π_old − log π_ref) (`rloo_rewards`), and the
   leave-one-out advantage: each response's reward minus the mean of the other scored members of its group
   (`rloo_advantages`; `normalize_advantages` whitens them over the batch);
4. loss: the sequence-level clipped ratio times the advantage (`rloo_loss`), the mean over the minibatch;
5. the shared online loop (`rl/loop.py`) runs the steps, writes metrics, checkpoints, saves the model.
"""
from __future__ import annotations

from typing import Any

from rlaif.scoring import RewardFn
from rlaif.train.checkpoint import TrainResult
from rlaif.train.config import RLOOConfig
from rlaif.train.rl.loop import Algorithm, Counts, Experience, MicroLoss, gather_rows, train_online
from rlaif.train.rl.losses import rloo_advantages, rloo_loss, rloo_rewards
from rlaif.train.rl.online import start_online
from rlaif.train.rl.policy import PolicyOut
from rlaif.train.runtime import Runtime


class RLOO(Algorithm):
    @property
    def needs_old_logps(self) -> bool:  # the KL in the reward is measured on the sampling policy
        return self.cfg.beta > 0

    def targets(self, exp: Experience, rt: Runtime) -> dict:
        # 3. KL-regularized rewards, then leave-one-out advantages (whitening spans every process)
        scores = exp.scores.masked_fill(exp.keep == 0, float("nan"))
        old = exp.old_logps if exp.old_logps is not None else exp.ref_logps  # β = 0: the KL term is unused
        rewards = rloo_rewards(scores, old, exp.ref_logps, exp.rollout.response_mask.float(), self.cfg.beta)
        full = rloo_advantages(gather_rows(rt, rewards), self.cfg.k, self.cfg.normalize_advantages)
        n = exp.rollout.rows
        exp.advantages = full[rt.rank * n:(rt.rank + 1) * n] * exp.keep
        kept = exp.keep.sum()
        return {"reward_kl": (rewards.nan_to_num(0.0).mul(exp.keep).sum(), kept)}  # score − β·KL, the optimized one

    def micro_loss(self, out: PolicyOut, old, exp: Experience, rows: list[int], counts: Counts,
                   n_micro: int) -> MicroLoss:
        # 4. the sequence-level clipped ratio, the mean over the minibatch's kept responses
        cfg, mask = self.cfg, exp.mask[rows].to(out.logps)
        res = rloo_loss(out.logps, old, exp.advantages[rows].to(out.logps), mask, epsilon_low=cfg.epsilon,
                        epsilon_high=cfg.epsilon_high, num_sequences=counts.seqs)
        kept = exp.keep[rows].sum()
        return MicroLoss(res.loss, {"clip_frac": (res.clip_frac * len(rows), len(rows)),
                                    "advantage_abs": ((exp.advantages[rows].abs()).sum(), kept)})


def train_rloo(config: RLOOConfig | dict | None = None, reward_fn: RewardFn | None = None,
               **overrides: Any) -> TrainResult:
    # 1. prompts, policy, reference
    run = start_online("rloo", config, overrides, reward_fn)
    try:
        # 2.-5. the online loop with RLOO's rewards, advantages and loss
        return train_online(run, RLOO(run.cfg))
    finally:
        run.close()


__all__ = ["train_rloo", "RLOOConfig"]
