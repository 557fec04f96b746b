"""The trained module of an online recipe: the causal LM, and for PPO a value head on its last hidden state.

`Policy` is one nn.Module so DDP wraps it whole (its forward is the one that syncs gradients). A forward
scores a rollout's sampled ids as `rollout.token_logps` does (position ids counted from the first real token,
log_softmax(logits / temperature), the LM head only at the positions that predict response tokens), on
padded rows or, by default, on packed shared-prompt rows (`rollout.pack`), and, with a value head, reads one
value per response position from the same hidden states. The value head is a scalar linear layer on the
shared trunk (not a separate critic model, as TRL's old PPOTrainer used): one forward gives log-probs and
values, and no second model is held in memory.

The reference is the policy's starting weights: adapters off under LoRA (no copy), else a frozen copy.
"""
from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass

import torch
from torch import nn

from rlaif.train.modeling import _backbone, attention_supports_shared_prompt, base_model, lm_logits, reference_mode
from rlaif.train.rl.losses import entropy_from_logits
from rlaif.train.rl.rollout import Rollout, pack


@dataclass
class PolicyOut:
    logps: torch.Tensor  # (R, T) log π(sampled id), 0 outside the response mask
    entropy: torch.Tensor | None  # (R, T) entropy of π(· | prefix), or None
    values: torch.Tensor | None  # (R, T) the value head's V(prefix), 0 outside the mask, or None


class Policy(nn.Module):
    """The causal LM `model` (optionally with LoRA) and, when `value_head`, a zero-initialized scalar head.

    `packed`: forwards run on `rollout.pack` rows (a group's responses share one copy of its prompt, no padding
    inside a row; needs an attention implementation that takes a 4D mask), else on the padded (R, P + T)
    rows. Both give the same numbers up to float rounding (a test checks); packed computes fewer tokens."""

    def __init__(self, model: nn.Module, value_head: bool = False, packed: bool = False):
        super().__init__()
        self.model = model
        self.packed = packed
        self.value_head = None
        if value_head:
            hidden = base_model(model).config.hidden_size
            self.value_head = nn.Linear(hidden, 1)
            nn.init.zeros_(self.value_head.weight)  # V = 0 at the start: no value noise in the first advantages
            nn.init.zeros_(self.value_head.bias)

    def forward(self, r: Rollout, temperature: float, entropy: bool = False, values: bool = True,
                entropy_grad: bool = False) -> PolicyOut:
        """`entropy`: also the per-token entropy, with gradients only when `entropy_grad` (an entropy bonus):
        as a metric it would keep a softmax over the vocabulary alive until the backward pass."""
        if self.packed:
            pk = pack(r).to(r.response_ids.device)
            hidden = _backbone(self.model)(input_ids=pk.input_ids, attention_mask=pk.attention_mask,
                                           position_ids=pk.position_ids,
                                           use_cache=False).last_hidden_state[pk.src_row, pk.src_pos]  # (N, H)
            targets = r.response_ids[pk.dst_row, pk.dst_col]
            mask = None
        else:
            ids, attn = r.input_ids(), r.attention_mask()
            positions = (attn.cumsum(-1) - 1).clamp(min=0)
            t = r.response_ids.size(1)
            hidden = _backbone(self.model)(input_ids=ids, attention_mask=attn, position_ids=positions,
                                           use_cache=False).last_hidden_state[:, -t - 1:-1]  # (R, T, H)
            targets, mask = r.response_ids, r.response_mask
        logps, ent, v = self._heads(hidden, targets, temperature, entropy=entropy, entropy_grad=entropy_grad,
                                    values=values)
        if mask is not None:
            m = mask.to(logps)
            return PolicyOut(logps * m, None if ent is None else ent * m, None if v is None else v * m)
        grid = lambda x: None if x is None else x.new_zeros(r.response_ids.shape).index_put((pk.dst_row, pk.dst_col), x)
        return PolicyOut(grid(logps), grid(ent), grid(v))

    def _heads(self, hidden: torch.Tensor, targets: torch.Tensor, temperature: float, *, entropy: bool,
               entropy_grad: bool, values: bool) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Log-probs of `targets`, entropies and values from hidden states of any leading shape."""
        logits = lm_logits(self.model, hidden)
        if temperature > 0 and temperature != 1.0:
            logits = logits / temperature
        logps = logits.gather(-1, targets[..., None]).squeeze(-1) - torch.logsumexp(logits, dim=-1)
        ent = None
        if entropy:
            with torch.set_grad_enabled(entropy_grad and torch.is_grad_enabled()):
                ent = entropy_from_logits(logits)
        v = None
        if values and self.value_head is not None:
            v = self.value_head(hidden.float()).squeeze(-1)
        return logps, ent, v


class Reference:
    """Log-probs under the frozen starting policy: the policy with its adapters off (LoRA), a frozen copy of
    the starting model (full fine-tuning), or another model (`path`)."""

    def __init__(self, policy: Policy, lora: bool, other: nn.Module | None = None):
        self.policy = policy
        self.frozen: Policy | None = None
        if other is not None or not lora:
            model = other if other is not None else copy.deepcopy(policy.model)
            model.requires_grad_(False)
            self.frozen = Policy(model.eval(), packed=policy.packed and attention_supports_shared_prompt(model))

    @torch.no_grad()
    def logps(self, r: Rollout, temperature: float) -> torch.Tensor:
        if self.frozen is not None:
            return self.frozen(r, temperature).logps
        was_training = self.policy.training
        self.policy.eval()
        try:
            with reference_mode(self.policy.model):
                return self.policy(r, temperature, values=False).logps
        finally:
            self.policy.train(was_training)

    def to(self, device) -> Reference:
        if self.frozen is not None:
            self.frozen.to(device)
        return self


@contextlib.contextmanager
def evaluating(module: nn.Module):
    """No grad, eval mode (no dropout), restored after: the old-policy pass before an update."""
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        module.train(was_training)
