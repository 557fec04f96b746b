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

from rlaif.train.checkpoint import save_final
from rlaif.train.config import KTOConfig
from rlaif.train.data import load_unpaired, mismatched_partners
from rlaif.train.losses import kto_kl_estimate, kto_loss
from rlaif.train.modeling import SequenceLogProbs
from rlaif.train.offline import LossOut, TrainResult, fit
from rlaif.train.prelude import RecipeRun, returns_finished_run, start_recipe
from rlaif.train.reference import per_sequence, reference_logps
from rlaif.train.runtime import wrap
from rlaif.train.tokenize import Tokenized


@returns_finished_run
def train_kto(config: KTOConfig | dict | None = None, **overrides: Any) -> TrainResult:
    # 1. data and 2. model (the shared prelude), then a mismatched (prompt, other completion) partner per example
    with start_recipe("kto", config, overrides, lambda _cfg, file: load_unpaired(file), head="causal") as run:
        return _train(run)


def _train(run: RecipeRun) -> TrainResult:
    cfg: KTOConfig = run.cfg
    items, eval_items = run.items, run.eval_items

    def mismatched(examples) -> list[Tokenized]:
        partner = mismatched_partners(len(examples), cfg.seed)
        return [run.encoder(e.prompt, examples[j].completions) for e, j in zip(examples, partner, strict=True)]

    kl_items, eval_kl_items = mismatched(run.train_ex), mismatched(run.eval_ex)
    desirable = torch.tensor([bool(e.desirable) for e in run.train_ex])
    eval_desirable = torch.tensor([bool(e.desirable) for e in run.eval_ex])
    policy = SequenceLogProbs(run.model).to(run.rt.device)

    # 3. reference log-probs of examples and mismatched pairs, once, on disk
    reference = reference_logps(run, policy, items + eval_items + kl_items + eval_kl_items, cfg.seed)
    ref_all = reference.logps[:, 0]
    n, m = len(items), len(eval_items)
    ref_train, ref_eval = ref_all[:n], ref_all[n:n + m]
    ref_kl, ref_eval_kl = ref_all[n + m:2 * n + m], ref_all[2 * n + m:]

    # 4. the loss of one micro-batch, given the batch's KL reference point (measured in `prepare` below)
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
    module = wrap(policy, run.rt)

    def prepare(batch_idx: list[int]) -> dict:
        return {"ref": ref_train, "desirable": desirable,
                "kl": kl_reference_point(run, module, kl_items, ref_kl, batch_idx)}

    def eval_prepare() -> dict:
        return {"ref": ref_eval, "desirable": eval_desirable,
                "kl": kl_reference_point(run, module, eval_kl_items, ref_eval_kl, list(range(m)))}

    result = fit(cfg, run.rt, module, items, eval_items, loss_fn, run.pad_id, run.share, run.out, prepare=prepare,
                 eval_prepare=eval_prepare, progress_label="kto")
    result.reference_seconds = round(reference.seconds, 3)
    save_final(run.out, run.rt, module, run.tok, result, cfg.model_dump())
    return result


def kl_reference_point(run: RecipeRun, module, kl_items: list[Tokenized], ref_logps: torch.Tensor,
                       idx: list[int]) -> torch.Tensor:
    """z0 of the global batch `idx`: `kto_kl_estimate` on the policy's log-probs of its mismatched pairs,
    measured without gradients over the whole batch (all processes), so no split of the batch changes it."""
    policy_logps = per_sequence(lambda b: module(b)[0], [kl_items[i] for i in idx], run.rt, run.cfg, run.pad_id,
                                run.share)[:, 0]
    return kto_kl_estimate(policy_logps.double(), ref_logps[idx].double()).float()
