"""The online-RL losses as pure functions of tensors: KL estimators, GAE, PPO, RLOO, GRPO, KL controllers.

Shapes: B rows (sampled responses), T response positions. Per-token tensors are (B, T) and come with
a response `mask` (B, T) of 1 at response tokens (EOS included) and 0 at padding. `logps` are the
current policy's per-token log-probs of the sampled ids, `old_logps` the policy's at sampling time
(detached), `ref_logps` the frozen reference's. Groups (RLOO, GRPO) are k consecutive rows per prompt.

Functions return per-token or per-sequence tensors plus a loss where the aggregation is part of the
method (GRPO's `loss_type`, RLOO's sequence mean); every denominator can be given as a global count so
gradient accumulation and data parallelism give the gradients of one big batch.

The GRPO and RLOO arithmetic follows TRL 1.16 (`GRPOTrainer._compute_loss`, `RLOOTrainer`), checked
against it in tests/train/rl/test_losses.py: GRPO's clipped loss with token- or sequence-level (GSPO) ratios, and
its CISPO and SAPO variants.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

LossType = Literal["grpo", "bnpo", "dr_grpo", "dapo", "cispo", "sapo"]
RewardScale = Literal["group", "batch", "none"]
KLEstimator = Literal["k1", "k2", "k3"]

# TRL's std epsilon for group-normalized advantages (kept identical so the advantages match)
ADV_STD_EPS = 1e-4


def masked_sum(x: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    return (x * mask).sum() if dim is None else (x * mask).sum(dim)


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Mean over positions where mask is 1 (0 when there are none)."""
    return masked_sum(x, mask, dim) / (mask.sum() if dim is None else mask.sum(dim)).clamp(min=1.0)


def masked_var(x: torch.Tensor, mask: torch.Tensor, unbiased: bool = True) -> torch.Tensor:
    mean = masked_mean(x, mask)
    var = masked_mean((x - mean) ** 2, mask)
    n = mask.sum()
    if unbiased and n > 1:
        var = var * n / (n - 1)  # Bessel's correction
    return var


def whiten(x: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True, eps: float = 1e-8) -> torch.Tensor:
    """(x - mean) / std over the masked positions (unbiased variance); positions outside the mask become 0.

    shift_mean=False keeps the mean (scales only), as PPO implementations do for rewards.
    """
    mean, var = masked_mean(x, mask), masked_var(x, mask)
    out = (x - mean) * torch.rsqrt(var + eps)
    if not shift_mean:
        out = out + mean
    return out * mask


# ---- KL estimators (Schulman, "Approximating KL divergence", 2020) -------------------------------------
# Per token, for samples from the policy: KL(π‖ref) ≈ E[k]. With r = ref - logp (the log of π_ref/π):
#   k1 = -r = logp - ref          (unbiased, can be negative)
#   k2 = r² / 2                   (biased, low variance, >= 0)
#   k3 = exp(r) - r - 1           (unbiased, >= 0)

def kl_k1(logps: torch.Tensor, ref_logps: torch.Tensor) -> torch.Tensor:
    return logps - ref_logps


def kl_k2(logps: torch.Tensor, ref_logps: torch.Tensor) -> torch.Tensor:
    return 0.5 * (ref_logps - logps) ** 2


def kl_k3(logps: torch.Tensor, ref_logps: torch.Tensor) -> torch.Tensor:
    r = ref_logps - logps
    return torch.exp(r) - r - 1


def kl_estimate(logps: torch.Tensor, ref_logps: torch.Tensor, estimator: KLEstimator = "k1") -> torch.Tensor:
    """The per-token estimator named `estimator` ("k1", "k2" or "k3")."""
    fns = {"k1": kl_k1, "k2": kl_k2, "k3": kl_k3}
    if estimator not in fns:
        raise ValueError(f"unknown KL estimator {estimator!r} (use 'k1', 'k2' or 'k3')")
    return fns[estimator](logps, ref_logps)


