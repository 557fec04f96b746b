"""GRPO recipe (Shao et al. 2024, with TRL 1.16's loss variants), read top to bottom.

    rlaif train grpo --prompts prompts.jsonl --model local --reward rule -o runs/grpo [k=4 beta=0.04 ...]

The prelude (`rl/prelude.py`) loads the prompts, the policy and the frozen reference; then each step
(`OnlineSteps.step` in `rl/stages.py`) runs six stages, 4 and the loss of 5 being this recipe's:

1. sample k responses per prompt from the current policy;
2. score them with the reward callable.
3. reference log-probs (and the old ones, unless the update is on-policy);
   Groups whose k rewards are all equal teach nothing (every advantage 0): counted per step as
   `frac_reward_zero_std` (TRL's name), and left out of the loss with `filter_zero_std_groups` (DAPO's filter);
4. targets: each response's reward minus its group's mean, divided by the group's std (`scale_rewards=group`),
   the batch's (`batch`) or not at all (`none`, Dr. GRPO);
5. `ppo_epochs` passes of `minibatches` optimizer steps on the loss: the policy term of `loss_type` (the clipped
   surrogate; cispo's capped-ratio REINFORCE; sapo's soft gate) with the ratio per token or, with
   `importance_sampling_level=sequence` (GSPO), per response, plus β·k3 KL to the reference inside the loss,
   aggregated as `loss_type` says (grpo, sapo: per-sequence token means; dr_grpo: over batch · max_new_tokens;
   dapo, cispo: over the minibatch's tokens; bnpo: each micro-batch's tokens);
6. the step's metrics. The engine (`engine.py`) writes them and checkpoints; the model is saved at the end.
"""
from __future__ import annotations

import sys
from dataclasses import replace
from typing import Any

from rlaif.scoring import RewardFn
from rlaif.train.checkpoint import TrainResult
from rlaif.train.config import GRPOConfig
from rlaif.train.engine import Engine
from rlaif.train.prelude import returns_finished_run
from rlaif.train.rl.losses import grpo_advantages, grpo_loss, zero_std_groups
from rlaif.train.rl.policy import PolicyOut
from rlaif.train.rl.prelude import OnlineRun, start_online
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


def config_notes(cfg: GRPOConfig) -> list[str]:
    """What TRL 1.16 warns about in these settings (they run, but likely not as meant)."""
    notes = []
    if cfg.importance_sampling_level == "sequence" and cfg.loss_type in ("bnpo", "dr_grpo", "dapo", "cispo"):
        notes.append(f"importance_sampling_level=sequence with loss_type={cfg.loss_type} sums per-token terms, which "
                     "weights each response by its length; the GSPO paper's setup is loss_type=grpo")
    cap = cfg.epsilon if cfg.epsilon_high is None else cfg.epsilon_high  # TRL: epsilon_high defaults to epsilon
    if cfg.loss_type == "cispo" and cap < 1:
        notes.append(f"loss_type=cispo caps the ratio at epsilon_high (here {cap}), so every token's weight is at "
                     f"most {cap}, a smaller step than lr says; the ScaleRL paper uses epsilon_high=5.0")
    return notes


class GRPO(OnlineSteps):
    def __init__(self, run: OnlineRun):
        super().__init__(run)
        self.warned_flat = False
        if self.rt.is_main:
            for note in config_notes(self.cfg):
                print(f"note: {note}", file=sys.stderr)

    def score(self, engine: Engine, samples: Samples) -> Scores:
        # groups whose rewards are all equal: counted (a group never spans processes) and, with the filter, dropped
        scores, k = super().score(engine, samples), self.cfg.k
        flat = zero_std_groups(scores.scores, k)
        scores.sums.add("frac_reward_zero_std", flat.sum(), flat.numel())
        if self.cfg.filter_zero_std_groups:
            scores = replace(scores, keep=scores.keep * (~flat).repeat_interleave(k).to(scores.keep))
        return scores

    def after_step(self, engine: Engine, timed_out: bool) -> dict | None:
        # said once per run: a step where no group's rewards differ trained on nothing but the KL term
        if engine.last_row.get("frac_reward_zero_std") == 1.0 and not self.warned_flat and self.rt.is_main:
            self.warned_flat = True
            print(f"warning: at step {engine.step} every group's {self.cfg.k} rewards were equal, so every advantage "
                  "was 0 and the step learned nothing from the reward (frac_reward_zero_std=1 in metrics.jsonl). "
                  "Fix: a graded reward, prompts the policy sometimes passes, or more varied sampling "
                  "(temperature, k)", file=sys.stderr)
        return super().after_step(engine, timed_out)

    def info(self, row: dict) -> str:
        flat = row.get("frac_reward_zero_std")
        return super().info(row) + ("" if flat is None else f" zero-std {flat:.2f}")

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
                        loss_type=cfg.loss_type, importance_sampling_level=cfg.importance_sampling_level,
                        sapo_temperature_pos=cfg.sapo_temperature_pos, sapo_temperature_neg=cfg.sapo_temperature_neg,
                        max_completion_length=cfg.max_new_tokens,
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
