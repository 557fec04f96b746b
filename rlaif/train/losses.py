"""The training losses as pure functions of tensors (no models, no data).

Every function returns per-example losses (not a mean), so the caller can
normalize by the global example count: that is what makes gradient accumulation
and data parallelism give the same gradients as one big batch.

Conventions: `*_logps` are summed log-probabilities of a response given its
prompt, one value per example; `beta` is the KL-penalty strength.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class PairLoss:
    """Per-pair losses plus the implicit rewards used for metrics (detached)."""

    losses: torch.Tensor  # (B,)
    rewards_chosen: torch.Tensor  # (B,)
    rewards_rejected: torch.Tensor  # (B,)


def preference_target(p_chosen: torch.Tensor | None, label_smoothing: float, like: torch.Tensor) -> torch.Tensor:
    """The probability that `chosen` wins, as the loss sees it.

    A hard label is p = 1; an AI judge's soft label is p = p_chosen. Label smoothing
    (cDPO: the label is flipped with probability eps) moves it to p(1-eps) + (1-p)eps.
    """
    p = torch.ones_like(like) if p_chosen is None else p_chosen.to(like)
    return p * (1.0 - label_smoothing) + (1.0 - p) * label_smoothing


def bradley_terry_loss(
    r_chosen: torch.Tensor,
    r_rejected: torch.Tensor,
    *,
    margin: torch.Tensor | None = None,
    p_chosen: torch.Tensor | None = None,
    center_coef: float = 0.0,
) -> PairLoss:
    """Reward-model loss: -log σ(r_c - r_r - margin), soft-label aware, with optional centering.

    With a soft label p: -(p log σ(d) + (1-p) log σ(-d)), d = r_c - r_r - margin.
    Centering adds coef·(r_c + r_r)², which pins the rewards' mean near 0 (their
    difference alone is identified by the Bradley–Terry model).
    """
    d = r_chosen - r_rejected
    if margin is not None:
        d = d - margin.to(d)
    p = preference_target(p_chosen, 0.0, d)
    losses = -(p * F.logsigmoid(d) + (1.0 - p) * F.logsigmoid(-d))
    if center_coef:
        losses = losses + center_coef * (r_chosen + r_rejected) ** 2
    return PairLoss(losses, r_chosen.detach(), r_rejected.detach())


def dpo_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
    *,
    beta: float,
    loss_type: str = "sigmoid",
    p_chosen: torch.Tensor | None = None,
    label_smoothing: float = 0.0,
) -> PairLoss:
    """DPO (Rafailov et al. 2023) and IPO (Azar et al. 2023).

    Δ = (π_c - ref_c) - (π_r - ref_r).
    sigmoid: -(q log σ(βΔ) + (1-q) log σ(-βΔ)), q = `preference_target` (1 for hard labels,
             p_chosen for soft labels, smoothed by label_smoothing as in cDPO).
    ipo:     (Δ - 1/(2β))². IPO is usually given per-token mean log-probs (the caller decides).
    Rewards are β·(π - ref) for each response.
    """
    chosen_ratio = policy_chosen_logps - ref_chosen_logps
    rejected_ratio = policy_rejected_logps - ref_rejected_logps
    delta = chosen_ratio - rejected_ratio
    if loss_type == "sigmoid":
        q = preference_target(p_chosen, label_smoothing, delta)
        losses = -(q * F.logsigmoid(beta * delta) + (1.0 - q) * F.logsigmoid(-beta * delta))
    elif loss_type == "ipo":
        if p_chosen is not None or label_smoothing:
            raise ValueError("IPO takes hard labels only (no p_chosen, no label_smoothing)")
        losses = (delta - 1.0 / (2.0 * beta)) ** 2
    else:
        raise ValueError(f"unknown DPO loss_type {loss_type!r} (use 'sigmoid' or 'ipo')")
    return PairLoss(losses, beta * chosen_ratio.detach(), beta * rejected_ratio.detach())


@dataclass
class KTOLoss:
    losses: torch.Tensor  # (B,) in the input order
    rewards: torch.Tensor  # (B,) β·(π - ref), detached
    kl: torch.Tensor  # the reference point z0 actually used (scalar, detached, >= 0)


def kto_kl_estimate(policy_kl_logps: torch.Tensor, ref_kl_logps: torch.Tensor) -> torch.Tensor:
    """KTO's reference point z0: the mean log-ratio on mismatched (prompt, other completion)
    pairs, detached and clamped at 0 (Ethayarajh et al. 2024, §4.1)."""
    return (policy_kl_logps - ref_kl_logps).mean().detach().clamp(min=0.0)


def kto_loss(
    policy_logps: torch.Tensor,
    ref_logps: torch.Tensor,
    desirable: torch.Tensor,
    kl: torch.Tensor,
    *,
    beta: float,
    desirable_weight: float = 1.0,
    undesirable_weight: float = 1.0,
) -> KTOLoss:
    """KTO (Ethayarajh et al. 2024, eq. 7-8) with r = π - ref and reference point z0 = `kl`.

    desirable:   λ_D (1 - σ(β(r - z0)))
    undesirable: λ_U (1 - σ(β(z0 - r)))
    `kl` is treated as a constant (no gradient flows through it).
    """
    r = policy_logps - ref_logps
    z0 = kl.detach().to(r)
    desirable = desirable.to(torch.bool)
    value = torch.where(desirable, torch.sigmoid(beta * (r - z0)), torch.sigmoid(beta * (z0 - r)))
    weight = torch.where(desirable, torch.full_like(r, desirable_weight), torch.full_like(r, undesirable_weight))
    return KTOLoss(weight * (1.0 - value), beta * r.detach(), z0)
