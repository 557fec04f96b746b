"""The online-RL losses (rlaif/train/rl/losses.py) against hand-computed numbers, their invariants, and TRL 1.16's
GRPOTrainer / RLOOTrainer on identical tensors.

For the TRL comparison the trainers are built on the tiny model and their per-token log-prob forward is replaced
by one that returns the test's tensors, so both sides see exactly the same inputs; the loss values and their
gradients with respect to the policy log-probs are then compared to 1e-6 (fp32).
"""
from __future__ import annotations

import math

import pytest
import torch

from rlaif.train.rl import losses as L

# ---- KL estimators -------------------------------------------------------------------------------------------


def test_kl_estimators_by_hand():
    """logp = log 0.5, ref = log 0.25: k1 = log 2; r = ref - logp = -log 2, k3 = e^r - r - 1 = 0.5 + log 2 - 1;
    k2 = r²/2 = (log 2)²/2."""
    logp, ref = torch.tensor([math.log(0.5)]), torch.tensor([math.log(0.25)])
    assert L.kl_k1(logp, ref).item() == pytest.approx(math.log(2), abs=1e-7)
    assert L.kl_k2(logp, ref).item() == pytest.approx(0.5 * math.log(2) ** 2, abs=1e-7)
    assert L.kl_k3(logp, ref).item() == pytest.approx(0.5 + math.log(2) - 1, abs=1e-7)
    assert L.kl_estimate(logp, ref, "k3").item() == L.kl_k3(logp, ref).item()
    with pytest.raises(ValueError, match="k1"):
        L.kl_estimate(logp, ref, "k4")


def test_k1_and_k3_are_unbiased_estimates_of_kl():
    """Sampled from p, E[k1] = E[k3] = KL(p‖q); k3 is never negative, k1 sometimes is."""
    g = torch.Generator().manual_seed(0)
    p, q = torch.tensor([0.6, 0.3, 0.1]), torch.tensor([0.2, 0.5, 0.3])
    x = torch.multinomial(p, 200_000, replacement=True, generator=g)
    logp, ref = p.log()[x], q.log()[x]
    kl = (p * (p / q).log()).sum().item()
    assert L.kl_k1(logp, ref).mean().item() == pytest.approx(kl, abs=5e-3)
    assert L.kl_k3(logp, ref).mean().item() == pytest.approx(kl, abs=5e-3)
    assert L.kl_k3(logp, ref).min() >= 0 and L.kl_k1(logp, ref).min() < 0