def sequence_kl(logps: torch.Tensor, ref_logps: torch.Tensor, mask: torch.Tensor,
                estimator: KLEstimator = "k1") -> torch.Tensor:
    """(B,) the per-token estimate summed over each response (RLOO's sequence-level KL)."""
    return masked_sum(kl_estimate(logps, ref_logps, estimator), mask, dim=-1)


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of softmax(logits) over the last dim: logsumexp(l) - Σ softmax(l)·l."""
    p = torch.softmax(logits, dim=-1)
    return torch.logsumexp(logits, dim=-1) - (p * logits).sum(-1)


# ---- PPO ---------------------------------------------------------------------------------------------

def last_token_index(mask: torch.Tensor) -> torch.Tensor:
    """(B,) the position of each row's last response token (0 for an empty row)."""
    t = torch.arange(mask.size(1), device=mask.device).expand_as(mask)
    return torch.where(mask.bool(), t, torch.zeros_like(t)).max(dim=1).values


def token_rewards(scores: torch.Tensor, kl: torch.Tensor, mask: torch.Tensor, beta: float) -> torch.Tensor:
    """PPO's per-token reward (Ziegler et al. 2019; InstructGPT): -β·KL at every response token, plus the
    sequence reward `scores` (B,) at each row's final token. Zero outside the mask."""
    rewards = -beta * kl * mask
    rows = torch.arange(mask.size(0), device=mask.device)
    rewards[rows, last_token_index(mask)] += scores.to(rewards)
    return rewards


@dataclass
class GAE:
    advantages: torch.Tensor  # (B, T), 0 outside the mask
    returns: torch.Tensor  # (B, T) advantages + values, the value head's target


def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float) -> GAE:
    """Generalized advantage estimation (Schulman et al. 2016) over each response.

    δ_t = r_t + γ·V_{t+1} - V_t, A_t = δ_t + γλ·A_{t+1}; the response ends after its last masked
    token (V and A beyond it are 0), so padding contributes nothing. Computed in no-grad: the
    advantages and returns are targets.
    """
    with torch.no_grad():
        mask = mask.to(values)
        values, rewards = values * mask, rewards * mask
        adv = torch.zeros_like(values)
        next_adv = torch.zeros_like(values[:, 0])
        next_value = torch.zeros_like(values[:, 0])
        for t in reversed(range(values.size(1))):
            delta = rewards[:, t] + gamma * next_value - values[:, t]
            next_adv = (delta + gamma * lam * next_adv) * mask[:, t]
            adv[:, t] = next_adv
            next_value = values[:, t]
        return GAE(adv, (adv + values) * mask)


@dataclass
class PolicyLoss:
    losses: torch.Tensor  # (B, T) per-token clipped-surrogate loss, 0 outside the mask (aggregate with masked_*)
    ratio: torch.Tensor  # (B, T) π/π_old, detached
    clip_frac: torch.Tensor  # scalar: share of masked tokens where the clipped term was the active one
    approx_kl: torch.Tensor  # scalar: masked mean of ½(logp - old)², the old→new KL estimate (k2)


def ppo_policy_loss(logps: torch.Tensor, old_logps: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor,
                    epsilon: float = 0.2) -> PolicyLoss:
    """PPO's clipped surrogate (Schulman et al. 2017), per token: max(-A·ρ, -A·clip(ρ, 1-ε, 1+ε)).

    `advantages` (B, T) per token (GAE), or (B,) one per sequence (broadcast over its tokens).
    """
    if advantages.dim() == 1:
        advantages = advantages.unsqueeze(1)
    log_ratio = logps - old_logps
    ratio = torch.exp(log_ratio)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - epsilon, 1.0 + epsilon)
    losses = torch.maximum(unclipped, clipped) * mask
    with torch.no_grad():
        clip_frac = masked_mean((clipped > unclipped).to(logps), mask)
        approx_kl = masked_mean(0.5 * log_ratio ** 2, mask)
    return PolicyLoss(losses, ratio.detach(), clip_frac, approx_kl)


@dataclass
class ValueLoss:
    losses: torch.Tensor  # (B, T) ½·max of unclipped and clipped squared errors, 0 outside the mask
    clip_frac: torch.Tensor  # scalar: share of masked tokens where the clipped error was larger


