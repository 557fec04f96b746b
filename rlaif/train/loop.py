"""The parts every recipe shares: the optimizer step loop, checkpoints, metrics, reference log-probs.

Loss normalization: each micro-batch contributes sum(per-example loss) / (examples in the *global*
batch), times the process count because DDP averages gradients over processes. So gradient
accumulation and data parallelism give the same loss and gradients as one big batch.
"""
from __future__ import annotations

import json
import math
import os
import random
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from rlaif.records import JsonlAppender, iter_json_lines, write_json, write_jsonl
from rlaif.train.batching import collate, epoch_batches, local_micro_batches, row_cost
from rlaif.train.config import TrainConfig
from rlaif.train.runtime import Runtime, sync_context, unwrap
from rlaif.train.tokenize import Tokenized

CHECKPOINT = "checkpoint"


@dataclass
class LossOut:
    """A micro-batch's per-example losses and its metric numerators/denominators (summed over examples)."""

    losses: torch.Tensor
    stats: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)


@dataclass
class TrainResult:
    out_dir: str
    steps: int
    stopped_by: str  # "epochs" | "max_steps" | "max_seconds"
    train: dict  # the last train metrics row
    eval: dict | None  # the final evaluation row
    train_seconds: float
    reference_seconds: float


LossFn = Callable[[nn.Module, "object", list[int], dict], LossOut]


# ---- checkpoints ---------------------------------------------------------------------------------
def _rng_state() -> dict:
    state = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _trainable_state(model: nn.Module, rt: Runtime) -> dict:
    if rt.fsdp:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        sd = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    else:
        sd = model.state_dict()
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    return {k: v.detach().cpu().clone() for k, v in sd.items() if k in names}


def _optimizer_state(model, optimizer, rt: Runtime) -> dict:
    if rt.fsdp:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

        return get_optimizer_state_dict(model, optimizer,
                                        options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    return optimizer.state_dict()


def save_checkpoint(out: Path, rt: Runtime, model: nn.Module, optimizer, scheduler, step: int,
                    elapsed: float, cfg: TrainConfig) -> None:
    """Model (trainable weights), optimizer, scheduler, RNG and step, written to a temp dir then renamed."""
    inner = unwrap(model)
    weights, optim = _trainable_state(inner, rt), _optimizer_state(inner, optimizer, rt)
    if not rt.is_main:
        rt.barrier()
        return
    tmp, final, old = out / f".{CHECKPOINT}-tmp", out / CHECKPOINT, out / f"{CHECKPOINT}.old"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    torch.save(weights, tmp / "weights.pt")
    torch.save({"optimizer": optim, "scheduler": scheduler.state_dict(), "rng": _rng_state()}, tmp / "state.pt")
    (tmp / "config.json").write_text(cfg.model_dump_json(), encoding="utf-8")
    write_json(tmp / "progress.json", {"step": step, "elapsed_s": elapsed})  # written last: marks it complete
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)
    rt.barrier()


# keys that may change between a run and its resumption (budgets and bookkeeping, not the training itself)
RESUMABLE_CHANGES = {"max_steps", "max_seconds", "epochs", "eval_every", "save_every", "log_every", "resume",
                     "threads", "out"}


def check_resumable(ckpt: Path, cfg: TrainConfig) -> None:
    saved_path = ckpt / "config.json"
    if not saved_path.exists():
        return
    saved = json.loads(saved_path.read_text())
    now = json.loads(cfg.model_dump_json())
    changed = sorted(k for k in set(saved) | set(now) if k not in RESUMABLE_CHANGES and saved.get(k) != now.get(k))
    if changed:
        from rlaif.errors import ConfigError

        raise ConfigError(f"{ckpt} was written with a different config ({', '.join(changed)} changed), so it "
                          f"cannot be resumed. Fix: use the same settings, another -o directory, or resume=false")


