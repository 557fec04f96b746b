"""GRPO recipe (Shao et al. 2024, with TRL 1.16's loss variants), read top to bottom.

    rlaif train grpo --prompts prompts.jsonl --model local --reward rule -o runs/grpo [k=4 beta=0.04 ...]

1. prompts, policy and the frozen reference (the online prelude, `rl/online.py`);
2. each step: k responses per prompt from the current policy, scored by the reward callable;
3. advantages: each response's reward minus its group's mean, divided by the group's std
   (`scale_rewards=group`), the batch's (`batch`) or not at all (`none`, Dr. GRPO);
4. loss: the clipped per-token surrogate plus β·k3 KL to the reference inside the loss, aggregated as
   `loss_type` says (grpo: per-sequence token means; dr_grpo: over batch · max_new_tokens; dapo: over the
   minibatch's tokens; bnpo: each micro-batch's tokens);
5. the shared online loop (`rl/loop.py`) runs the steps, writes metrics, checkpoints, saves the model.
"""
from __future__ import annotations

from typing import Any

from rlaif.scoring import RewardFn
from rlaif.train.checkpoint import TrainResult
from rlaif.train.config import GRPOConfig
from rlaif.train.rl.loop import Algorithm, Counts, Experience, MicroLoss, gather_rows, train_online
from rlaif.train.rl.losses import grpo_advantages, grpo_loss
from rlaif.train.rl.online import start_online
from rlaif.train.rl.policy import PolicyOut
from rlaif.train.runtime import Runtime


class GRPO(Algorithm):
    def targets(self, exp: Experience, rt: Runtime) -> dict:
        # 3. group-relative advantages over the whole batch (the batch std spans every process)
        scores = exp.scores.masked_fill(exp.keep == 0, float("nan"))
        full = grpo_advantages(gather_rows(rt, scores), self.cfg.k, self.cfg.scale_rewards)
        n = exp.rollout.rows
        exp.advantages = full[rt.rank * n:(rt.rank + 1) * n] * exp.keep
        return {}

    def micro_loss(self, out: PolicyOut, old, exp: Experience, rows: list[int], counts: Counts,
                   n_micro: int) -> MicroLoss:
        # 4. the clipped surrogate with the k3 KL in the loss, normalized over the minibatch's global counts
        cfg, mask = self.cfg, exp.mask[rows].to(out.logps)
        res = grpo_loss(out.logps, old, exp.ref_logps[rows].to(out.logps), exp.advantages[rows].to(out.logps),
                        mask, beta=cfg.beta, epsilon_low=cfg.epsilon, epsilon_high=cfg.epsilon_high,
                        loss_type=cfg.loss_type, max_completion_length=cfg.max_new_tokens,
                        num_sequences=counts.seqs, num_tokens=counts.tokens)
        loss = res.loss / n_micro if cfg.loss_type == "bnpo" else res.loss  # bnpo: a per-micro-batch token mean
        tokens = mask.sum()
        return MicroLoss(loss, {"clip_frac": (res.clip_frac * tokens, tokens),
                                "clip_low": (res.clip_low * tokens, tokens),
                                "clip_high": (res.clip_high * tokens, tokens)})


def train_grpo(config: GRPOConfig | dict | None = None, reward_fn: RewardFn | None = None,
               **overrides: Any) -> TrainResult:
    # 1. prompts, policy, reference
    run = start_online("grpo", config, overrides, reward_fn)
    try:
        # 2.-5. the online loop with GRPO's advantages and loss
        return train_online(run, GRPO(run.cfg))
    finally:
        run.close()


__all__ = ["train_grpo", "GRPOConfig"]
