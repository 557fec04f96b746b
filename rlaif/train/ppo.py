"""PPO recipe (Schulman et al. 2017; the RLHF form of Ziegler et al. 2019 and InstructGPT), read top to bottom.

    rlaif train ppo --prompts prompts.jsonl --model local --reward rm:runs/rm -o runs/ppo [beta=0.05 ...]

1. prompts, the policy with a value head (a scalar linear head on the policy's last hidden state: a shared
   trunk, so one forward gives log-probs and values) and the frozen reference (`rl/online.py`);
2. each step: k responses per prompt (default 1) from the current policy, scored by the reward callable;
   a response that never reached EOS loses `missing_eos_penalty`; scores optionally normalized by a running
   mean/std and clipped;
3. per-token rewards: −β·KL(π_old‖π_ref) at every token (estimator k1 by default, k3 selectable) plus the
   score at the final token; β fixed, or adaptive toward `kl_target` (Ziegler et al.'s controller);
4. GAE(γ, λ) on the old values → advantages (whitened over the batch) and returns;
5. loss per token: the clipped surrogate (ε) + vf_coef · the clipped value loss − entropy_coef · entropy,
   the mean over the minibatch's tokens; `ppo_epochs` passes of `minibatches` optimizer steps;
6. the shared online loop (`rl/loop.py`) runs the steps, writes metrics, checkpoints (with the KL controller
   and the running reward statistics), saves the model and OUT/value_head.pt.
"""
from __future__ import annotations

import math
from typing import Any

import torch

from rlaif.scoring import RewardFn
from rlaif.train.checkpoint import TrainResult
from rlaif.train.config import PPOConfig
from rlaif.train.rl.loop import Algorithm, Counts, Experience, MicroLoss, global_whiten, train_online
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
from rlaif.train.rl.online import start_online
from rlaif.train.rl.policy import PolicyOut
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


class PPO(Algorithm):
    value_head = True
    needs_old_logps = True  # the KL penalty in the rewards and GAE's values come from the rollout policy

    def __init__(self, cfg: PPOConfig):
        super().__init__(cfg)
        self.kl_ctl = (AdaptiveKLController(cfg.beta, cfg.kl_target, cfg.kl_horizon) if cfg.kl_target
                       else FixedKLController(cfg.beta))
        self.moments = RunningMoments()

    @property
    def entropy_grad(self) -> bool:
        return self.cfg.entropy_coef > 0

    def keep(self, scored: torch.Tensor) -> torch.Tensor:
        return scored  # no groups: every scored response trains

    def _scores(self, exp: Experience, rt: Runtime) -> torch.Tensor:
        # 2. missing-EOS penalty, running normalization, clipping
        cfg, keep = self.cfg, exp.keep.bool()
        scores = exp.scores.nan_to_num(0.0)
        if cfg.missing_eos_penalty:
            scores = scores - cfg.missing_eos_penalty * (~exp.rollout.ended).float()
        if cfg.normalize_rewards:
            self.moments.update(rt, scores[keep])
            scores = (scores - self.moments.mean) / math.sqrt(self.moments.var + 1e-8)
        if cfg.reward_clip:
            scores = scores.clamp(-cfg.reward_clip, cfg.reward_clip)
        return scores * exp.keep

    def targets(self, exp: Experience, rt: Runtime) -> dict:
        cfg, mask = self.cfg, exp.mask
        # 3. per-token rewards: −β·KL to the reference, the score at the last token
        kl = kl_estimate(exp.old_logps, exp.ref_logps, cfg.kl_estimator)
        rewards = token_rewards(self._scores(exp, rt), kl, mask, self.kl_ctl.value)
        # 4. GAE on the old values; whitened advantages
        est = gae(rewards, exp.old_values, mask, cfg.gamma, cfg.lam)
        exp.advantages = global_whiten(rt, est.advantages, mask) if cfg.whiten_advantages else est.advantages
        exp.returns = est.returns
        tokens = mask.sum()
        return {"explained_variance": (explained_variance(exp.old_values, est.returns, mask) * tokens, tokens),
                "score_penalized": (masked_sum(rewards, mask), exp.keep.sum())}

    def micro_loss(self, out: PolicyOut, old, exp: Experience, rows: list[int], counts: Counts,
                   n_micro: int) -> MicroLoss:
        # 5. clipped surrogate + clipped value loss − entropy bonus, the mean over the minibatch's tokens
        cfg, mask = self.cfg, exp.mask[rows].to(out.logps)
        pg = ppo_policy_loss(out.logps, old, exp.advantages[rows].to(out.logps), mask, cfg.epsilon)
        vf = ppo_value_loss(out.values, exp.old_values[rows].to(out.values), exp.returns[rows].to(out.values),
                            mask, cfg.value_clip)
        per_token = pg.losses + cfg.vf_coef * vf.losses - cfg.entropy_coef * out.entropy * mask
        tokens = mask.sum()
        return MicroLoss(masked_sum(per_token, mask) / counts.tokens, {
            "clip_frac": (pg.clip_frac * tokens, tokens), "value_loss": (masked_sum(vf.losses, mask), tokens),
            "value_clip_frac": (vf.clip_frac * tokens, tokens), "policy_loss": (masked_sum(pg.losses, mask), tokens)})

    def end_step(self, kl: float, n_responses: int) -> dict:
        beta = self.kl_ctl.value  # the β this step's rewards used
        self.kl_ctl.update(kl, n_responses)
        return {"beta": beta}

    def state_dict(self) -> dict:
        return {"kl_ctl": self.kl_ctl.state_dict(), "moments": self.moments.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        if state:
            self.kl_ctl.load_state_dict(state["kl_ctl"])
            self.moments.load_state_dict(state["moments"])


def train_ppo(config: PPOConfig | dict | None = None, reward_fn: RewardFn | None = None,
              **overrides: Any) -> TrainResult:
    # 1. prompts, the policy with its value head, the reference
    run = start_online("ppo", config, overrides, reward_fn, value_head=True)
    try:
        # 2.-6. the online loop with PPO's rewards, GAE and losses
        return train_online(run, PPO(run.cfg))
    finally:
        run.close()


__all__ = ["train_ppo", "PPOConfig"]
