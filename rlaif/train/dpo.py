"""DPO recipe (sigmoid with soft labels / cDPO label smoothing, or IPO), read top to bottom.

    rlaif train dpo --data prefs.jsonl --model local -o runs/dpo [--config dpo.yaml] [beta=0.1 ...]

1. data: preference pairs (rlaif or TRL format), held-out split by prompt, chat-template tokens;
2. model: the policy (optionally LoRA adapters on it);
3. reference log-probs: computed once with the starting weights (adapters off for LoRA) and
   cached on disk, so no reference model is in memory while training;
4. train: chosen and rejected in one forward pass (sharing the prompt), loss normalized by the
   global batch; evaluate on the held-out split; save an HF-format checkpoint.
"""
from __future__ import annotations

from typing import Any

import torch

from rlaif.train.checkpoint import save_final
from rlaif.train.config import DPOConfig, TrainConfig
from rlaif.train.data import load_pairs
from rlaif.train.losses import dpo_loss
from rlaif.train.modeling import SequenceLogProbs
from rlaif.train.offline import LossOut, TrainResult, fit
from rlaif.train.prelude import RecipeRun, returns_finished_run, start_recipe
from rlaif.train.reference import reference_logps
from rlaif.train.runtime import wrap


@returns_finished_run
def train_dpo(config: DPOConfig | dict | None = None, **overrides: Any) -> TrainResult:
    # 1. data and 2. model (the shared prelude: config, runtime, pairs split by prompt, tokens, the policy)
    with start_recipe("dpo", config, overrides, lambda _cfg, file: load_pairs(file), head="causal") as run:
        return _train(run)


def _train(run: RecipeRun) -> TrainResult:
    cfg: DPOConfig = run.cfg
    items, eval_items = run.items, run.eval_items

    def soft_labels(examples) -> torch.Tensor | None:
        if not cfg.soft_labels or all(e.p_chosen is None for e in examples):
            return None
        return torch.tensor([1.0 if e.p_chosen is None else e.p_chosen for e in examples])

    p_train, p_eval = soft_labels(run.train_ex), soft_labels(run.eval_ex)
    policy = SequenceLogProbs(run.model).to(run.rt.device)

    # 3. reference log-probs, once, on disk
    reference = reference_logps(run, policy, items + eval_items)
    ref_train, ref_eval = reference.logps[:len(items)], reference.logps[len(items):]

    # 4. the loss of one micro-batch
    def loss_fn(module, batch, idx: list[int], ctx: dict) -> LossOut:
        logps, counts = module(batch)
        ref = ctx["ref"][idx].to(logps)
        pc, pr, rc, rr = logps[0::2], logps[1::2], ref[:, 0], ref[:, 1]
        if cfg.loss_type == "ipo":  # IPO on per-token mean log-probs (the normalization its authors use)
            nc, nr = counts[0::2].clamp(min=1), counts[1::2].clamp(min=1)
            pc, pr, rc, rr = pc / nc, pr / nr, rc / nc, rr / nr
        p = ctx["p"][idx].to(logps) if ctx["p"] is not None else None
        res = dpo_loss(pc, pr, rc, rr, beta=cfg.beta, loss_type=cfg.loss_type, p_chosen=p,
                       label_smoothing=cfg.label_smoothing)
        n = torch.tensor(float(len(idx)))
        log_ratio = ((logps[0::2] - ref[:, 0]) + (logps[1::2] - ref[:, 1])).detach() / 2
        return LossOut(res.losses, {
            "rewards_chosen": (res.rewards_chosen.sum(), n),
            "rewards_rejected": (res.rewards_rejected.sum(), n),
            "reward_accuracy": ((res.rewards_chosen > res.rewards_rejected).float().sum(), n),
            "reward_margin": ((res.rewards_chosen - res.rewards_rejected).sum(), n),
            "kl": (log_ratio.sum(), n),  # mean log π/π_ref of the data's responses: an off-policy KL estimate
        })

    # 5. train, evaluate, save
    module = wrap(policy, run.rt)
    result = fit(cfg, run.rt, module, items, eval_items, loss_fn, run.pad_id, run.share, run.out,
                 prepare=lambda batch: {"ref": ref_train, "p": p_train},
                 eval_prepare=lambda: {"ref": ref_eval, "p": p_eval}, progress_label="dpo")
    result.reference_seconds = round(reference.seconds, 3)
    save_final(run.out, run.rt, module, run.tok, result, cfg.model_dump())
    return result


__all__ = ["train_dpo", "DPOConfig", "TrainConfig"]
