"""The optimizer step loop every recipe shares: batches, gradient accumulation, metrics, evaluation, stopping.

Loss normalization: each micro-batch contributes sum(per-example loss) / (examples in the *global*
batch), times the process count because DDP averages gradients over processes. So gradient
accumulation and data parallelism give the same loss and gradients as one big batch.
"""
from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from rlaif.errors import ConfigError
from rlaif.progress import ProgressBar
from rlaif.records import JsonlAppender, iter_json_lines, write_jsonl
from rlaif.train.batching import collate, epoch_batches, local_micro_batches, micro_batches_for, row_cost
from rlaif.train.checkpoint import TrainResult, check_resumable, find_checkpoint, load_checkpoint, save_checkpoint
from rlaif.train.config import TrainConfig
from rlaif.train.runtime import Runtime, sync_context
from rlaif.train.tokenize import Tokenized


@dataclass
class LossOut:
    """A micro-batch's per-example losses and its metric numerators/denominators (summed over examples)."""

    losses: torch.Tensor
    stats: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)


LossFn = Callable[[nn.Module, "object", list[int], dict], LossOut]


# ---- optimizer -----------------------------------------------------------------------------------
def make_optimizer(model: nn.Module, cfg: TrainConfig, total_steps: int, device: torch.device):
    params = [p for p in model.parameters() if p.requires_grad]
    extra = {"fused": True} if device.type == "cuda" else {"foreach": True}
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, **extra)

    def factor(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / (cfg.warmup_steps + 1)
        if cfg.lr_scheduler == "constant":
            return 1.0
        frac = min(1.0, (step - cfg.warmup_steps) / max(1, total_steps - cfg.warmup_steps))
        return 1.0 - frac if cfg.lr_scheduler == "linear" else 0.5 * (1.0 + math.cos(math.pi * frac))

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)


# ---- metrics ---------------------------------------------------------------------------------------
class StepSums(NamedTuple):
    """This process's sums over one global batch: loss, metric numerators/denominators, tokens."""

    loss_sum: torch.Tensor
    stats: dict[str, list[torch.Tensor]]
    tokens: int


class Totals(NamedTuple):
    """The same sums over all processes."""

    loss_sum: torch.Tensor
    n: torch.Tensor
    stats: dict[str, list[torch.Tensor]]


def _metrics_row(split: str, step: int, loss_sum: torch.Tensor, n: torch.Tensor,
                 stats: dict[str, list[torch.Tensor]]) -> dict:
    row = {"split": split, "step": step, "loss": float(loss_sum / n)}
    for name, (num, den) in stats.items():
        row[name] = float(num / den) if float(den) > 0 else None
    if "reward_margin" not in row:  # unpaired (KTO): the difference of the two means, when both exist
        both = row.get("rewards_chosen") is not None and row.get("rewards_rejected") is not None
        row["reward_margin"] = row["rewards_chosen"] - row["rewards_rejected"] if both else None
    return row


def _accumulate(acc: dict, out: LossOut) -> None:
    for name, (num, den) in out.stats.items():
        a = acc.setdefault(name, [torch.zeros((), dtype=torch.float64), torch.zeros((), dtype=torch.float64)])
        a[0] += num.detach().double().cpu()
        a[1] += den.detach().double().cpu() if isinstance(den, torch.Tensor) else float(den)


def _reduce(rt: Runtime, loss_sum: torch.Tensor, n: float, acc: dict) -> Totals:
    names = sorted(acc)
    flat = torch.stack([loss_sum.double(), torch.tensor(float(n), dtype=torch.float64)]
                       + [x for k in names for x in acc[k]]).to(rt.device)
    flat = rt.all_reduce(flat).cpu()
    return Totals(flat[0], flat[1], {k: [flat[2 + 2 * i], flat[3 + 2 * i]] for i, k in enumerate(names)})


def _trim_metrics(path: Path, step: int, final: bool) -> None:
    """On resume, forget rows written after the checkpoint (the resumed run writes them again), and the
    final evaluation when the run had already finished (it is run again)."""
    if path.exists():
        rows = [obj for _, obj in iter_json_lines(path) if obj.get("step", 0) <= step
                and not (final and obj.get("split") == "eval" and obj.get("step") == step)]
        write_jsonl(path, rows)


# ---- forward and backward passes -------------------------------------------------------------------
def evaluate(module: nn.Module, loss_fn: LossFn, items: list[Tokenized], rt: Runtime, cfg: TrainConfig,
             pad_id: int, share_prompt: bool, step: int, eval_prepare: Callable[[], dict] | None) -> dict:
    module.eval()
    context = eval_prepare() if eval_prepare else {}
    costs = [row_cost(it, share_prompt) for it in items]
    loss_sum, n, acc = torch.zeros((), dtype=torch.float64), 0, {}
    with torch.no_grad():
        for mb, keep in micro_batches_for(len(items), costs, rt, cfg.micro_batch_size):
            batch = collate([items[i] for i in mb], pad_id, share_prompt).to(rt.device)
            with rt.autocast():
                out = loss_fn(module, batch, mb, context)
            if not keep:
                continue
            loss_sum += out.losses.double().sum().cpu()
            n += len(mb)
            _accumulate(acc, out)
    module.train()
    totals = _reduce(rt, loss_sum, n, acc)
    return _metrics_row("eval", step, *totals)