def find_checkpoint(out: Path) -> Path | None:
    for d in (out / CHECKPOINT, out / f"{CHECKPOINT}.old"):  # .old survives a kill between the two renames
        if (d / "progress.json").exists():
            return d
    return None


def load_checkpoint(ckpt: Path, rt: Runtime, model: nn.Module, optimizer, scheduler) -> tuple[int, float]:
    inner = unwrap(model)
    weights = torch.load(ckpt / "weights.pt", map_location="cpu", weights_only=True)
    state = torch.load(ckpt / "state.pt", map_location="cpu", weights_only=False)
    if rt.fsdp:
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            set_model_state_dict,
            set_optimizer_state_dict,
        )

        opts = StateDictOptions(full_state_dict=True, strict=False)
        set_model_state_dict(inner, weights, options=opts)
        set_optimizer_state_dict(inner, optimizer, state["optimizer"], options=opts)
    else:
        missing = inner.load_state_dict(weights, strict=False).unexpected_keys
        if missing:
            raise RuntimeError(f"checkpoint {ckpt} does not match the model (unexpected {missing[:3]})")
        optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    _set_rng_state(state["rng"])
    progress = json.loads((ckpt / "progress.json").read_text())
    return int(progress["step"]), float(progress["elapsed_s"])


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


