"""The training losses against hand-computed numbers (the arithmetic is in each docstring)."""
from __future__ import annotations

import math

import pytest
import torch

from rlaif.train.losses import bradley_terry_loss, dpo_loss, kto_kl_estimate, kto_loss

t = lambda *x: torch.tensor(x, dtype=torch.float64)


def test_bradley_terry_hand_computed():
    """r_c = 2, r_r = 1: d = 1, -log σ(1) = log(1 + e^-1) = 0.313261687.
    margin 0.5: d = 0.5, log(1 + e^-0.5) = 0.474076984.
    centering coef 0.01: + 0.01·(2 + 1)² = 0.09 → 0.403261687.
    soft label p = 0.75: 0.75·log(1 + e^-1) + 0.25·log(1 + e^1) = 0.75·0.313261687 + 0.25·1.313261687 = 0.563261687.
    """
    assert bradley_terry_loss(t(2.0), t(1.0)).losses.item() == pytest.approx(0.313261687, abs=1e-9)
    assert bradley_terry_loss(t(2.0), t(1.0), margin=t(0.5)).losses.item() == pytest.approx(0.474076984, abs=1e-9)
    assert bradley_terry_loss(t(2.0), t(1.0), center_coef=0.01).losses.item() == pytest.approx(0.403261687, abs=1e-9)
    assert bradley_terry_loss(t(2.0), t(1.0), p_chosen=t(0.75)).losses.item() == pytest.approx(0.563261687, abs=1e-9)
    out = bradley_terry_loss(t(2.0, 0.0), t(1.0, 0.0))
    assert out.losses.tolist() == pytest.approx([0.313261687, math.log(2)], abs=1e-9)
    assert out.rewards_chosen.tolist() == [2.0, 0.0]


def test_dpo_sigmoid_cdpo_soft_and_ipo_hand_computed():
    """π_c = -10, π_r = -12, ref_c = ref_r = -11, β = 0.1: Δ = (-10 + 11) - (-12 + 11) = 2, βΔ = 0.2.
    sigmoid: -log σ(0.2) = log(1 + e^-0.2) = 0.598138869; rewards β(π - ref) = +0.1 and -0.1.
    cDPO ε = 0.1: 0.9·0.598138869 + 0.1·log(1 + e^0.2) = 0.9·0.598138869 + 0.1·0.798138869 = 0.618138869.
    soft p = 0.8: 0.8·0.598138869 + 0.2·0.798138869 = 0.638138869.
    IPO: (Δ - 1/(2β))² = (2 - 5)² = 9.
    """
    args = (t(-10.0), t(-12.0), t(-11.0), t(-11.0))
    out = dpo_loss(*args, beta=0.1)
    assert out.losses.item() == pytest.approx(0.598138869, abs=1e-9)
    assert out.rewards_chosen.item() == pytest.approx(0.1) and out.rewards_rejected.item() == pytest.approx(-0.1)
    assert dpo_loss(*args, beta=0.1, label_smoothing=0.1).losses.item() == pytest.approx(0.618138869, abs=1e-9)
    assert dpo_loss(*args, beta=0.1, p_chosen=t(0.8)).losses.item() == pytest.approx(0.638138869, abs=1e-9)
    assert dpo_loss(*args, beta=0.1, loss_type="ipo").losses.item() == pytest.approx(9.0)
    with pytest.raises(ValueError):
        dpo_loss(*args, beta=0.1, loss_type="hinge")


def test_dpo_at_equal_policy_and_reference():
    """Policy = reference: Δ = 0, so sigmoid loss = log 2 whatever p, IPO = (1/(2β))² = 25 for β = 0.1."""
    x = t(-3.0, -7.5)
    assert dpo_loss(x, x.flip(0), x, x.flip(0), beta=0.1).losses.tolist() == pytest.approx([math.log(2)] * 2)
    assert dpo_loss(x, x, x, x, beta=0.1, p_chosen=t(0.3, 0.9)).losses.tolist() == pytest.approx([math.log(2)] * 2)
    assert dpo_loss(x, x, x, x, beta=0.1, loss_type="ipo").losses.tolist() == pytest.approx([25.0, 25.0])


def test_soft_label_half_has_zero_gradient():
    """p = 0.5: loss = 0.5·log(1+e^-x) + 0.5·log(1+e^x), whose derivative 0.5(σ(x) - σ(-x)) is 0 at x = 0
    and the loss is minimal there: a coin-flip label pushes Δ to 0 rather than in either direction."""
    pc = t(-5.0).requires_grad_()
    dpo_loss(pc, t(-5.0), t(-5.0), t(-5.0), beta=0.5, p_chosen=t(0.5)).losses.sum().backward()
    assert pc.grad.item() == pytest.approx(0.0, abs=1e-12)


def test_kto_hand_computed():
    """β = 0.1; desirable r = π - ref = 2, undesirable r = -1.
    z0 = mean(π_KL - ref_KL) = mean(0.5, 0.5) = 0.5.
    desirable: 1 - σ(0.1·(2 - 0.5)) = 1 - σ(0.15) = 1 - 0.537429845 = 0.462570155; times λ_D = 2 → 0.925140310.
    undesirable: 1 - σ(0.1·(0.5 - (-1))) = 1 - σ(0.15) = 0.462570155 (λ_U = 1).
    """
    kl = kto_kl_estimate(t(-5.0, -6.0), t(-5.5, -6.5))
    assert kl.item() == pytest.approx(0.5)
    out = kto_loss(t(-8.0, -9.0), t(-10.0, -8.0), torch.tensor([True, False]), kl, beta=0.1, desirable_weight=2.0)
    assert out.losses.tolist() == pytest.approx([0.925140310, 0.462570155], abs=1e-9)
    assert out.rewards.tolist() == pytest.approx([0.2, -0.1])


def test_kto_reference_point_is_clamped_and_detached():
    """A negative mean log-ratio on mismatched pairs gives z0 = 0; at r = 0 each loss is 1 - σ(0) = 0.5·λ."""
    pol = t(-7.0, -9.0).requires_grad_()
    kl = kto_kl_estimate(pol, t(-6.0, -8.0))
    assert kl.item() == 0.0 and not kl.requires_grad
    out = kto_loss(t(-1.0, -1.0, -1.0), t(-1.0, -1.0, -1.0), torch.tensor([True, True, False]), kl, beta=0.3,
                   desirable_weight=1.5, undesirable_weight=0.7)
    assert out.losses.tolist() == pytest.approx([0.75, 0.75, 0.35])