def ppo_value_loss(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor,
                   clip_range: float = 0.2) -> ValueLoss:
    """The clipped value loss: ½·max((V - R)², (V_old + clip(V - V_old, ±c) - R)²) per token."""
    v_clipped = old_values + torch.clamp(values - old_values, -clip_range, clip_range)
    err, err_clipped = (values - returns) ** 2, (v_clipped - returns) ** 2
    losses = 0.5 * torch.maximum(err, err_clipped) * mask
    with torch.no_grad():
        clip_frac = masked_mean((err_clipped > err).to(values), mask)
    return ValueLoss(losses, clip_frac)


def explained_variance(values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """1 - Var[R - V] / Var[R] over masked tokens (1 = perfect, 0 = no better than a constant)."""
    with torch.no_grad():
        var_r = masked_var(returns, mask)
        return 1.0 - masked_var(returns - values, mask) / var_r.clamp(min=1e-12)


# ---- KL controllers (Ziegler et al. 2019, "Fine-tuning language models from human preferences") ----------

class FixedKLController:
    """β stays at its initial value."""

    def __init__(self, beta: float):
        self.value = float(beta)

    def update(self, current_kl: float, n_steps: int) -> float:
        return self.value

    def state_dict(self) -> dict:
        return {"value": self.value}

    def load_state_dict(self, state: dict) -> None:
        self.value = float(state["value"])


class AdaptiveKLController(FixedKLController):
    """β moves toward the KL `target`: e = clip(KL/target - 1, ±0.2); β ← β·(1 + e·n_steps/horizon).

    `n_steps` is the number of samples (responses) seen since the last update, as in Ziegler et al.
    """

    def __init__(self, beta: float, target: float, horizon: int):
        if target <= 0 or horizon <= 0:
            raise ValueError(f"adaptive KL needs target > 0 and horizon > 0 (got {target}, {horizon})")
        super().__init__(beta)
        self.target, self.horizon = float(target), int(horizon)

    def update(self, current_kl: float, n_steps: int) -> float:
        error = min(max(current_kl / self.target - 1.0, -0.2), 0.2)
        self.value *= 1.0 + error * n_steps / self.horizon
        return self.value

    def state_dict(self) -> dict:
        return {"value": self.value, "target": self.target, "horizon": self.horizon}

    def load_state_dict(self, state: dict) -> None:
        self.value, self.target, self.horizon = float(state["value"]), float(state["target"]), int(state["horizon"])


# ---- group advantages (RLOO, GRPO) ---------------------------------------------------------------------

def _groups(rewards: torch.Tensor, k: int) -> torch.Tensor:
    if k < 2 or rewards.dim() != 1 or rewards.numel() % k:
        raise ValueError(f"group advantages need k >= 2 and a flat batch of whole groups (k={k}, "
                         f"shape {tuple(rewards.shape)})")
    return rewards.view(-1, k)


def _nanstd(x: torch.Tensor, dim: int | None = None, keepdim: bool = False) -> torch.Tensor:
    """Unbiased std ignoring NaNs (TRL's nanstd)."""
    kwargs = {} if dim is None else {"dim": dim, "keepdim": True}
    mean = torch.nanmean(x, **kwargs)
    var = torch.nanmean((x - mean) ** 2, **kwargs)
    n = (~torch.isnan(x)).sum(**kwargs)
    std = torch.sqrt(var * n / (n - 1))
    return std if keepdim or dim is None else std.squeeze(dim)


def rloo_advantages(rewards: torch.Tensor, k: int, normalize: bool = False) -> torch.Tensor:
    """REINFORCE leave-one-out (Ahmadian et al. 2024): A_i = r_i - mean of the other scored members of its group.

    `rewards` (N,) holds k consecutive rows per prompt (include the -β·KL term first: `rloo_rewards`);
    NaN marks an unscored member: it is left out of its siblings' baselines and gets advantage 0, as
    does a member with no scored sibling. normalize=True then whitens over the batch (TRL's
    `normalize_advantages`), which breaks the zero sum per group.
    """
    g = _groups(rewards, k)
    scored = (~torch.isnan(g)).sum(dim=1, keepdim=True)
    baseline = (torch.nansum(g, dim=1, keepdim=True) - g) / (scored - 1)
    adv = (g - baseline).view(-1)
    if normalize:
        adv = (adv - torch.nanmean(adv)) / (_nanstd(adv) + ADV_STD_EPS)
    return torch.nan_to_num(adv, nan=0.0)


def rloo_rewards(scores: torch.Tensor, old_logps: torch.Tensor, ref_logps: torch.Tensor, mask: torch.Tensor,
                 beta: float) -> torch.Tensor:
    """RLOO's KL-regularized sequence reward: score - β·Σ_t k1 (TRL 1.16: the sampling policy's log-probs)."""
    if beta == 0.0:
        return scores
    return scores - beta * sequence_kl(old_logps, ref_logps, mask, "k1").to(scores)


def grpo_advantages(rewards: torch.Tensor, k: int, scale: RewardScale = "group") -> torch.Tensor:
    """GRPO's group-relative advantages (Shao et al. 2024), as TRL 1.16 computes them.

    A_i = r_i - mean(group); then divided by (std + 1e-4) with the unbiased std of the group
    (scale="group"), of the whole batch ("batch", as in PPO-Lite), or not at all ("none", Dr. GRPO).
    NaN (unscored) members are left out of the mean and std and get advantage 0.
    """
    g = _groups(rewards, k)
    adv = g - torch.nanmean(g, dim=1, keepdim=True)
    if scale == "group":
        adv = adv / (_nanstd(g, dim=1, keepdim=True) + ADV_STD_EPS)
    elif scale == "batch":
        adv = adv / (_nanstd(rewards) + ADV_STD_EPS)
    elif scale != "none":
        raise ValueError(f"unknown reward scaling {scale!r} (use 'group', 'batch' or 'none')")
    return torch.nan_to_num(adv.view(-1), nan=0.0)


def zero_std_groups(rewards: torch.Tensor, k: int) -> torch.Tensor:
    """(G,) bool: the groups whose scored rewards are all equal (std 0), which give every member advantage 0.

    As TRL's `frac_reward_zero_std` counts them: the unbiased std over the scored (non-NaN) members is close to 0
    (`torch.isclose`); a group with fewer than two scored members has no std and is not counted.
    """
    std = _nanstd(_groups(rewards, k), dim=1)
    return torch.isclose(std, torch.zeros_like(std))


# ---- GRPO and RLOO losses (TRL 1.16's arithmetic) --------------------------------------------------------

@dataclass
class GroupLoss:
    loss: torch.Tensor  # scalar to backpropagate (aggregated by the method's rule)
    losses: torch.Tensor  # GRPO: (B, T) per-token loss, 0 outside the mask; RLOO: (B,) per-sequence loss
    ratio: torch.Tensor  # importance ratio π/π_old, detached: (B, T) token level, (B, 1) sequence level
    kl: torch.Tensor | None  # GRPO: (B, T) per-token k3 to the reference (None when β = 0); RLOO: None
    clip_low: torch.Tensor  # scalar: share of tokens (RLOO: sequences) clipped at 1-ε_low with A < 0 (cispo, sapo: 0)
    clip_high: torch.Tensor  # scalar: share clipped at 1+ε_high with A > 0 (cispo: ρ above its cap ε_high; sapo: 0)
    clip_frac: torch.Tensor  # scalar: either of the two


def _clip_shares(low: torch.Tensor, high: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The shares of masked tokens (of sequences, for one ratio per sequence) clipped low, high and either."""
    with torch.no_grad():
        if low.dim() == 2 and low.size(1) == 1:  # one ratio per sequence: shares of sequences, as TRL logs them
            return tuple(x.to(mask).mean() for x in (low, high, low | high))
        return tuple(masked_mean(x.expand_as(mask).to(mask), mask) for x in (low, high, low | high))


def _clip_flags(ratio, advantages, eps_low: float, eps_high: float) -> tuple[torch.Tensor, torch.Tensor]:
    return (ratio < 1 - eps_low) & (advantages < 0), (ratio > 1 + eps_high) & (advantages > 0)


# how a loss type aggregates when it is not one of the four rules: TRL 1.16 sums CISPO's tokens like DAPO's and
# averages SAPO's per sequence like GRPO's
_AGGREGATION = {"cispo": "dapo", "sapo": "grpo"}


def aggregate(per_token: torch.Tensor, mask: torch.Tensor, loss_type: LossType, *,
              max_completion_length: int | None = None, num_sequences: int | None = None,
              num_tokens: float | torch.Tensor | None = None) -> torch.Tensor:
    """GRPO's loss aggregation over a (micro-)batch.

    grpo, sapo:    Σ_i (Σ_t m·l / Σ_t m) / num_sequences   (mean over each sequence's tokens, then over sequences)
    bnpo:          Σ m·l / Σ m over this micro-batch        (local token mean)
    dr_grpo:       Σ m·l / (num_sequences · max_completion_length)
    dapo, cispo:   Σ m·l / num_tokens                       (tokens of the whole accumulated global batch)
    num_sequences defaults to this batch's B and num_tokens to its token count; pass the counts of the
    optimizer step (all micro-batches, all ranks divided as the gradient sync requires) to accumulate.
    """
    rule = _AGGREGATION.get(loss_type, loss_type)
    n_seq = per_token.size(0) if num_sequences is None else num_sequences
    if rule == "grpo":
        return masked_mean(per_token, mask, dim=-1).sum() / n_seq
    if rule == "bnpo":
        return masked_mean(per_token, mask)
    if rule == "dr_grpo":
        if not max_completion_length:
            raise ValueError("loss_type='dr_grpo' needs max_completion_length")
        return masked_sum(per_token, mask) / (n_seq * max_completion_length)
    if rule == "dapo":
        n_tok = mask.sum() if num_tokens is None else torch.as_tensor(num_tokens).to(per_token)
        return masked_sum(per_token, mask) / n_tok.clamp(min=1.0)
    raise ValueError(f"unknown GRPO loss_type {loss_type!r} (use 'grpo', 'bnpo', 'dr_grpo', 'dapo', 'cispo' or "
                     "'sapo')")


@dataclass(frozen=True)
class Surrogate:
    """GRPO's policy term before the KL, and which ratios its clipping acted on."""

    loss: torch.Tensor  # (B, T), or (B, 1) for one ratio per sequence (broadcast over its tokens)
    low: torch.Tensor  # bool, the ratio's shape: clipped at the low side (A < 0)
    high: torch.Tensor  # bool: clipped at the high side (A > 0)


def policy_surrogate(ratio: torch.Tensor, adv: torch.Tensor, logps: torch.Tensor, loss_type: LossType,
                     epsilon_low: float, epsilon_high: float, sapo_temperature_pos: float = 1.0,
                     sapo_temperature_neg: float = 1.05) -> Surrogate:
    """The policy term of each loss type (TRL 1.16's), for the ratio ρ (B, T) or (B, 1) and A (B, 1) or (B, T).

    grpo, bnpo, dr_grpo, dapo: -min(ρ·A, clip(ρ, 1-ε_low, 1+ε_high)·A) (PPO's clipped surrogate).
    cispo (MiniMax-M1): -sg(min(ρ, ε_high))·A·logp: REINFORCE on every token, weighted by the ratio capped at
      ε_high and detached, so clipping never drops a token's gradient (ε_high is the cap itself: ScaleRL uses 5).
    sapo (Soft Adaptive Policy Optimization): -σ(τ·(ρ - 1))·4/τ·A, a smooth gate in place of the hard clip
      (slope 1 at ρ = 1), τ = sapo_temperature_pos where A > 0 and sapo_temperature_neg elsewhere.
    """
    none = torch.zeros_like(ratio, dtype=torch.bool).expand(torch.broadcast_shapes(ratio.shape, adv.shape))
    if loss_type == "cispo":
        weight = torch.clamp(ratio, max=epsilon_high).detach()
        return Surrogate(-weight * adv * logps, none, (ratio > epsilon_high) & (adv > 0))
    if loss_type == "sapo":
        tau = torch.where(adv > 0, sapo_temperature_pos, sapo_temperature_neg).to(ratio)
        return Surrogate(-torch.sigmoid(tau * (ratio - 1)) * 4 / tau * adv, none, none)
    if loss_type not in ("grpo", "bnpo", "dr_grpo", "dapo"):
        raise ValueError(f"unknown GRPO loss_type {loss_type!r} (use 'grpo', 'bnpo', 'dr_grpo', 'dapo', 'cispo' "
                         "or 'sapo')")
    clipped = torch.clamp(ratio, 1 - epsilon_low, 1 + epsilon_high) * adv
    return Surrogate(-torch.min(ratio * adv, clipped), *_clip_flags(ratio, adv, epsilon_low, epsilon_high))


def grpo_loss(logps: torch.Tensor, old_logps: torch.Tensor, ref_logps: torch.Tensor | None,
              advantages: torch.Tensor, mask: torch.Tensor, *, beta: float, epsilon_low: float = 0.2,
              epsilon_high: float | None = None, loss_type: LossType = "dapo",
              importance_sampling_level: Literal["token", "sequence"] = "token", bias_correction_kl: bool = True,
              sapo_temperature_pos: float = 1.0, sapo_temperature_neg: float = 1.05,
              max_completion_length: int | None = None, num_sequences: int | None = None,
              num_tokens: float | torch.Tensor | None = None) -> GroupLoss:
    """GRPO's per-token loss with the k3 KL to the reference inside the loss (TRL 1.16 `_compute_loss`).

    ρ = exp(logp - old) per token (importance_sampling_level="sequence": exp of the masked mean of the
    log-ratio, one per row, as in GSPO); l_t = the policy term of `loss_type` (`policy_surrogate`) + β·k3_t,
    where k3_t is multiplied by ρ when bias_correction_kl (TRL's `use_bias_correction_kl`, on by default: it
    makes the KL gradient unbiased off-policy; at ρ = 1 it changes nothing). `advantages` (B,) or (B, T).
    The aggregation is `aggregate(...)` with `loss_type`; ε_high defaults to ε_low (as in TRL, also for cispo).
    """
    eps_high = epsilon_low if epsilon_high is None else epsilon_high
    adv = advantages.unsqueeze(1) if advantages.dim() == 1 else advantages
    log_ratio = logps - old_logps
    if importance_sampling_level == "sequence":
        log_ratio = masked_mean(log_ratio, mask, dim=-1).unsqueeze(-1)
    elif importance_sampling_level != "token":
        raise ValueError(f"unknown importance_sampling_level {importance_sampling_level!r} (use 'token' or 'sequence')")
    ratio = torch.exp(log_ratio)
    term = policy_surrogate(ratio, adv, logps, loss_type, epsilon_low, eps_high, sapo_temperature_pos,
                            sapo_temperature_neg)
    per_token, kl = term.loss, None
    if beta != 0.0:
        if ref_logps is None:
            raise ValueError("grpo_loss with beta != 0 needs ref_logps")
        kl = kl_k3(logps, ref_logps)
        per_token = per_token + beta * (kl * ratio if bias_correction_kl else kl)
    per_token = per_token.expand_as(mask)
    loss = aggregate(per_token, mask, loss_type, max_completion_length=max_completion_length,
                     num_sequences=num_sequences, num_tokens=num_tokens)
    low, high, region = _clip_shares(term.low, term.high, mask)
    return GroupLoss(loss, per_token * mask, ratio.detach(), None if kl is None else kl.detach(), low, high, region)


def rloo_loss(logps: torch.Tensor, old_logps: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor, *,
              epsilon_low: float = 0.2, epsilon_high: float | None = None,
              num_sequences: int | None = None) -> GroupLoss:
    """RLOO's loss as TRL 1.16's RLOOTrainer computes it: a sequence-level clipped ratio.

    ρ = exp(Σ_t m·logp - Σ_t m·old) per row; l = -min(ρ·A, clip(ρ, 1-ε_low, 1+ε_high)·A), A (B,);
    loss = Σ l / num_sequences (default B: the mean). The KL is in the reward (`rloo_rewards`), not here.
    """
    eps_high = epsilon_low if epsilon_high is None else epsilon_high
    ratio = torch.exp(masked_sum(logps, mask, dim=1) - masked_sum(old_logps, mask, dim=1))
    losses = -torch.min(ratio * advantages, torch.clamp(ratio, 1 - epsilon_low, 1 + eps_high) * advantages)
    n_seq = losses.size(0) if num_sequences is None else num_sequences
    ones = torch.ones_like(ratio)
    low, high, region = _clip_shares(*_clip_flags(ratio, advantages, epsilon_low, eps_high), ones)
    return GroupLoss(losses.sum() / n_seq, losses, ratio.detach(), None, low, high, region)