# ---- forward passes over a list of examples --------------------------------------------------------
def micro_batches_for(n: int, costs: list[int], rt: Runtime, size: int) -> list[tuple[list[int], bool]]:
    """This process's share of `n` examples in length-sorted micro-batches (for reference and eval passes).

    Every process gets the same number of passes (FSDP's forward is a collective): a process with fewer
    repeats a batch and marks it `keep=False`, so its results are dropped."""
    order = sorted(range(n), key=lambda j: -costs[j])
    mine = order[rt.rank::rt.world]
    batches = [(mine[s:s + size], True) for s in range(0, len(mine), size)]
    most = -(-len(order[0::rt.world]) // size) if order else 0
    while len(batches) < most:
        batches.append((batches[-1][0] if batches else order[:1], False))
    return batches


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


def cached_reference(path: Path, key: str, rt: Runtime, compute: Callable[[], torch.Tensor]) -> tuple[torch.Tensor,
                                                                                                      float]:
    """Reference log-probs, computed once and kept on disk (so no reference model stays in memory)."""
    if path.exists():
        saved = torch.load(path, map_location="cpu", weights_only=True)
        if saved.get("key") == key:
            return saved["logps"], 0.0
    t0 = time.perf_counter()
    logps = compute()
    seconds = time.perf_counter() - t0
    if rt.is_main:
        tmp = path.with_name(f".{path.name}.tmp")
        torch.save({"key": key, "logps": logps}, tmp)
        os.replace(tmp, path)
    rt.barrier()
    return logps, seconds


# ---- the step loop ---------------------------------------------------------------------------------
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


def _reduce(rt: Runtime, loss_sum: torch.Tensor, n: float, acc: dict) -> tuple[torch.Tensor, torch.Tensor, dict]:
    names = sorted(acc)
    flat = torch.stack([loss_sum.double(), torch.tensor(float(n), dtype=torch.float64)]
                       + [x for k in names for x in acc[k]]).to(rt.device)
    flat = rt.all_reduce(flat).cpu()
    return flat[0], flat[1], {k: [flat[2 + 2 * i], flat[3 + 2 * i]] for i, k in enumerate(names)}


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
    loss_sum, n_t, acc = _reduce(rt, loss_sum, n, acc)
    return _metrics_row("eval", step, loss_sum, n_t, acc)


def accumulate_gradients(module: nn.Module, loss_fn: LossFn, items: list[Tokenized], micro: list[list[int]],
                         n_global: int, rt: Runtime, pad_id: int, share_prompt: bool, context: dict):
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
    return loss_sum, acc, tokens


def _trim_metrics(path: Path, step: int, final: bool) -> None:
    """On resume, forget rows written after the checkpoint (the resumed run writes them again), and the
    final evaluation when the run had already finished (it is run again)."""
    if path.exists():
        rows = [obj for _, obj in iter_json_lines(path) if obj.get("step", 0) <= step
                and not (final and obj.get("split") == "eval" and obj.get("step") == step)]
        write_jsonl(path, rows)


def fit(cfg: TrainConfig, rt: Runtime, module: nn.Module, items: list[Tokenized], eval_items: list[Tokenized],
        loss_fn: LossFn, pad_id: int, share_prompt: bool, out: Path,
        prepare: Callable[[list[int]], dict] | None = None, eval_prepare: Callable[[], dict] | None = None,
        progress_label: str = "train") -> TrainResult:
    """Run optimizer steps until the epochs, `max_steps` or `max_seconds` run out; resume when a checkpoint exists.

    `prepare(global_batch_indices) -> context` runs before a step's micro-batches (KTO's KL estimate)."""
    if cfg.batch_size % rt.world:
        from rlaif.errors import ConfigError

        raise ConfigError(f"batch_size={cfg.batch_size} does not split over {rt.world} processes. "
                          f"Fix: use a multiple of {rt.world}")
    costs = [row_cost(it, share_prompt) for it in items]
    per_epoch = len(epoch_batches(costs, cfg.batch_size, rt.world, cfg.seed, 0, cfg.group_by_length))
    if per_epoch == 0:
        raise ValueError("no training batch: fewer examples than processes")
    # as in transformers' Trainer, max_steps (when given) overrides epochs and cycles through the data
    total = cfg.max_steps or max(1, math.ceil(cfg.epochs * per_epoch))
    optimizer, scheduler = make_optimizer(module, cfg, total, rt.device)
    metrics_path = out / "metrics.jsonl"
    step, elapsed = 0, 0.0
    ckpt = find_checkpoint(out) if cfg.resume else None
    if ckpt is not None:
        check_resumable(ckpt, cfg)
        step, elapsed = load_checkpoint(ckpt, rt, module, optimizer, scheduler)
        if rt.is_main:
            _trim_metrics(metrics_path, step, final=step >= total)
            print(f"resuming from {ckpt} at step {step}", file=sys.stderr)
    elif rt.is_main and metrics_path.exists():
        metrics_path.unlink()
    rt.barrier()
    writer = JsonlAppender(metrics_path) if rt.is_main else None
    module.train()
    stopped_by = "max_steps" if cfg.max_steps else "epochs"
    last_row: dict = {}
    epoch_cache: dict[int, list[list[int]]] = {}
    progress = _Progress(rt, total, step, progress_label)
    started = time.perf_counter() - elapsed

    def out_of_time() -> bool:  # decided together: processes whose clocks disagree must still stop together
        if cfg.max_seconds is None:
            return False
        late = float(time.perf_counter() - started >= cfg.max_seconds)
        return bool(rt.all_reduce(torch.tensor(late, device=rt.device)).item() > 0)

    while step < total:
        if out_of_time():  # a resumed run whose time budget was already spent
            stopped_by = "max_seconds"
            break
        t0, c0 = time.perf_counter(), time.process_time()
        epoch, index = divmod(step, per_epoch)
        if epoch not in epoch_cache:
            epoch_cache = {epoch: epoch_batches(costs, cfg.batch_size, rt.world, cfg.seed, epoch, cfg.group_by_length)}
        batch_idx = epoch_cache[epoch][index]
        context = prepare(batch_idx) if prepare else {}
        micro = local_micro_batches(batch_idx, costs, rt.rank, rt.world, cfg.micro_batch_size)
        loss_sum, acc, tokens = accumulate_gradients(module, loss_fn, items, micro, len(batch_idx), rt, pad_id,
                                                     share_prompt, context)
        params = [p for p in module.parameters() if p.requires_grad]
        grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm or float("inf"))
        lr = scheduler.get_last_lr()[0]
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        loss_sum, n, acc = _reduce(rt, loss_sum, sum(len(m) for m in micro), acc)
        tok_total = float(rt.all_reduce(torch.tensor(float(tokens), device=rt.device)))
        dt = time.perf_counter() - t0
        row = _metrics_row("train", step, loss_sum, n, acc)
        row.update(grad_norm=float(grad_norm), lr=lr, tokens_per_s=tok_total / dt, epoch=round(step / per_epoch, 4),
                   step_s=round(dt, 4), cpu_s=round(time.process_time() - c0, 4),  # cpu_s: this process, all threads
                   elapsed_s=round(time.perf_counter() - started, 3))
        last_row = row
        if writer and (step % cfg.log_every == 0 or step == total):
            writer.write(row)
        progress(step, row)
        timed_out = out_of_time()
        if eval_items and cfg.eval_every and step % cfg.eval_every == 0 and step < total and not timed_out:
            erow = evaluate(module, loss_fn, eval_items, rt, cfg, pad_id, share_prompt, step, eval_prepare)
            if writer:
                writer.write(erow)
        if step % cfg.save_every == 0 or step == total or timed_out:
            save_checkpoint(out, rt, module, optimizer, scheduler, step, time.perf_counter() - started, cfg)
        if timed_out:
            stopped_by = "max_seconds"
            break
    progress.close()
    train_seconds = time.perf_counter() - started
    eval_row = None
    if eval_items:
        eval_row = evaluate(module, loss_fn, eval_items, rt, cfg, pad_id, share_prompt, step, eval_prepare)
        if writer:
            writer.write(eval_row)
    if writer:
        writer.close()
    if not last_row and rt.is_main and metrics_path.exists():  # resumed after the last step: report the saved row
        rows = [o for _, o in iter_json_lines(metrics_path) if o.get("split") == "train"]
        last_row = rows[-1] if rows else {}
    return TrainResult(str(out), step, stopped_by, last_row, eval_row, round(train_seconds, 3), 0.0)


