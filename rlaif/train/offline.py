"""The offline step source: length-grouped global batches of preference data, gradient accumulation over
micro-batches, evaluation on the held-out split; the engine (`engine.py`) runs the steps.

Loss normalization: each micro-batch contributes sum(per-example loss) / (examples in the *global*
batch), times the process count because DDP averages gradients over processes. So gradient
accumulation and data parallelism give the same loss and gradients as one big batch.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from rlaif.errors import ConfigError
from rlaif.train.batching import collate, epoch_batches, local_micro_batches, micro_batches_for, row_cost
from rlaif.train.checkpoint import TrainResult
from rlaif.train.config import TrainConfig
from rlaif.train.engine import Engine, MetricSums, run_steps
from rlaif.train.runtime import Runtime, sync_context
from rlaif.train.tokenize import Tokenized


@dataclass
class LossOut:
    """A micro-batch's per-example losses and its metric numerators/denominators (summed over examples)."""

    losses: torch.Tensor
    stats: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)


LossFn = Callable[[nn.Module, "object", list[int], dict], LossOut]


class StepSums(NamedTuple):
    """This process's sums over one global batch: loss, metric numerators/denominators, tokens."""

    loss_sum: torch.Tensor
    stats: MetricSums
    tokens: int


def metrics_row(split: str, step: int, sums: MetricSums, rt: Runtime) -> dict:
    """The row of a step or an evaluation: `sums` (with the loss) reduced over processes."""
    means = sums.reduce(rt)
    row = {"split": split, "step": step, "loss": means.pop("loss"), **means}
    if "reward_margin" not in row:  # unpaired (KTO): the difference of the two means, when both exist
        both = row.get("rewards_chosen") is not None and row.get("rewards_rejected") is not None
        row["reward_margin"] = row["rewards_chosen"] - row["rewards_rejected"] if both else None
    return row


# ---- forward and backward passes -------------------------------------------------------------------
def evaluate(module: nn.Module, loss_fn: LossFn, items: list[Tokenized], rt: Runtime, cfg: TrainConfig,
             pad_id: int, share_prompt: bool, step: int, eval_prepare: Callable[[], dict] | None) -> dict:
    module.eval()
    context = eval_prepare() if eval_prepare else {}
    costs = [row_cost(it, share_prompt) for it in items]
    sums = MetricSums()
    with torch.no_grad():
        for mb, keep in micro_batches_for(len(items), costs, rt, cfg.micro_batch_size):
            batch = collate([items[i] for i in mb], pad_id, share_prompt).to(rt.device)
            with rt.autocast():
                out = loss_fn(module, batch, mb, context)
            if not keep:
                continue
            sums.add("loss", out.losses.double().sum(), len(mb))
            sums.add_all(out.stats)
    module.train()
    return metrics_row("eval", step, sums, rt)


def accumulate_gradients(module: nn.Module, loss_fn: LossFn, items: list[Tokenized], micro: list[list[int]],
                         n_global: int, rt: Runtime, pad_id: int, share_prompt: bool, context: dict) -> StepSums:
    """Forward and backward over this process's micro-batches of one global batch.

    Each micro-batch adds sum(losses) · world / n_global, so the summed gradient is the gradient of the
    global-batch mean, however the batch is split (DDP divides by `world` when it averages)."""
    loss_sum, stats, tokens = torch.zeros((), dtype=torch.float64), MetricSums(), 0
    for j, mb in enumerate(micro):
        batch = collate([items[i] for i in mb], pad_id, share_prompt).to(rt.device)
        tokens += batch.n_tokens
        with sync_context(module, rt, last=j == len(micro) - 1):
            with rt.autocast():
                out = loss_fn(module, batch, mb, context)
            (out.losses.sum() * (rt.world / n_global)).backward()
        loss_sum += out.losses.detach().double().sum().cpu()
        stats.add_all(out.stats)
    return StepSums(loss_sum, stats, tokens)


# ---- the step source -------------------------------------------------------------------------------
@dataclass
class BatchPlan:
    """Which examples each optimizer step trains on: length-grouped global batches, reshuffled each epoch."""

    cfg: TrainConfig
    world: int
    costs: list[int]
    per_epoch: int  # optimizer steps per epoch
    total: int  # optimizer steps of the whole run
    epoch: int = 0  # the epoch whose batches are held
    batches: list[list[int]] = field(default_factory=list)

    @classmethod
    def make(cls, cfg: TrainConfig, rt: Runtime, items: list[Tokenized], share_prompt: bool) -> BatchPlan:
        if cfg.batch_size % rt.world:
            raise ConfigError(f"batch_size={cfg.batch_size} does not split over {rt.world} processes. "
                              f"Fix: use a multiple of {rt.world}")
        costs = [row_cost(it, share_prompt) for it in items]
        first = epoch_batches(costs, cfg.batch_size, rt.world, cfg.seed, 0, cfg.group_by_length)
        if not first:
            raise ValueError("no training batch: fewer examples than processes")
        # as in transformers' Trainer, max_steps (when given) overrides epochs and cycles through the data
        total = cfg.max_steps or max(1, math.ceil(cfg.epochs * len(first)))
        return cls(cfg, rt.world, costs, len(first), total, 0, first)

    def batch(self, step: int) -> list[int]:
        """The global batch of the optimizer step that follows `step` steps."""
        epoch, index = divmod(step, self.per_epoch)
        if epoch != self.epoch:
            self.epoch = epoch
            self.batches = epoch_batches(self.costs, self.cfg.batch_size, self.world, self.cfg.seed, epoch,
                                         self.cfg.group_by_length)
        return self.batches[index]


