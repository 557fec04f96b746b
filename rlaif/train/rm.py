"""Reward-model recipe (Bradley–Terry, soft labels, optional margin and reward centering), top to bottom.

    rlaif train rm --data prefs.jsonl --model local -o runs/rm [--config rm.yaml] [key=value ...]

1. data: preference pairs (rlaif or TRL format), held-out split by prompt, chat-template tokens;
2. model: the base model with a one-output sequence-classification head (LoRA optional);
3. train: chosen and rejected scored in one forward pass (sharing the prompt), reward read at each
   response's last token; evaluate; save a checkpoint that AutoModelForSequenceClassification loads,
   and that rlaif.train.reward.RewardScorer scores with.
"""
from __future__ import annotations

from typing import Any

import torch

from rlaif.train.common import encode_all, output_dir, resolve_config, seed_everything, train_eval_split
from rlaif.train.config import RMConfig
from rlaif.train.data import load_pairs
from rlaif.train.loop import LossOut, TrainResult, fit, save_final
from rlaif.train.losses import bradley_terry_loss
from rlaif.train.modeling import (
    SequenceRewards,
    attention_supports_shared_prompt,
    load_model,
    load_tokenizer,
    model_path,
)
from rlaif.train.runtime import setup, wrap
from rlaif.train.tokenize import ChatTokenizer


def train_rm(config: RMConfig | dict | None = None, **overrides: Any) -> TrainResult:
    cfg: RMConfig = resolve_config("rm", config, overrides)  # type: ignore[assignment]
    out = output_dir(cfg, "rm")
    rt = setup(cfg)
    seed_everything(cfg.seed)

    # 1. data
    path = model_path(cfg.model)
    tok = load_tokenizer(path)
    train_ex, eval_ex = train_eval_split(cfg, lambda f: load_pairs(f, cfg.margin_field))
    encoder = ChatTokenizer(tok, cfg.max_length, cfg.max_prompt_length)
    items, eval_items = encode_all(encoder, train_ex), encode_all(encoder, eval_ex)

    def labels(examples) -> dict:
        p = None
        if cfg.soft_labels and any(e.p_chosen is not None for e in examples):
            p = torch.tensor([1.0 if e.p_chosen is None else e.p_chosen for e in examples])
        margin = torch.tensor([e.margin for e in examples]) if cfg.margin_field else None
        return {"p": p, "margin": margin}

    train_labels, eval_labels = labels(train_ex), labels(eval_ex)

    # 2. model: a scalar head on the base model (seeded, so the new head is the same on every process)
    model = load_model(path, "reward", tok, cfg.lora, rt.gradient_checkpointing)
    share = cfg.share_prompt and attention_supports_shared_prompt(model)
    scorer = SequenceRewards(model).to(rt.device)

    # 3. the loss of one micro-batch
    def loss_fn(module, batch, idx: list[int], ctx: dict) -> LossOut:
        rewards = module(batch)
        rc, rr = rewards[0::2], rewards[1::2]
        p = ctx["p"][idx].to(rewards) if ctx["p"] is not None else None
        margin = ctx["margin"][idx].to(rewards) if ctx["margin"] is not None else None
        res = bradley_terry_loss(rc, rr, margin=margin, p_chosen=p, center_coef=cfg.center_rewards_coef)
        n = torch.tensor(float(len(idx)))
        return LossOut(res.losses, {
            "rewards_chosen": (res.rewards_chosen.sum(), n),
            "rewards_rejected": (res.rewards_rejected.sum(), n),
            "reward_accuracy": ((res.rewards_chosen > res.rewards_rejected).float().sum(), n),
            "reward_margin": ((res.rewards_chosen - res.rewards_rejected).sum(), n),
            "kl": (torch.zeros(()), torch.zeros(())),  # a reward model has no reference policy: reported as null
        })

    # 4. train, evaluate, save
    module = wrap(scorer, rt)
    result = fit(cfg, rt, module, items, eval_items, loss_fn, tok.pad_token_id, share, out,
                 prepare=lambda batch: train_labels, eval_prepare=lambda: eval_labels, progress_label="rm")
    save_final(out, rt, module, tok, result, cfg.model_dump())
    return result