class _Progress:
    """A rich progress bar on stderr (main process, terminals only)."""

    def __init__(self, rt: Runtime, total: int, start: int, label: str):
        self.bar = None
        if rt.is_main and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(),
                                TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
                                console=Console(stderr=True))
            self.task = self.bar.add_task(label, total=total, completed=start, info="")
            self.bar.start()

    def __call__(self, step: int, row: dict) -> None:
        if self.bar is not None:
            acc = row.get("reward_accuracy")
            info = f"loss {row['loss']:.4f}" + (f" acc {acc:.2f}" if acc is not None else "")
            self.bar.update(self.task, completed=step, info=f"{info} {row['tokens_per_s']:.0f} tok/s")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def save_final(out: Path, rt: Runtime, module: nn.Module, tokenizer, result: TrainResult, config: dict) -> None:
    """The trained model in Hugging Face format in `out` (LoRA merged), tokenizer beside it, then train_result.json."""
    from rlaif.train.modeling import base_model

    inner = unwrap(module)
    model = inner.model
    full_sd = None
    if rt.fsdp:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        full_sd = get_model_state_dict(inner, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        full_sd = {k.removeprefix("model."): v for k, v in full_sd.items()}
    if rt.is_main:
        if hasattr(model, "merge_and_unload"):
            model = model.merge_and_unload()
        model = base_model(model)
        tmp = out / ".final-tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        model.config.use_cache = True
        model.save_pretrained(tmp, state_dict=full_sd) if full_sd is not None else model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        for f in tmp.iterdir():  # each file lands whole (rename within one directory)
            os.replace(f, out / f.name)
        shutil.rmtree(tmp, ignore_errors=True)
        write_json(out / "train_result.json", {**asdict(result), "config": config})
    rt.barrier()