def accumulate_gradients(module: nn.Module, loss_fn: LossFn, items: list[Tokenized], micro: list[list[int]],
                         n_global: int, rt: Runtime, pad_id: int, share_prompt: bool, context: dict) -> StepSums:
    """Forward and backward over this process's micro-batches of one global batch.

    Each micro-batch adds sum(losses) · world / n_global, so the summed gradient is the gradient of the
    global-batch mean, however the batch is split (DDP divides by `world` when it averages)."""
    loss_sum, acc, tokens = torch.zeros((), dtype=torch.float64), {}, 0
    for j, mb in enumerate(micro):
        batch = collate([items[i] for i in mb], pad_id, share_prompt).to(rt.device)
        tokens += batch.n_tokens
        with sync_context(module, rt, last=j == len(micro) - 1):
            with rt.autocast():
                out = loss_fn(module, batch, mb, context)
            (out.losses.sum() * (rt.world / n_global)).backward()
        loss_sum += out.losses.detach().double().sum().cpu()
        _accumulate(acc, out)
    return StepSums(loss_sum, acc, tokens)


# ---- the step loop ---------------------------------------------------------------------------------
@dataclass
class _Plan:
    """Which examples each optimizer step trains on: length-grouped global batches, reshuffled each epoch."""

    cfg: TrainConfig
    world: int
    costs: list[int]
    per_epoch: int  # optimizer steps per epoch
    total: int  # optimizer steps of the whole run
    epoch: int = 0  # the epoch whose batches are held
    batches: list[list[int]] = field(default_factory=list)

    @classmethod
    def make(cls, cfg: TrainConfig, rt: Runtime, items: list[Tokenized], share_prompt: bool) -> _Plan:
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
class _Loop:
    """One `fit` call: what it trains with, and where it is (step, clock, why it stopped, the last row)."""

    cfg: TrainConfig
    rt: Runtime
    module: nn.Module
    loss_fn: LossFn
    items: list[Tokenized]
    eval_items: list[Tokenized]
    pad_id: int
    share_prompt: bool
    out: Path
    prepare: Callable[[list[int]], dict] | None
    eval_prepare: Callable[[], dict] | None
    plan: _Plan
    optimizer: Any
    scheduler: Any
    writer: JsonlAppender | None = None  # metrics.jsonl, on the main process
    step: int = 0
    started: float = 0.0  # perf_counter() at the start, moved back by the seconds a resumed run had trained
    stopped_by: str = "epochs"
    last_row: dict = field(default_factory=dict)

    @property
    def metrics_path(self) -> Path:
        return self.out / "metrics.jsonl"

    def out_of_time(self) -> bool:  # decided together: processes whose clocks disagree must still stop together
        if self.cfg.max_seconds is None:
            return False
        late = float(time.perf_counter() - self.started >= self.cfg.max_seconds)
        return bool(self.rt.all_reduce(torch.tensor(late, device=self.rt.device)).item() > 0)

    def evaluate(self) -> dict:
        return evaluate(self.module, self.loss_fn, self.eval_items, self.rt, self.cfg, self.pad_id,
                        self.share_prompt, self.step, self.eval_prepare)

    def write(self, row: dict) -> None:
        if self.writer:
            self.writer.write(row)


def _resume(loop: _Loop) -> float:
    """Load the checkpoint in OUT when there is one and resuming is on (else start metrics afresh);
    returns the training seconds already spent."""
    cfg, rt = loop.cfg, loop.rt
    ckpt = find_checkpoint(loop.out) if cfg.resume else None
    elapsed = 0.0
    if ckpt is not None:
        check_resumable(ckpt, cfg)
        saved = load_checkpoint(ckpt, rt, loop.module, loop.optimizer, loop.scheduler)
        loop.step, elapsed = saved.step, saved.elapsed_s
        if rt.is_main:
            _trim_metrics(loop.metrics_path, loop.step, final=loop.step >= loop.plan.total)
            print(f"resuming from {ckpt} at step {loop.step}", file=sys.stderr)
    elif rt.is_main and loop.metrics_path.exists():
        loop.metrics_path.unlink()
    rt.barrier()
    return elapsed


