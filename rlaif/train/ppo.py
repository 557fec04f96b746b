"""PPO recipe (Schulman et al. 2017; the RLHF form of Ziegler et al. 2019 and InstructGPT), read top to bottom.

    rlaif train ppo --prompts prompts.jsonl --model local --reward rm:runs/rm -o runs/ppo [beta=0.05 ...]

The prelude (`rl/prelude.py`) loads the prompts, the policy with a value head (a scalar linear head on the
policy's last hidden state: a shared trunk, so one forward gives log-probs and values) and the frozen
reference; then each step (`OnlineSteps.step` in `rl/stages.py`) runs six stages, 4 and the loss of 5 being
this recipe's:

1. sample k responses per prompt (default 1) from the current policy;
2. score them with the reward callable;
3. reference log-probs, and the old log-probs and values of the rollout policy;
4. targets: a response that never reached EOS loses `missing_eos_penalty`; scores optionally normalized by a
   running mean/std and clipped; per-token rewards −β·KL(π_old‖π_ref) at every token (estimator k1 by
   default, k3 selectable) plus the score at the final token, β fixed or adaptive toward `kl_target`
   (Ziegler et al.'s controller); GAE(γ, λ) on the old values → advantages (whitened over the batch) and
   returns;
5. `ppo_epochs` passes of `minibatches` optimizer steps on the loss per token: the clipped surrogate (ε) +
   vf_coef · the clipped value loss − entropy_coef · entropy, the mean over the minibatch's tokens;
6. the step's metrics, and the KL controller's update. The engine (`engine.py`) writes them and checkpoints
   (with the KL controller and the running reward statistics); the model and OUT/value_head.pt are saved at
   the end.
"""
from __future__ import annotations

import math
from typing import Any

import torch

from rlaif.scoring import RewardFn
from rlaif.train.checkpoint import TrainResult
from rlaif.train.config import PPOConfig
from rlaif.train.prelude import returns_finished_run
from rlaif.train.rl.losses import (
    AdaptiveKLController,
    FixedKLController,
    explained_variance,
    gae,
    kl_estimate,
    masked_sum,
    ppo_policy_loss,
    ppo_value_loss,
    token_rewards,
)
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
    global_whiten,
    train_online,
)
from rlaif.train.runtime import Runtime


class RunningMoments:
    """Running mean and variance of the scores over all steps so far (Chan et al.'s parallel merge)."""

    def __init__(self):
        self.mean, self.var, self.count = 0.0, 1.0, 0.0

    def update(self, rt: Runtime, x: torch.Tensor) -> None:
        sums = rt.all_reduce(torch.tensor([x.sum(), (x * x).sum(), float(x.numel())], dtype=torch.float64,
                                          device=rt.device)).cpu().tolist()
        s, s2, n = sums
        if n == 0:
            return
        mean, var = s / n, max(s2 / n - (s / n) ** 2, 0.0)
        total = self.count + n
        delta = mean - self.mean
        self.var = (self.var * self.count + var * n + delta * delta * self.count * n / total) / total
        self.mean += delta * n / total
        self.count = total

    def state_dict(self) -> dict:
        return {"mean": self.mean, "var": self.var, "count": self.count}

    def load_state_dict(self, state: dict) -> None:
        self.mean, self.var, self.count = state["mean"], state["var"], state["count"]


