"""GRPO recipe (Shao et al. 2024, with TRL 1.16's loss variants), read top to bottom.

    rlaif train grpo --prompts prompts.jsonl --model local --reward rule -o runs/grpo [k=4 beta=0.04 ...]

The prelude (`rl/prelude.py`) loads the prompts, the policy and the frozen reference; then each step
(`OnlineSteps.step` in `rl/stages.py`) runs six stages, 4 and the loss of 5 being this recipe's:

1. sample k responses per prompt from the current policy;
2. score them with the reward callable;
3. reference log-probs (and the old ones, unless the update is on-policy);
4. targets: each response's reward minus its group's mean, divided by the group's std (`scale_rewards=group`),
   the batch's (`batch`) or not at all (`none`, Dr. GRPO);
5. `ppo_epochs` passes of `minibatches` optimizer steps on the loss: the clipped per-token surrogate plus
   β·k3 KL to the reference inside the loss, aggregated as `loss_type` says (grpo: per-sequence token means;
   dr_grpo: over batch · max_new_tokens; dapo: over the minibatch's tokens; bnpo: each micro-batch's tokens);
6. the step's metrics. The engine (`engine.py`) writes them and checkpoints; the model is saved at the end.
"""
from __future__ import annotations

from typing import Any

from rlaif.scoring import RewardFn
from rlaif.train.checkpoint import TrainResult
from rlaif.train.config import GRPOConfig
from rlaif.train.prelude import returns_finished_run
from rlaif.train.rl.losses import grpo_advantages, grpo_loss
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


class GRPO(OnlineSteps):
    def targets(self, samples: Samples, scores: Scores, logps: LogProbs) -> Targets:
        # group-relative advantages over the whole batch (the batch std spans every process)
        rt, keep = self.rt, scores.keep
        full = grpo_advantages(gather_rows(rt, scores.scores.masked_fill(keep == 0, float("nan"))), self.cfg.k,
                               self.cfg.scale_rewards)
        n = samples.rollout.rows
        return Targets(full[rt.rank * n:(rt.rank + 1) * n] * keep)

    def loss(self, out: PolicyOut, micro: Micro) -> MicroLoss:
        # the clipped surrogate with the k3 KL in the loss, normalized over the minibatch's global counts
        cfg, b, rows = self.cfg, micro.batch, micro.rows
        mask = b.mask[rows].to(out.logps)
        res = grpo_loss(out.logps, micro.old, b.logps.ref[rows].to(out.logps), b.targets.advantages[rows].to(out.logps),
                        mask, beta=cfg.beta, epsilon_low=cfg.epsilon, epsilon_high=cfg.epsilon_high,
                        loss_type=cfg.loss_type, max_completion_length=cfg.max_new_tokens,
                        num_sequences=micro.counts.seqs, num_tokens=micro.counts.tokens)
        loss = res.loss / micro.n_micro if cfg.loss_type == "bnpo" else res.loss  # bnpo: a per-micro-batch mean
        tokens = mask.sum()
        return MicroLoss(loss, {"clip_frac": (res.clip_frac * tokens, tokens),
                                "clip_low": (res.clip_low * tokens, tokens),
                                "clip_high": (res.clip_high * tokens, tokens)})


@returns_finished_run
def train_grpo(config: GRPOConfig | dict | None = None, reward_fn: RewardFn | None = None,
               gold_fn: RewardFn | None = None, **overrides: Any) -> TrainResult:
    # the prelude: prompts, policy, reference
    with start_online("grpo", config, overrides, reward_fn, gold_fn=gold_fn) as run:
        # the engine runs GRPO's steps; the final model
        return train_online(run, GRPO(run))


__all__ = ["train_grpo", "GRPOConfig"]
