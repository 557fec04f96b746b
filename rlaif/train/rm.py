"""Reward-model recipe (Bradley–Terry, soft labels, optional margin and reward centering), top to bottom.

    rlaif train rm --data prefs.jsonl --model local -o runs/rm [--config rm.yaml] [key=value ...]

1. data: preference pairs (rlaif or TRL format), held-out split by prompt, chat-template tokens;
2. model: the base model with a one-output sequence-classification head (LoRA optional);
3. train: chosen and rejected scored in one forward pass (sharing the prompt), reward read at each
   response's last token; evaluate; save a checkpoint that AutoModelForSequenceClassification loads,
   and that rlaif.train.reward_model.RewardScorer scores with.
"""
from __future__ import annotations

from typing import Any

import torch

from rlaif.train.checkpoint import save_final
from rlaif.train.config import RMConfig
from rlaif.train.data import load_pairs
from rlaif.train.losses import bradley_terry_loss
from rlaif.train.modeling import SequenceRewards
from rlaif.train.offline import LossOut, TrainResult, fit
from rlaif.train.prelude import RecipeRun, returns_finished_run, start_recipe
from rlaif.train.runtime import wrap


@returns_finished_run
def train_rm(config: RMConfig | dict | None = None, **overrides: Any) -> TrainResult:
    # 1. data and 2. model (the shared prelude): pairs split by prompt, tokens, and a scalar head on the base
    # model (seeded, so the new head is the same on every process)
    with start_recipe("rm", config, overrides, lambda cfg, file: load_pairs(file, cfg.margin_field),
                      head="reward") as run:
        return _train(run)


def _train(run: RecipeRun) -> TrainResult:
    cfg: RMConfig = run.cfg

    def labels(examples) -> dict:
        p = None
        if cfg.soft_labels and any(e.p_chosen is not None for e in examples):
            p = torch.tensor([1.0 if e.p_chosen is None else e.p_chosen for e in examples])
        margin = torch.tensor([e.margin for e in examples]) if cfg.margin_field else None
        return {"p": p, "margin": margin}

    train_labels, eval_labels = labels(run.train_ex), labels(run.eval_ex)
    scorer = SequenceRewards(run.model).to(run.rt.device)

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
    module = wrap(scorer, run.rt)
    result = fit(cfg, run.rt, module, run.items, run.eval_items, loss_fn, run.pad_id, run.share, run.out,
                 prepare=lambda batch: train_labels, eval_prepare=lambda: eval_labels, progress_label="rm")
    save_final(run.out, run.rt, module, run.tok, result, cfg.model_dump())
    return result
