"""Reference log-probs: one no-grad pass over every example, computed once per run and cached on disk, so no
reference model stays in memory while training."""
from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from rlaif.train.batching import collate, micro_batches_for, row_cost
from rlaif.train.config import TrainConfig
from rlaif.train.modeling import SequenceLogProbs, cache_key, load_model, model_path, reference_mode
from rlaif.train.runtime import Runtime
from rlaif.train.tokenize import Tokenized

if TYPE_CHECKING:
    from rlaif.train.prelude import RecipeRun


@dataclass
class ReferenceLogps:
    logps: torch.Tensor  # (len(items), K): one row per item, one column per completion
    seconds: float  # time spent computing them (0 when read from the cache)


@torch.no_grad()
def per_sequence(fn: Callable, items: list[Tokenized], rt: Runtime, cfg: TrainConfig, pad_id: int,
                 share_prompt: bool) -> torch.Tensor:
    """`fn(batch) -> (n_seqs,)` over all items, gathered on every process: a (len(items), K) tensor."""
    k = len(items[0].completions) if items else 1
    out = torch.zeros(len(items), k, dtype=torch.float64, device=rt.device)
    costs = [row_cost(it, share_prompt) for it in items]
    for mb, keep in micro_batches_for(len(items), costs, rt, cfg.micro_batch_size):
        batch = collate([items[i] for i in mb], pad_id, share_prompt).to(rt.device)
        with rt.autocast():
            vals = fn(batch)
        if keep:
            out[torch.tensor(mb, device=rt.device)] = vals.view(len(mb), k).double()
    return rt.all_reduce(out).float().cpu()  # each row was filled by exactly one process


def cached_reference(path: Path, key: str, rt: Runtime, compute: Callable[[], torch.Tensor]) -> ReferenceLogps:
    """`compute()`, or the tensor saved at `path` when it was saved under the same `key`."""
    if path.exists():
        saved = torch.load(path, map_location="cpu", weights_only=True)
        if saved.get("key") == key:
            return ReferenceLogps(saved["logps"], 0.0)
    t0 = time.perf_counter()
    logps = compute()
    seconds = time.perf_counter() - t0
    if rt.is_main:
        tmp = path.with_name(f".{path.name}.tmp")
        torch.save({"key": key, "logps": logps}, tmp)
        os.replace(tmp, path)
    rt.barrier()
    return ReferenceLogps(logps, seconds)


def reference_logps(run: RecipeRun, policy: SequenceLogProbs, items: list[Tokenized], *key_parts) -> ReferenceLogps:
    """Every item's log-probs under the reference: `cfg.reference` when given, else the policy's starting
    weights (adapters off under LoRA). Cached in OUT/reference_logps.pt under a key of everything that
    decides them (`key_parts`: the recipe's own, e.g. KTO's seed, which picks its mismatched pairs)."""
    cfg, rt = run.cfg, run.rt

    def compute() -> torch.Tensor:
        if cfg.reference:
            ref = SequenceLogProbs(load_model(model_path(cfg.reference), "causal", run.tok)).to(rt.device).eval()
            logps = per_sequence(lambda b: ref(b)[0], items, rt, cfg, run.pad_id, run.share)
            del ref
            return logps
        policy.eval()
        with reference_mode(run.model):
            logps = per_sequence(lambda b: policy(b)[0], items, rt, cfg, run.pad_id, run.share)
        policy.train()
        return logps

    key = cache_key(run.recipe, run.model_path, cfg.reference, cfg.lora and cfg.lora.model_dump(),
                    str(rt.autocast_dtype), *key_parts, [(it.prompt, it.completions) for it in items])
    return cached_reference(run.out / "reference_logps.pt", key, rt, compute)