class PPO(OnlineSteps):
    value_head = True
    needs_old_logps = True  # the KL penalty in the rewards and GAE's values come from the rollout policy

    def __init__(self, run: OnlineRun):
        super().__init__(run)
        cfg = self.cfg
        self.kl_ctl = (AdaptiveKLController(cfg.beta, cfg.kl_target, cfg.kl_horizon) if cfg.kl_target
                       else FixedKLController(cfg.beta))
        self.moments = RunningMoments()

    @property
    def entropy_grad(self) -> bool:
        return self.cfg.entropy_coef > 0

    def keep(self, scored: torch.Tensor) -> torch.Tensor:
        return scored  # no groups: every scored response trains

    def _scores(self, samples: Samples, scores: Scores) -> torch.Tensor:
        # missing-EOS penalty, running normalization, clipping
        cfg, keep = self.cfg, scores.keep.bool()
        x = scores.scores.nan_to_num(0.0)
        if cfg.missing_eos_penalty:
            x = x - cfg.missing_eos_penalty * (~samples.rollout.ended).float()
        if cfg.normalize_rewards:
            self.moments.update(self.rt, x[keep])
            x = (x - self.moments.mean) / math.sqrt(self.moments.var + 1e-8)
        if cfg.reward_clip:
            x = x.clamp(-cfg.reward_clip, cfg.reward_clip)
        return x * scores.keep

    def targets(self, samples: Samples, scores: Scores, logps: LogProbs) -> Targets:
        cfg, mask = self.cfg, samples.rollout.response_mask.float() * scores.keep[:, None]
        # per-token rewards: −β·KL to the reference, the score at the last token
        kl = kl_estimate(logps.old, logps.ref, cfg.kl_estimator)
        rewards = token_rewards(self._scores(samples, scores), kl, mask, self.kl_ctl.value)
        # GAE on the old values; whitened advantages
        est = gae(rewards, logps.values, mask, cfg.gamma, cfg.lam)
        advantages = global_whiten(self.rt, est.advantages, mask) if cfg.whiten_advantages else est.advantages
        tokens = mask.sum()
        return Targets(advantages, est.returns, {
            "explained_variance": (explained_variance(logps.values, est.returns, mask) * tokens, tokens),
            "score_penalized": (masked_sum(rewards, mask), scores.keep.sum())})

    def loss(self, out: PolicyOut, micro: Micro) -> MicroLoss:
        # clipped surrogate + clipped value loss − entropy bonus, the mean over the minibatch's tokens
        cfg, b, rows = self.cfg, micro.batch, micro.rows
        mask = b.mask[rows].to(out.logps)
        pg = ppo_policy_loss(out.logps, micro.old, b.targets.advantages[rows].to(out.logps), mask, cfg.epsilon)
        vf = ppo_value_loss(out.values, b.logps.values[rows].to(out.values), b.targets.returns[rows].to(out.values),
                            mask, cfg.value_clip)
        per_token = pg.losses + cfg.vf_coef * vf.losses - cfg.entropy_coef * out.entropy * mask
        tokens = mask.sum()
        return MicroLoss(masked_sum(per_token, mask) / micro.counts.tokens, {
            "clip_frac": (pg.clip_frac * tokens, tokens), "value_loss": (masked_sum(vf.losses, mask), tokens),
            "value_clip_frac": (vf.clip_frac * tokens, tokens), "policy_loss": (masked_sum(pg.losses, mask), tokens)})

    def end_step(self, kl: float, n_responses: int) -> dict:
        beta = self.kl_ctl.value  # the β this step's rewards used
        self.kl_ctl.update(kl, n_responses)
        return {"beta": beta}

    def controller_state(self) -> dict:
        return {"kl_ctl": self.kl_ctl.state_dict(), "moments": self.moments.state_dict()}

    def load_controller_state(self, state: dict) -> None:
        if state:
            self.kl_ctl.load_state_dict(state["kl_ctl"])
            self.moments.load_state_dict(state["moments"])


@returns_finished_run
def train_ppo(config: PPOConfig | dict | None = None, reward_fn: RewardFn | None = None,
              gold_fn: RewardFn | None = None, **overrides: Any) -> TrainResult:
    # the prelude: prompts, the policy with its value head, the reference
    with start_online("ppo", config, overrides, reward_fn, value_head=True, gold_fn=gold_fn) as run:
        # the engine runs PPO's steps; the final model and value head
        return train_online(run, PPO(run))


__all__ = ["train_ppo", "PPOConfig"]