def test_sequence_kl_sums_masked_tokens():
    logp = torch.tensor([[-1.0, -2.0, -3.0]])
    ref = torch.tensor([[-1.5, -2.0, -9.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    assert L.sequence_kl(logp, ref, mask).tolist() == [0.5]


def test_entropy_from_logits():
    logits = torch.tensor([[0.0, 0.0, 0.0, 0.0], [100.0, 0.0, 0.0, 0.0]])
    assert L.entropy_from_logits(logits).tolist() == pytest.approx([math.log(4), 0.0], abs=1e-6)


# ---- GAE, whitening, PPO -------------------------------------------------------------------------------------


def test_gae_by_hand_on_five_tokens():
    """γ = 0.9, λ = 0.8 (γλ = 0.72); a 5-token response and one padding position (reward 5, value 9: ignored).

    r = [0.1, 0, -0.2, 0, 1.0], V = [0.5, 0.4, 0.3, 0.2, 0.1], V after the last token = 0.
    δ4 = 1.0 + 0.9·0   - 0.1 =  0.9           A4 = 0.9
    δ3 = 0   + 0.9·0.1 - 0.2 = -0.11          A3 = -0.11 + 0.72·0.9      =  0.538
    δ2 = -0.2 + 0.9·0.2 - 0.3 = -0.32         A2 = -0.32 + 0.72·0.538    =  0.06736
    δ1 = 0   + 0.9·0.3 - 0.4 = -0.13          A1 = -0.13 + 0.72·0.06736  = -0.0815008
    δ0 = 0.1 + 0.9·0.4 - 0.5 = -0.04          A0 = -0.04 + 0.72·A1       = -0.098680576
    returns = A + V = [0.401319424, 0.3184992, 0.36736, 0.738, 1.0]; the padding position gets 0 and 0.
    """
    rewards = torch.tensor([[0.1, 0.0, -0.2, 0.0, 1.0, 5.0]], dtype=torch.float64)
    values = torch.tensor([[0.5, 0.4, 0.3, 0.2, 0.1, 9.0]], dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1, 1, 1, 0]], dtype=torch.float64)
    out = L.gae(rewards, values, mask, gamma=0.9, lam=0.8)
    assert out.advantages[0].tolist() == pytest.approx([-0.098680576, -0.0815008, 0.06736, 0.538, 0.9, 0.0], abs=1e-12)
    assert out.returns[0].tolist() == pytest.approx([0.401319424, 0.3184992, 0.36736, 0.738, 1.0, 0.0], abs=1e-12)


def test_gae_with_gamma_lambda_one_is_reward_to_go_minus_value():
    rewards = torch.tensor([[1.0, 2.0, 3.0]])
    values = torch.tensor([[0.5, 0.5, 0.5]])
    out = L.gae(rewards, values, torch.ones(1, 3), gamma=1.0, lam=1.0)
    assert out.advantages[0].tolist() == pytest.approx([5.5, 4.5, 2.5])


def test_token_rewards_put_the_score_on_the_last_token():
    kl = torch.tensor([[0.1, 0.2, 0.3, 0.4], [0.5, 0.5, 0.5, 0.5]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    r = L.token_rewards(torch.tensor([2.0, -1.0]), kl, mask, beta=0.5)
    assert r.flatten().tolist() == pytest.approx([-0.05, -0.1, 2.0 - 0.15, 0.0, -0.25, -0.25, -0.25, -1.25])


def test_whiten_masked():
    x = torch.tensor([[1.0, 2.0, 3.0, 100.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    w = L.whiten(x, mask)  # mean 2, unbiased var 1
    assert w[0].tolist() == pytest.approx([-1.0, 0.0, 1.0, 0.0], abs=1e-6)
    assert L.whiten(x, mask, shift_mean=False)[0].tolist() == pytest.approx([1.0, 2.0, 3.0, 0.0], abs=1e-6)


def test_ppo_policy_loss_clips():
    """ε = 0.2. Token 0: A = 1, ρ = 1.5 → min(1.5, 1.2) = 1.2 is used, clipped. Token 1: A = -1, ρ = 0.5 →
    max(0.5, 0.8) = 0.8 (loss 0.8), clipped. Token 2: A = 1, ρ = 1.1 → 1.1, not clipped. Token 3 masked."""
    old = torch.zeros(1, 4)
    logp = torch.log(torch.tensor([[1.5, 0.5, 1.1, 7.0]]))
    adv = torch.tensor([[1.0, -1.0, 1.0, 1.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    out = L.ppo_policy_loss(logp, old, adv, mask, epsilon=0.2)
    assert out.losses[0].tolist() == pytest.approx([-1.2, 0.8, -1.1, 0.0], abs=1e-6)
    assert out.clip_frac.item() == pytest.approx(2 / 3)
    assert out.approx_kl.item() == pytest.approx(sum(0.5 * math.log(v) ** 2 for v in (1.5, 0.5, 1.1)) / 3)


def test_ppo_value_loss_and_explained_variance():
    """c = 0.2. Token 0: V = 1.0 from V_old = 0 → clipped 0.2; R = 1: errors 0 and 0.64 → ½·0.64.
    Token 1: V = 0.1, V_old = 0 (inside the clip), R = 0.5: ½·0.16."""
    v, old, ret = torch.tensor([[1.0, 0.1]]), torch.zeros(1, 2), torch.tensor([[1.0, 0.5]])
    out = L.ppo_value_loss(v, old, ret, torch.ones(1, 2), clip_range=0.2)
    assert out.losses[0].tolist() == pytest.approx([0.32, 0.08])
    assert out.clip_frac.item() == 0.5
    r = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    assert L.explained_variance(r, r, torch.ones(1, 4)).item() == pytest.approx(1.0)
    assert L.explained_variance(torch.full_like(r, 2.5), r, torch.ones(1, 4)).item() == pytest.approx(0.0)


# ---- KL controllers -------------------------------------------------------------------------------------------


def test_adaptive_kl_controller_by_hand():
    """β0 = 0.1, target 6, horizon 10000, 256 samples per update.
    KL 9:   e = 9/6 - 1 = 0.5 → clipped to 0.2;  β = 0.1·(1 + 0.2·256/10000) = 0.1·1.00512 = 0.100512
    KL 3:   e = -0.5 → -0.2;                     β = 0.100512·(1 - 0.00512) = 0.100512·0.99488
    KL 6.6: e = 0.1 (inside the clip);           β = previous·(1 + 0.1·0.0256) = previous·1.00256
    """
    c = L.AdaptiveKLController(0.1, target=6.0, horizon=10000)
    assert c.update(9.0, 256) == pytest.approx(0.100512, abs=1e-12)
    assert c.update(3.0, 256) == pytest.approx(0.100512 * 0.99488, abs=1e-12)
    assert c.update(6.6, 256) == pytest.approx(0.100512 * 0.99488 * 1.00256, abs=1e-12)
    resumed = L.AdaptiveKLController(0.5, target=1.0, horizon=1)
    resumed.load_state_dict(c.state_dict())
    assert (resumed.value, resumed.target, resumed.horizon) == (c.value, 6.0, 10000)
    assert resumed.update(0.0, 100) == pytest.approx(c.value * (1 - 0.2 * 100 / 10000))


def test_fixed_kl_controller():
    c = L.FixedKLController(0.05)
    assert c.update(100.0, 256) == 0.05
    other = L.FixedKLController(1.0)
    other.load_state_dict(c.state_dict())
    assert other.value == 0.05


# ---- group advantages -----------------------------------------------------------------------------------------


def test_rloo_advantages_by_hand_and_zero_sum_per_group():
    """k = 3: rewards (1, 2, 6): baselines (2+6)/2 = 4, (1+6)/2 = 3.5, (1+2)/2 = 1.5 → A = (-3, -1.5, 4.5)."""
    r = torch.tensor([1.0, 2.0, 6.0, 0.0, 0.0, 3.0])
    adv = L.rloo_advantages(r, k=3)
    assert adv[:3].tolist() == pytest.approx([-3.0, -1.5, 4.5])
    assert adv.view(-1, 3).sum(1).tolist() == pytest.approx([0.0, 0.0], abs=1e-6)
    g = torch.Generator().manual_seed(0)
    adv = L.rloo_advantages(torch.randn(40, generator=g), k=4)
    assert adv.view(-1, 4).sum(1).abs().max() < 1e-5


def test_rloo_unscored_members_are_left_out():
    """(1, NaN, 3): the NaN member gets 0 and the others' baselines use only each other → (-2, 0, 2);
    a group with one scored member gets zeros."""
    adv = L.rloo_advantages(torch.tensor([1.0, math.nan, 3.0, 5.0, math.nan, math.nan]), k=3)
    assert adv.tolist() == pytest.approx([-2.0, 0.0, 2.0, 0.0, 0.0, 0.0])


def test_rloo_rewards_subtract_sequence_kl():
    old = torch.tensor([[-1.0, -1.0, -1.0]])
    ref = torch.tensor([[-2.0, -1.5, -7.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    assert L.rloo_rewards(torch.tensor([1.0]), old, ref, mask, beta=0.1).tolist() == pytest.approx([1.0 - 0.1 * 1.5])


@pytest.mark.parametrize("scale", ["group", "batch", "none"])
def test_grpo_advantages_sum_to_zero_per_group(scale):
    g = torch.Generator().manual_seed(1)
    adv = L.grpo_advantages(torch.rand(32, generator=g), k=4, scale=scale)
    assert adv.view(-1, 4).sum(1).abs().max() < 1e-5


def test_grpo_advantages_by_hand():
    """Group (0, 0, 1, 1): mean 0.5, unbiased std √(4·0.25/3) = 0.57735 → ±0.5/(0.57735 + 1e-4).
    Group (2, 2, 2, 2): all equal → 0. Batch std of all 8 rewards: mean 1.25, Σ(x-m)² = 2·1.5625 + 2·0.0625
    + 4·0.5625 = 5.5, /7 → std 0.886405."""
    r = torch.tensor([0.0, 0.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0])
    s = math.sqrt(1 / 3)
    assert L.grpo_advantages(r, 4, "group").tolist() == pytest.approx(
        [-0.5 / (s + 1e-4)] * 2 + [0.5 / (s + 1e-4)] * 2 + [0.0] * 4, abs=1e-6)
    b = math.sqrt(5.5 / 7)
    assert L.grpo_advantages(r, 4, "batch").tolist() == pytest.approx(
        [-0.5 / (b + 1e-4)] * 2 + [0.5 / (b + 1e-4)] * 2 + [0.0] * 4, abs=1e-6)
    assert L.grpo_advantages(r, 4, "none").tolist() == pytest.approx([-0.5, -0.5, 0.5, 0.5, 0, 0, 0, 0])
    assert L.grpo_advantages(torch.tensor([1.0, math.nan, 3.0, 1.0]), 2, "none").tolist() == [0.0, 0.0, 1.0, -1.0]
    with pytest.raises(ValueError, match="whole groups"):
        L.grpo_advantages(r[:7], 4)


# ---- invariants at policy = old = reference --------------------------------------------------------------------


def _batch(seed: int = 0, b: int = 4, t: int = 6):
    g = torch.Generator().manual_seed(seed)
    logps = -torch.rand(b, t, generator=g) * 3
    mask = (torch.arange(t)[None, :] < torch.tensor([6, 3, 5, 1])[:b, None]).float()
    return logps, mask, g


@pytest.mark.parametrize("loss_type", ["grpo", "bnpo", "dr_grpo", "dapo"])
def test_at_the_start_ratio_is_one_kl_zero_no_clipping(loss_type):
    logps, mask, g = _batch()
    adv = torch.randn(4, generator=g)
    out = L.grpo_loss(logps, logps.clone(), logps.clone(), adv, mask, beta=0.1, loss_type=loss_type,
                      max_completion_length=6)
    assert torch.equal(out.ratio, torch.ones_like(out.ratio))
    assert torch.equal(out.kl, torch.zeros_like(out.kl))
    assert out.clip_frac.item() == 0.0
    rloo = L.rloo_loss(logps, logps.clone(), adv, mask)
    assert torch.equal(rloo.ratio, torch.ones(4)) and rloo.clip_frac.item() == 0.0
    ppo = L.ppo_policy_loss(logps, logps.clone(), adv[:, None].expand_as(logps), mask)
    assert torch.equal(ppo.ratio, torch.ones_like(logps)) and ppo.approx_kl.item() == 0.0 and ppo.clip_frac.item() == 0
    assert torch.equal(L.kl_k1(logps, logps.clone()), torch.zeros_like(logps))


def test_grpo_aggregations_by_hand():
    """Per-token loss 1 everywhere, mask lengths (2, 1) of T = 4: grpo = mean(1, 1) = 1; bnpo = dapo = 3/3;
    dr_grpo = 3 / (2·4); dapo with 6 global tokens = 0.5; grpo with 4 global sequences = 0.5."""
    x, mask = torch.ones(2, 4), torch.tensor([[1.0, 1.0, 0, 0], [1.0, 0, 0, 0]])
    assert L.aggregate(x, mask, "grpo").item() == 1.0
    assert L.aggregate(x, mask, "bnpo").item() == 1.0
    assert L.aggregate(x, mask, "dr_grpo", max_completion_length=4).item() == 3 / 8
    assert L.aggregate(x, mask, "dapo").item() == 1.0
    assert L.aggregate(x, mask, "dapo", num_tokens=6).item() == 0.5
    assert L.aggregate(x, mask, "grpo", num_sequences=4).item() == 0.5
    with pytest.raises(ValueError, match="max_completion_length"):
        L.aggregate(x, mask, "dr_grpo")


def _grad(fn, logps):
    leaf = logps.clone().requires_grad_(True)
    out = fn(leaf)
    out.loss.backward()
    return out, leaf.grad


def test_gspo_sequence_ratio_by_hand():
    """One response of two tokens with log-ratios 0.2 and 0.4: GSPO's ratio is exp(mean) = e^0.3 = 1.3499 for both.
    A = +1, ε = 0.2: clipped at 1.2, so the loss is -1.2 with no gradient. A = -1: -min(-ρ, -1.2) = ρ, the loss
    (per-sequence token mean) is ρ and ∂ρ/∂logp_t = ρ/2 for each token."""
    logps, mask = torch.tensor([[-1.0, -2.0]]), torch.ones(1, 2)
    old = logps - torch.tensor([[0.2, 0.4]])
    rho = math.exp(0.3)
    kw = {"beta": 0.0, "loss_type": "grpo", "importance_sampling_level": "sequence"}
    out, grad = _grad(lambda x: L.grpo_loss(x, old, None, torch.tensor([1.0]), mask, **kw), logps)
    assert out.loss.item() == pytest.approx(-1.2) and grad.abs().max() == 0
    assert out.ratio.shape == (1, 1) and out.ratio.item() == pytest.approx(rho) and out.clip_high.item() == 1.0
    out, grad = _grad(lambda x: L.grpo_loss(x, old, None, torch.tensor([-1.0]), mask, **kw), logps)
    assert out.loss.item() == pytest.approx(rho) and grad[0].tolist() == pytest.approx([rho / 2, rho / 2])
    assert out.clip_frac.item() == 0.0


def test_cispo_by_hand():
    """One response, logp = (-1, -2), ratios (3, 1), A = 2, ε_high = 2. CISPO's per-token term is
    -sg(min(ρ, 2))·A·logp = (-2·2·(-1), -1·2·(-2)) = (4, 4); summed over the 2 tokens (dapo's rule): 4. Its gradient
    is -min(ρ, 2)·A / 2 = (-2, -1): the capped token keeps its gradient (PPO's clip would zero it). Token 0 is above
    the cap with A > 0: clip_high = 1/2."""
    logps, mask = torch.tensor([[-1.0, -2.0]]), torch.ones(1, 2)
    old = logps - torch.tensor([[math.log(3.0), 0.0]])
    out, grad = _grad(lambda x: L.grpo_loss(x, old, None, torch.tensor([2.0]), mask, beta=0.0, loss_type="cispo",
                                            epsilon_high=2.0), logps)
    assert out.loss.item() == pytest.approx(4.0) and grad[0].tolist() == pytest.approx([-2.0, -1.0])
    assert (out.clip_high.item(), out.clip_low.item()) == (pytest.approx(0.5), 0.0)


def test_sapo_by_hand():
    """Two one-token responses, per-sequence means (grpo's rule) over 2. Row 0: A = +1, ρ = 1, τ = 1:
    -σ(0)·4/1·1 = -2, ∂/∂logp = -σ'(0)·4·ρ = -1. Row 1: A = -1, ρ = e^0.5, τ_neg = 2: x = 2(ρ - 1),
    +σ(x)·4/2, ∂/∂logp = 2·σ(x)(1 - σ(x))·2·ρ."""
    logps, mask = torch.tensor([[-1.0], [-1.0]]), torch.ones(2, 1)
    old = logps - torch.tensor([[0.0], [0.5]])
    rho = math.exp(0.5)
    sig = 1 / (1 + math.exp(-2 * (rho - 1)))
    out, grad = _grad(lambda x: L.grpo_loss(x, old, None, torch.tensor([1.0, -1.0]), mask, beta=0.0, loss_type="sapo",
                                            sapo_temperature_pos=1.0, sapo_temperature_neg=2.0), logps)
    assert out.loss.item() == pytest.approx((-2 + 2 * sig) / 2)
    assert grad[:, 0].tolist() == pytest.approx([-1 / 2, 2 * sig * (1 - sig) * 2 * rho / 2])
    assert out.clip_frac.item() == 0.0


def test_zero_std_groups_by_hand():
    """Groups of 3: (1, 1, 1) flat; (0, 1, 1) not; (2, NaN, 2) flat over its scored members; (5, NaN, NaN) has no
    std (one scored member): not counted, as TRL's isclose(nanstd, 0) does not count it."""
    r = torch.tensor([1.0, 1, 1, 0, 1, 1, 2, math.nan, 2, 5, math.nan, math.nan])
    assert L.zero_std_groups(r, 3).tolist() == [True, False, True, False]


# ---- against TRL 1.16 --------------------------------------------------------------------------------------------

trl = pytest.importorskip("trl")
B, T = 4, 6


def _tensors():
    """A batch where the policy has moved off the sampler (some ratios beyond 1 ± 0.28) and the reference differs."""
    logps, mask, g = _batch(3)
    drift = torch.tensor([[-0.4], [0.4], [-0.1], [0.5]])  # per row, so sequence-level ratios clip too
    old = logps + 0.4 * torch.randn(B, T, generator=g) + drift
    ref = logps + 0.5 * torch.randn(B, T, generator=g)
    adv = torch.tensor([1.0, -0.5, 0.7, -1.2])
    return logps, old, ref, adv, mask


def _trl_inputs(mask):
    ids = torch.ones(B, T, dtype=torch.long)
    return {"prompt_ids": torch.ones(B, 2, dtype=torch.long), "prompt_mask": torch.ones(B, 2, dtype=torch.long),
            "completion_ids": ids, "completion_mask": mask.long()}


def _with_fixed_logps(trainer, logps):
    """Make the trainer's log-prob forward return `logps` (and flat entropies) instead of running the model."""
    trainer._get_per_token_logps_and_entropies = lambda *a, **k: (logps, torch.ones_like(logps), None)
    trainer.model.train()
    trainer.current_gradient_accumulation_steps = 1
    return trainer


def _build(cls_name: str, tiny_model_dir, tmp_path, **cfg):
    from datasets import Dataset
    from transformers import AutoTokenizer

    config_cls, trainer_cls = getattr(trl, f"{cls_name}Config"), getattr(trl, f"{cls_name}Trainer")
    args = config_cls(output_dir=str(tmp_path / cls_name), per_device_train_batch_size=B, num_generations=2,
                      max_completion_length=T, report_to=[], use_cpu=True, save_strategy="no", **cfg)
    ds = Dataset.from_list([{"prompt": [{"role": "user", "content": "hi"}]}] * B)
    return trainer_cls(model=str(tiny_model_dir), reward_funcs=lambda completions, **kw: [0.0] * len(completions),
                       args=args, train_dataset=ds, processing_class=AutoTokenizer.from_pretrained(tiny_model_dir))


def _loss_and_grad(fn, logps):
    leaf = logps.clone().requires_grad_(True)
    loss = fn(leaf)
    loss.backward()
    return loss.detach(), leaf.grad


@pytest.mark.parametrize("loss_type,level", [("grpo", "token"), ("bnpo", "token"), ("dr_grpo", "token"),
                                             ("dapo", "token"), ("dapo", "sequence"), ("grpo", "sequence")])
def test_grpo_loss_equals_trl(tiny_model_dir, tmp_path, loss_type, level):
    logps, old, ref, adv, mask = _tensors()
    beta, eps, eps_high = 0.04, 0.2, 0.28
    trainer = _build("GRPO", tiny_model_dir, tmp_path, beta=beta, epsilon=eps, epsilon_high=eps_high,
                     loss_type=loss_type, importance_sampling_level=level)

    def trl_loss(leaf):
        inputs = {**_trl_inputs(mask), "advantages": adv, "old_per_token_logps": old, "ref_per_token_logps": ref,
                  "num_items_in_batch": mask.sum()}
        return _with_fixed_logps(trainer, leaf)._compute_loss(trainer.model, inputs)

    def ours(leaf):
        return L.grpo_loss(leaf, old, ref, adv, mask, beta=beta, epsilon_low=eps, epsilon_high=eps_high,
                           loss_type=loss_type, importance_sampling_level=level, max_completion_length=T).loss

    (trl_value, trl_grad), (value, grad) = _loss_and_grad(trl_loss, logps), _loss_and_grad(ours, logps)
    assert value.item() == pytest.approx(trl_value.item(), abs=1e-6)
    assert torch.allclose(grad, trl_grad, atol=1e-6)
    out = L.grpo_loss(logps, old, ref, adv, mask, beta=beta, epsilon_low=eps, epsilon_high=eps_high,
                      loss_type=loss_type, importance_sampling_level=level, max_completion_length=T)
    assert out.clip_frac > 0  # the batch exercises the clipping
    metrics = {k: v[-1] for k, v in trainer._metrics["train"].items()}
    assert out.clip_frac.item() == pytest.approx(metrics["clip_ratio/region_mean"], abs=1e-6)
    # TRL logs the bias-corrected term ρ·k3; rlaif's `kl` is the plain k3 (the recipe logs what it wants)
    assert L.masked_mean(out.kl * out.ratio, mask).item() == pytest.approx(metrics["kl"], abs=1e-6)


@pytest.mark.parametrize("loss_type,level,extra", [
    ("cispo", "token", {"epsilon_high": 1.2}), ("cispo", "sequence", {"epsilon_high": 1.2}),
    ("sapo", "token", {}), ("sapo", "sequence", {"sapo_temperature_pos": 0.7, "sapo_temperature_neg": 1.6})])
def test_cispo_and_sapo_equal_trl(tiny_model_dir, tmp_path, loss_type, level, extra):
    """TRL 1.16's cispo and sapo loss types, token- and sequence-level (GSPO) ratios, with the KL term: value and
    gradient, and CISPO's clip share against TRL's `cispo_clip_ratio`."""
    logps, old, ref, adv, mask = _tensors()
    trainer = _build("GRPO", tiny_model_dir, tmp_path, beta=0.04, epsilon=0.2, loss_type=loss_type,
                     importance_sampling_level=level, **extra)

    def trl_loss(leaf):
        inputs = {**_trl_inputs(mask), "advantages": adv, "old_per_token_logps": old, "ref_per_token_logps": ref,
                  "num_items_in_batch": mask.sum()}
        return _with_fixed_logps(trainer, leaf)._compute_loss(trainer.model, inputs)

    def ours(leaf):
        return L.grpo_loss(leaf, old, ref, adv, mask, beta=0.04, epsilon_low=0.2, loss_type=loss_type,
                           importance_sampling_level=level, max_completion_length=T, **extra).loss

    (trl_value, trl_grad), (value, grad) = _loss_and_grad(trl_loss, logps), _loss_and_grad(ours, logps)
    assert value.item() == pytest.approx(trl_value.item(), abs=1e-6)
    assert torch.allclose(grad, trl_grad, atol=1e-6)
    out = L.grpo_loss(logps, old, ref, adv, mask, beta=0.04, epsilon_low=0.2, loss_type=loss_type,
                      importance_sampling_level=level, **extra)
    if loss_type == "cispo":
        assert out.clip_high > 0  # the batch exercises the cap
        assert out.clip_high.item() == pytest.approx(trainer._metrics["train"]["cispo_clip_ratio"][-1], abs=1e-6)


def test_zero_std_groups_equal_trls_count():
    """`frac_reward_zero_std` as TRL 1.16 computes it (isclose of its nanstd per group to 0) on random groups, some
    flat, some with NaNs."""
    from trl.trainer.utils import nanstd

    g = torch.Generator().manual_seed(5)
    r = torch.randint(0, 3, (40, 4), generator=g).float()
    r[::3] = 1.0
    r[torch.rand(40, 4, generator=g) < 0.2] = math.nan
    trl_flat = torch.isclose(nanstd(r, dim=1), torch.zeros(40))
    assert torch.equal(L.zero_std_groups(r.view(-1), 4), trl_flat) and 0 < trl_flat.sum() < 40


def test_rloo_loss_equals_trl(tiny_model_dir, tmp_path):
    logps, old, ref, adv, mask = _tensors()
    # sequence log-ratios (0.4, -0.1, 0.1, 0.3): row 0 (A > 0, ρ = 1.49) clips high, the others do not
    logps = old + (torch.tensor([0.4, -0.1, 0.1, 0.3]) / mask.sum(1))[:, None]
    trainer = _build("RLOO", tiny_model_dir, tmp_path, beta=0.05, epsilon=0.2, epsilon_high=0.28)

    def trl_loss(leaf):
        inputs = {**_trl_inputs(mask), "advantages": adv, "old_logps": (old * mask).sum(1)}
        return _with_fixed_logps(trainer, leaf)._compute_loss(trainer.model, inputs)

    def ours(leaf):
        return L.rloo_loss(leaf, old, adv, mask, epsilon_low=0.2, epsilon_high=0.28).loss

    (trl_value, trl_grad), (value, grad) = _loss_and_grad(trl_loss, logps), _loss_and_grad(ours, logps)
    assert value.item() == pytest.approx(trl_value.item(), abs=1e-6)
    assert torch.allclose(grad, trl_grad, atol=1e-6)
    out = L.rloo_loss(logps, old, adv, mask, epsilon_low=0.2, epsilon_high=0.28)
    assert out.clip_frac.item() == pytest.approx(0.25)
    assert out.clip_frac.item() == pytest.approx(trainer._metrics["train"]["clip_ratio/region_mean"][-1], abs=1e-6)