@dataclass
class OfflineSteps:
    """The engine's step source for rm, dpo and kto: a step trains on the plan's next global batch."""

    cfg: TrainConfig
    rt: Runtime
    loss_fn: LossFn
    items: list[Tokenized]
    eval_items: list[Tokenized]
    pad_id: int
    share_prompt: bool
    prepare: Callable[[list[int]], dict] | None
    eval_prepare: Callable[[], dict] | None
    plan: BatchPlan
    label: str
    stops_on_nonfinite = False  # an offline run writes non-finite rows and goes on, as it always has

    @property
    def total(self) -> int:
        return self.plan.total

    @property
    def optimizer_steps(self) -> int:
        return self.plan.total

    def evaluate(self, engine: Engine) -> dict:
        return evaluate(engine.module, self.loss_fn, self.eval_items, self.rt, self.cfg, self.pad_id,
                        self.share_prompt, engine.step, self.eval_prepare)

    def step(self, engine: Engine) -> dict:
        """One optimizer step on the next global batch; its train metrics row."""
        cfg, rt, module = self.cfg, self.rt, engine.module
        t0, c0 = time.perf_counter(), time.process_time()
        batch_idx = self.plan.batch(engine.step)
        context = self.prepare(batch_idx) if self.prepare else {}
        micro = local_micro_batches(batch_idx, self.plan.costs, rt.rank, rt.world, cfg.micro_batch_size)
        sums = accumulate_gradients(module, self.loss_fn, self.items, micro, len(batch_idx), rt, self.pad_id,
                                    self.share_prompt, context)
        lr = engine.scheduler.get_last_lr()[0]
        grad_norm = engine.optimizer_step(stop_on_nonfinite=False)
        step = engine.step + 1
        sums.stats.add("loss", sums.loss_sum, sum(len(m) for m in micro))
        row = metrics_row("train", step, sums.stats, rt)
        tok_total = float(rt.all_reduce(torch.tensor(float(sums.tokens), device=rt.device)))
        dt = time.perf_counter() - t0
        row.update(grad_norm=grad_norm, lr=lr, tokens_per_s=tok_total / dt,
                   epoch=round(step / self.plan.per_epoch, 4), step_s=round(dt, 4),
                   cpu_s=round(time.process_time() - c0, 4),  # cpu_s: this process, all threads
                   elapsed_s=round(engine.elapsed(), 3))
        return row

    def after_step(self, engine: Engine, timed_out: bool) -> dict | None:
        """An evaluation every `eval_every` steps (not at the last: `finish` evaluates, nor when out of time)."""
        cfg, step = self.cfg, engine.step
        if self.eval_items and cfg.eval_every and step % cfg.eval_every == 0 and step < self.total and not timed_out:
            return self.evaluate(engine)
        return None

    def finish(self, engine: Engine) -> dict | None:
        return self.evaluate(engine) if self.eval_items else None

    def info(self, row: dict) -> str:
        """The progress bar's text for one train metrics row: loss, accuracy when there is one, throughput."""
        acc, margin = row.get("reward_accuracy"), row.get("reward_margin")
        info = f"loss {row['loss']:.4f}" + (f" acc {acc:.2f}" if acc is not None else "")
        info += f" margin {margin:.3f}" if margin is not None else ""
        return f"{info} {row['tokens_per_s']:.0f} tok/s"

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def fit(cfg: TrainConfig, rt: Runtime, module: nn.Module, items: list[Tokenized], eval_items: list[Tokenized],
        loss_fn: LossFn, pad_id: int, share_prompt: bool, out: Path,
        prepare: Callable[[list[int]], dict] | None = None, eval_prepare: Callable[[], dict] | None = None,
        progress_label: str = "train") -> TrainResult:
    """Run optimizer steps until the epochs, `max_steps` or `max_seconds` run out; resume when a checkpoint exists.

    `prepare(global_batch_indices) -> context` runs before a step's micro-batches (KTO's KL estimate)."""
    plan = BatchPlan.make(cfg, rt, items, share_prompt)
    source = OfflineSteps(cfg, rt, loss_fn, items, eval_items, pad_id, share_prompt, prepare, eval_prepare, plan,
                          progress_label)
    return run_steps(cfg, rt, module, out, source)
