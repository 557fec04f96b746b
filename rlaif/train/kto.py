"""KTO recipe (Ethayarajh et al. 2024), top to bottom.

    rlaif train kto --data kto.jsonl --model local -o runs/kto [--config kto.yaml] [key=value ...]

1. data: {prompt, completion, label} lines (a preference file is unpaired: chosen → desirable,
   rejected → undesirable), held-out split by prompt; each example also gets a fixed mismatched
   partner (its prompt with another example's completion) for the KL reference point;
2. model: the policy (LoRA optional);
3. reference log-probs of the examples and of the mismatched pairs, once, cached on disk;
4. train: before each step the reference point z0 = max(0, mean log π/π_ref on the global batch's
   mismatched pairs) is measured without gradients over the whole global batch (all processes), so
   it does not depend on how the batch is split; then the weighted KTO loss; evaluate; save.
"""
from __future__ import annotations

from typing import Any

import torch

from rlaif.train.batching import collate, row_cost
from rlaif.train.common import encode_all, output_dir, resolve_config, seed_everything, train_eval_split
from rlaif.train.config import KTOConfig
from rlaif.train.data import load_unpaired, mismatched_partners
from rlaif.train.loop import (
    LossOut,
    TrainResult,
    cached_reference,
    fit,
    micro_batches_for,
    per_sequence,
    save_final,
)
from rlaif.train.losses import kto_loss
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
from rlaif.train.tokenize import ChatTokenizer, Tokenized


def train_kto(config: KTOConfig | dict | None = None, **overrides: Any) -> TrainResult:
    cfg: KTOConfig = resolve_config("kto", config, overrides)  # type: ignore[assignment]
    out = output_dir(cfg, "kto")
    rt = setup(cfg)
    seed_everything(cfg.seed)

    # 1. data, with a mismatched (prompt, other completion) partner per example
    path = model_path(cfg.model)
    tok = load_tokenizer(path)
    train_ex, eval_ex = train_eval_split(cfg, load_unpaired)
    encoder = ChatTokenizer(tok, cfg.max_length, cfg.max_prompt_length)
    items, eval_items = encode_all(encoder, train_ex), encode_all(encoder, eval_ex)

    def mismatched(examples) -> list[Tokenized]:
        partner = mismatched_partners(len(examples), cfg.seed)
        return [encoder(e.prompt, examples[j].completions) for e, j in zip(examples, partner, strict=True)]

    kl_items, eval_kl_items = mismatched(train_ex), mismatched(eval_ex)
    desirable = torch.tensor([bool(e.desirable) for e in train_ex])
    eval_desirable = torch.tensor([bool(e.desirable) for e in eval_ex])

    # 2. model
    model = load_model(path, "causal", tok, cfg.lora, rt.gradient_checkpointing)
    share = cfg.share_prompt and attention_supports_shared_prompt(model)
    policy = SequenceLogProbs(model).to(rt.device)
    pad = tok.pad_token_id

    # 3. reference log-probs of examples and mismatched pairs, once, on disk
    every = items + eval_items + kl_items + eval_kl_items

    def reference() -> torch.Tensor:
        if cfg.reference:
            ref = SequenceLogProbs(load_model(model_path(cfg.reference), "causal", tok)).to(rt.device).eval()
            logps = per_sequence(lambda b: ref(b)[0], every, rt, cfg, pad, share)
            del ref
            return logps
        policy.eval()
        with reference_mode(model):
            logps = per_sequence(lambda b: policy(b)[0], every, rt, cfg, pad, share)
        policy.train()
        return logps

    key = cache_key("kto", path, cfg.reference, cfg.lora and cfg.lora.model_dump(), str(rt.autocast_dtype),
                    cfg.seed, [(it.prompt, it.completions) for it in every])
    ref_all, ref_seconds = cached_reference(out / "reference_logps.pt", key, rt, reference)
    ref_all = ref_all[:, 0]
    n, m = len(items), len(eval_items)
    ref_train, ref_eval = ref_all[:n], ref_all[n:n + m]
    ref_kl, ref_eval_kl = ref_all[n + m:2 * n + m], ref_all[2 * n + m:]

    # 4. the KL reference point of a global batch, and the loss of one micro-batch
    def reference_point(module, kl_set: list[Tokenized], ref_set: torch.Tensor, idx: list[int]) -> torch.Tensor:
        total = torch.zeros(2, dtype=torch.float64, device=rt.device)
        costs = [row_cost(kl_set[i], share) for i in idx]
        with torch.no_grad():
            for local, keep in micro_batches_for(len(idx), costs, rt, cfg.micro_batch_size):
                part = [idx[j] for j in local]
                batch = collate([kl_set[i] for i in part], pad, share).to(rt.device)
                with rt.autocast():
                    logps, _ = module(batch)
                if keep:
                    total[0] += (logps.double() - ref_set[part].to(rt.device).double()).sum()
                    total[1] += len(part)
        total = rt.all_reduce(total)
        return (total[0] / total[1]).float().clamp(min=0.0).cpu()

    def loss_fn(module, batch, idx: list[int], ctx: dict) -> LossOut:
        logps, _ = module(batch)
        ref = ctx["ref"][idx].to(logps)
        good = ctx["desirable"][idx].to(logps.device)
        res = kto_loss(logps, ref, good, ctx["kl"].to(logps), beta=cfg.beta,
                       desirable_weight=cfg.desirable_weight, undesirable_weight=cfg.undesirable_weight)
        count = torch.tensor(float(len(idx)))
        correct = torch.where(good, res.rewards > cfg.beta * res.kl, res.rewards < cfg.beta * res.kl)
        return LossOut(res.losses, {
            "rewards_chosen": ((res.rewards * good).sum(), good.sum().float()),
            "rewards_rejected": ((res.rewards * ~good).sum(), (~good).sum().float()),
            "reward_accuracy": (correct.float().sum(), count),  # reward on the label's side of β·z0
            "kl": (res.kl * len(idx), count),
        })

    # 5. train, evaluate, save
    module = wrap(policy, rt)

    def prepare(batch_idx: list[int]) -> dict:
        return {"ref": ref_train, "desirable": desirable,
                "kl": reference_point(module, kl_items, ref_kl, batch_idx)}

    def eval_prepare() -> dict:
        return {"ref": ref_eval, "desirable": eval_desirable,
                "kl": reference_point(module, eval_kl_items, ref_eval_kl, list(range(m)))}

    result = fit(cfg, rt, module, items, eval_items, loss_fn, pad, share, out, prepare=prepare,
                 eval_prepare=eval_prepare, progress_label="kto")
    result.reference_seconds = round(ref_seconds, 3)
    save_final(out, rt, module, tok, result, cfg.model_dump())
    return result
