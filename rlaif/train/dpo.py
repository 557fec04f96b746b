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

from rlaif.train.common import encode_all, output_dir, resolve_config, seed_everything, train_eval_split
from rlaif.train.config import DPOConfig, TrainConfig
from rlaif.train.data import load_pairs
from rlaif.train.loop import LossOut, TrainResult, cached_reference, fit, per_sequence, save_final
from rlaif.train.losses import dpo_loss
from rlaif.train.modeling import (
    SequenceLogProbs,
    attention_supports_shared_prompt,
    cache_key,
    load_model,
    load_tokenizer,
    model_path,
    reference_mode,
)
from rlaif.train.runtime import setup, wrap
from rlaif.train.tokenize import ChatTokenizer


def train_dpo(config: DPOConfig | dict | None = None, **overrides: Any) -> TrainResult:
    cfg: DPOConfig = resolve_config("dpo", config, overrides)  # type: ignore[assignment]
    out = output_dir(cfg, "dpo")
    rt = setup(cfg)
    seed_everything(cfg.seed)

    # 1. data
    path = model_path(cfg.model)
    tok = load_tokenizer(path)
    train_ex, eval_ex = train_eval_split(cfg, load_pairs)
    encoder = ChatTokenizer(tok, cfg.max_length, cfg.max_prompt_length)
    items, eval_items = encode_all(encoder, train_ex), encode_all(encoder, eval_ex)

    def soft_labels(examples) -> torch.Tensor | None:
        if not cfg.soft_labels or all(e.p_chosen is None for e in examples):
            return None
        return torch.tensor([1.0 if e.p_chosen is None else e.p_chosen for e in examples])

    p_train, p_eval = soft_labels(train_ex), soft_labels(eval_ex)

    # 2. model
    model = load_model(path, "causal", tok, cfg.lora, rt.gradient_checkpointing)
    share = cfg.share_prompt and attention_supports_shared_prompt(model)
    policy = SequenceLogProbs(model).to(rt.device)

    # 3. reference log-probs, once, on disk
    def reference() -> torch.Tensor:
        all_items = items + eval_items
        if cfg.reference:
            ref = SequenceLogProbs(load_model(model_path(cfg.reference), "causal", tok)).to(rt.device).eval()
            logps = per_sequence(lambda b: ref(b)[0], all_items, rt, cfg, tok.pad_token_id, share)
            del ref
            return logps
        policy.eval()
        with reference_mode(model):
            logps = per_sequence(lambda b: policy(b)[0], all_items, rt, cfg, tok.pad_token_id, share)
        policy.train()
        return logps

    key = cache_key("dpo", path, cfg.reference, cfg.lora and cfg.lora.model_dump(), str(rt.autocast_dtype),
                    [(it.prompt, it.completions) for it in items + eval_items])
    ref_logps, ref_seconds = cached_reference(out / "reference_logps.pt", key, rt, reference)
    ref_train, ref_eval = ref_logps[:len(items)], ref_logps[len(items):]

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
    module = wrap(policy, rt)
    result = fit(cfg, rt, module, items, eval_items, loss_fn, tok.pad_token_id, share, out,
                 prepare=lambda batch: {"ref": ref_train, "p": p_train},
                 eval_prepare=lambda: {"ref": ref_eval, "p": p_eval}, progress_label="dpo")
    result.reference_seconds = round(ref_seconds, 3)
    save_final(out, rt, module, tok, result, cfg.model_dump())
    return result


__all__ = ["train_dpo", "DPOConfig", "TrainConfig"]