def _train_step(loop: _Loop) -> dict:
    """One optimizer step on the next global batch; its train metrics row (written every `log_every`)."""
    cfg, rt, module = loop.cfg, loop.rt, loop.module
    t0, c0 = time.perf_counter(), time.process_time()
    batch_idx = loop.plan.batch(loop.step)
    context = loop.prepare(batch_idx) if loop.prepare else {}
    micro = local_micro_batches(batch_idx, loop.plan.costs, rt.rank, rt.world, cfg.micro_batch_size)
    sums = accumulate_gradients(module, loop.loss_fn, loop.items, micro, len(batch_idx), rt, loop.pad_id,
                                loop.share_prompt, context)
    params = [p for p in module.parameters() if p.requires_grad]
    grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm or float("inf"))
    lr = loop.scheduler.get_last_lr()[0]
    loop.optimizer.step()
    loop.scheduler.step()
    loop.optimizer.zero_grad(set_to_none=True)
    loop.step += 1
    totals = _reduce(rt, sums.loss_sum, sum(len(m) for m in micro), sums.stats)
    tok_total = float(rt.all_reduce(torch.tensor(float(sums.tokens), device=rt.device)))
    dt = time.perf_counter() - t0
    row = _metrics_row("train", loop.step, *totals)
    row.update(grad_norm=float(grad_norm), lr=lr, tokens_per_s=tok_total / dt,
               epoch=round(loop.step / loop.plan.per_epoch, 4), step_s=round(dt, 4),
               cpu_s=round(time.process_time() - c0, 4),  # cpu_s: this process, all threads
               elapsed_s=round(time.perf_counter() - loop.started, 3))
    loop.last_row = row
    if loop.step % cfg.log_every == 0 or loop.step == loop.plan.total:
        loop.write(row)
    return row


def _after_step(loop: _Loop) -> bool:
    """Evaluate and save when due; True when the time budget ran out (then a checkpoint was just saved)."""
    cfg, step, total = loop.cfg, loop.step, loop.plan.total
    timed_out = loop.out_of_time()
    if loop.eval_items and cfg.eval_every and step % cfg.eval_every == 0 and step < total and not timed_out:
        loop.write(loop.evaluate())
    if step % cfg.save_every == 0 or step == total or timed_out:
        save_checkpoint(loop.out, loop.rt, loop.module, loop.optimizer, loop.scheduler, step,
                        time.perf_counter() - loop.started, cfg)
    return timed_out


def _finish(loop: _Loop) -> TrainResult:
    """The final evaluation, and the run's result."""
    train_seconds = time.perf_counter() - loop.started
    eval_row = None
    if loop.eval_items:
        eval_row = loop.evaluate()
        loop.write(eval_row)
    if loop.writer:
        loop.writer.close()
    last_row = loop.last_row
    if not last_row and loop.rt.is_main and loop.metrics_path.exists():  # resumed after the last step: the saved row
        rows = [o for _, o in iter_json_lines(loop.metrics_path) if o.get("split") == "train"]
        last_row = rows[-1] if rows else {}
    return TrainResult(str(loop.out), loop.step, loop.stopped_by, last_row, eval_row, round(train_seconds, 3), 0.0)


def _step_info(row: dict) -> str:
    """The progress bar's text for one train metrics row: loss, accuracy when there is one, throughput."""
    acc = row.get("reward_accuracy")
    info = f"loss {row['loss']:.4f}" + (f" acc {acc:.2f}" if acc is not None else "")
    return f"{info} {row['tokens_per_s']:.0f} tok/s"


def fit(cfg: TrainConfig, rt: Runtime, module: nn.Module, items: list[Tokenized], eval_items: list[Tokenized],
        loss_fn: LossFn, pad_id: int, share_prompt: bool, out: Path,
        prepare: Callable[[list[int]], dict] | None = None, eval_prepare: Callable[[], dict] | None = None,
        progress_label: str = "train") -> TrainResult:
    """Run optimizer steps until the epochs, `max_steps` or `max_seconds` run out; resume when a checkpoint exists.

    `prepare(global_batch_indices) -> context` runs before a step's micro-batches (KTO's KL estimate)."""
    plan = _Plan.make(cfg, rt, items, share_prompt)
    optimizer, scheduler = make_optimizer(module, cfg, plan.total, rt.device)
    loop = _Loop(cfg, rt, module, loss_fn, items, eval_items, pad_id, share_prompt, out, prepare, eval_prepare,
                 plan, optimizer, scheduler, stopped_by="max_steps" if cfg.max_steps else "epochs")
    elapsed = _resume(loop)
    loop.writer = JsonlAppender(loop.metrics_path) if rt.is_main else None
    module.train()
    progress = ProgressBar(plan.total, progress_label, enabled=None if rt.is_main else False, completed=loop.step)
    loop.started = time.perf_counter() - elapsed
    while loop.step < plan.total:
        if loop.out_of_time():  # a resumed run whose time budget was already spent
            loop.stopped_by = "max_seconds"
            break
        row = _train_step(loop)
        progress.update(loop.step, _step_info(row))
        if _after_step(loop):
            loop.stopped_by = "max_seconds"
            break
    progress.close()
    return _finish(loop)
