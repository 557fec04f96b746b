"""The training engine every recipe runs on: the optimizer and its schedule, the clock (`max_seconds`), resume
from OUT's checkpoint, metric sums reduced over processes, the optimizer step, checkpoints, the progress line,
OUT/metrics.jsonl and the NaN stop.

A recipe hands the engine a *step source* (`StepSource`): how many steps the run has, and how to take one
(offline: one global batch of preference data, `offline.py`; online: one rollout batch, `rl/stages.py`).
The engine calls it in this order each step: `step` (which calls `Engine.optimizer_step` as often as it
updates) → the row is checked, kept and written → `after_step` (offline: an evaluation when due) → a
checkpoint when due; at the end `finish` (offline: the final evaluation).
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from rlaif.errors import RlaifError
from rlaif.progress import ProgressBar
from rlaif.records import JsonlAppender, iter_json_lines, write_jsonl
from rlaif.train.checkpoint import TrainResult, check_resumable, find_checkpoint, load_checkpoint, save_checkpoint
from rlaif.train.config import TrainConfig
from rlaif.train.runtime import Runtime


class NonFiniteError(RlaifError):
    """A loss or gradient became NaN or infinite: the run stops (the last checkpoint is intact)."""


# ---- optimizer -----------------------------------------------------------------------------------
def make_optimizer(model: nn.Module, cfg: TrainConfig, total_steps: int, device: torch.device):
    params = [p for p in model.parameters() if p.requires_grad]
    # fused on the CPU too: one kernel per tensor is about 5x faster than foreach for a 135M model on 2 cores,
    # with the same values (benchmarks/bench_local.py)
    extra = {"fused": True} if device.type in ("cuda", "cpu") else {"foreach": True}
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
class MetricSums:
    """Named (numerator, denominator) sums on this process, in float64 on the CPU; `reduce` sums them over
    processes in one all-reduce and divides. A `name|sq` entry (the mean of squares) becomes `name_std`."""

    def __init__(self) -> None:
        self.sums: dict[str, list[torch.Tensor]] = {}

    def add(self, name: str, num: Any, den: Any) -> None:
        a = self.sums.setdefault(name, [torch.zeros((), dtype=torch.float64), torch.zeros((), dtype=torch.float64)])
        a[0] += torch.as_tensor(num).detach().double().cpu()
        a[1] += torch.as_tensor(den).detach().double().cpu()

    def add_all(self, stats: dict[str, tuple[Any, Any]]) -> None:
        for name, (num, den) in stats.items():
            self.add(name, num, den)

    @classmethod
    def of(cls, stats: dict[str, tuple[Any, Any]]) -> MetricSums:
        sums = cls()
        sums.add_all(stats)
        return sums

    @classmethod
    def joined(cls, *parts: MetricSums) -> MetricSums:
        """The sums of several parts (a name in more than one is added up, in the order given)."""
        out = cls()
        for part in parts:
            for name, (num, den) in part.sums.items():
                out.add(name, num, den)
        return out

    def reduce(self, rt: Runtime) -> dict[str, float | None]:
        names = sorted(self.sums)
        if not names:
            return {}
        flat = rt.all_reduce(torch.stack([x for k in names for x in self.sums[k]]).to(rt.device)).cpu()
        out = {k: (float(flat[2 * i] / flat[2 * i + 1]) if float(flat[2 * i + 1]) > 0 else None)
               for i, k in enumerate(names)}
        for k in [k for k in names if k.endswith("|sq")]:
            base, sq = k[:-3], out.pop(k)
            mean = out.get(base)
            out[f"{base}_std"] = None if mean is None or sq is None else math.sqrt(max(sq - mean * mean, 0.0))
        return out


def check_finite(row: dict, step: int) -> None:
    """The NaN stop: a non-finite number in a step's row (rewards aside, gold too: a reward may be anything) ends
    the run."""
    bad = [k for k, v in row.items()
           if isinstance(v, float) and not math.isfinite(v) and not k.startswith(("reward", "gold"))]
    if bad:
        raise NonFiniteError(f"step {step}: {', '.join(bad)} became non-finite ({row[bad[0]]}), so the run stops "
                             "(the last checkpoint is intact). Fix: lower lr or beta")


# ---- the step-source protocol ----------------------------------------------------------------------
class StepSource(Protocol):
    """What a recipe gives the engine: the run's length and how to take one step."""

    label: str  # the progress bar's label
    total: int  # steps of the whole run
    optimizer_steps: int  # optimizer steps of the whole run (the length of the learning-rate schedule)
    stops_on_nonfinite: bool  # a non-finite row or gradient norm stops the run

    def step(self, engine: Engine) -> dict:
        """Step `engine.step + 1`: its train metrics row (the engine counts the step after it returns)."""

    def after_step(self, engine: Engine, timed_out: bool) -> dict | None:
        """After the row is written: a row to write too (an evaluation), or None."""

    def finish(self, engine: Engine) -> dict | None:
        """After the last step: the final evaluation row (written), or None."""

    def info(self, row: dict) -> str:
        """The progress line's text for a train row."""

    def state_dict(self) -> dict:
        """The source's own state, saved in each checkpoint (the online algorithm's KL controller, ...)."""

    def load_state_dict(self, state: dict) -> None:
        """The state `state_dict` saved, from the checkpoint a run resumes."""


# ---- the engine ------------------------------------------------------------------------------------
@dataclass
class Engine:
    """One run of a step source: what it trains and where it is (step, clock, why it stopped, the last row)."""

    cfg: TrainConfig
    rt: Runtime
    module: nn.Module  # the model being trained, DDP/FSDP-wrapped when there are several processes
    out: Path
    optimizer: Any
    scheduler: Any
    total: int
    writer: JsonlAppender | None = None  # metrics.jsonl, on the main process
    step: int = 0  # steps taken
    started: float = 0.0  # perf_counter() at the start, moved back by the seconds a resumed run had trained
    stopped_by: str = "epochs"
    last_row: dict = field(default_factory=dict)
    stop: str | None = None  # set by a step source's `after_step` to end the run there (e.g. "hacking")

    @property
    def metrics_path(self) -> Path:
        return self.out / "metrics.jsonl"

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def out_of_time(self) -> bool:  # decided together: processes whose clocks disagree must still stop together
        if self.cfg.max_seconds is None:
            return False
        late = float(self.elapsed() >= self.cfg.max_seconds)
        return bool(self.rt.all_reduce(torch.tensor(late, device=self.rt.device)).item() > 0)

    def optimizer_step(self, stop_on_nonfinite: bool) -> float:
        """Clip the gradients, step the optimizer and the schedule, zero the gradients; the gradient norm.
        With `stop_on_nonfinite`, a non-finite norm stops the run before the weights change."""
        params = [p for p in self.module.parameters() if p.requires_grad]
        grad_norm = torch.nn.utils.clip_grad_norm_(params, self.cfg.max_grad_norm or float("inf"))
        if stop_on_nonfinite and not math.isfinite(float(grad_norm)):
            self.optimizer.zero_grad(set_to_none=True)
            raise NonFiniteError(f"the gradient norm is {float(grad_norm)} at step {self.step + 1}: the loss or the "
                                 "model went non-finite, so the run stops (the last checkpoint is intact). Fix: "
                                 "lower lr, or check the rewards for huge values (reward_clip / normalize_rewards "
                                 "in ppo)")
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return float(grad_norm)

    def write(self, row: dict) -> None:
        if self.writer:
            self.writer.write(row)

    def save(self, source: StepSource) -> None:
        save_checkpoint(self.out, self.rt, self.module, self.optimizer, self.scheduler, self.step, self.elapsed(),
                        self.cfg, extra={**source.state_dict(), "stop": self.stop})


def _trim_metrics(path: Path, step: int, final: bool) -> None:
    """On resume, forget rows written after the checkpoint (the resumed run writes them again), and the
    final evaluation when the run had already finished (it is run again)."""
    if path.exists():
        rows = [obj for _, obj in iter_json_lines(path) if obj.get("step", 0) <= step
                and not (final and obj.get("split") == "eval" and obj.get("step") == step)]
        write_jsonl(path, rows)


def _resume(engine: Engine, source: StepSource) -> float:
    """Load the checkpoint in OUT when there is one and resuming is on (else start metrics afresh);
    returns the training seconds already spent."""
    cfg, rt = engine.cfg, engine.rt
    ckpt = find_checkpoint(engine.out) if cfg.resume else None
    elapsed = 0.0
    if ckpt is not None:
        check_resumable(ckpt, cfg)
        saved = load_checkpoint(ckpt, rt, engine.module, engine.optimizer, engine.scheduler)
        engine.step, elapsed = saved.step, saved.elapsed_s
        source.load_state_dict(saved.extra)
        engine.stop = saved.extra.get("stop")  # a run that stopped itself (the hacking onset) stays stopped
        if rt.is_main:
            _trim_metrics(engine.metrics_path, engine.step, final=engine.step >= engine.total)
            print(f"resuming from {ckpt} at step {engine.step}", file=sys.stderr)
    elif rt.is_main:  # a fresh start: an earlier run's metrics and result in OUT are not this run's
        engine.metrics_path.unlink(missing_ok=True)
        (engine.out / "train_result.json").unlink(missing_ok=True)
    rt.barrier()
    return elapsed


def _keep_row(engine: Engine, source: StepSource, row: dict) -> None:
    """The NaN stop, then a step's row kept as the last one and written every `log_every` steps (and the last)."""
    if source.stops_on_nonfinite:
        check_finite(row, engine.step)
    engine.last_row = row
    if engine.step % engine.cfg.log_every == 0 or engine.step == engine.total:
        engine.write(row)


def _run_steps(engine: Engine, source: StepSource) -> None:
    cfg, rt = engine.cfg, engine.rt
    # a bar on a terminal; a plain line every log interval elsewhere (logs, CI, pipes)
    progress = ProgressBar(engine.total, source.label, enabled=None if rt.is_main else False, completed=engine.step,
                           lines_every=cfg.log_every)
    try:
        while engine.step < engine.total:
            if engine.out_of_time() or engine.stop:  # a resumed run whose budget was spent, or that stopped itself
                engine.stopped_by = engine.stop or "max_seconds"
                break
            row = source.step(engine)
            engine.step += 1
            _keep_row(engine, source, row)
            progress.update(engine.step, source.info(row))
            timed_out = engine.out_of_time()
            extra = source.after_step(engine, timed_out)
            if extra is not None:
                engine.write(extra)
            if engine.step % cfg.save_every == 0 or engine.step == engine.total or timed_out or engine.stop:
                engine.save(source)
            if timed_out or engine.stop:
                engine.stopped_by = engine.stop or "max_seconds"
                break
    finally:
        progress.close()


def run_steps(cfg: TrainConfig, rt: Runtime, module: nn.Module, out: Path, source: StepSource) -> TrainResult:
    """Steps of `source` until its total, `max_steps` or `max_seconds` run out; resumes from OUT's checkpoint.
    The final model is the recipe's to save."""
    optimizer, scheduler = make_optimizer(module, cfg, source.optimizer_steps, rt.device)
    engine = Engine(cfg, rt, module, out, optimizer, scheduler, source.total,
                    stopped_by="max_steps" if cfg.max_steps else "epochs")
    elapsed = _resume(engine, source)
    engine.writer = JsonlAppender(engine.metrics_path) if rt.is_main else None
    module.train()
    engine.started = time.perf_counter() - elapsed
    try:
        _run_steps(engine, source)
        train_seconds = engine.elapsed()
        eval_row = source.finish(engine)
        if eval_row is not None:
            engine.write(eval_row)
    finally:
        if engine.writer:
            engine.writer.close()
    last_row = engine.last_row
    if not last_row and rt.is_main and engine.metrics_path.exists():  # resumed after the last step: the saved row
        rows = [o for _, o in iter_json_lines(engine.metrics_path) if o.get("split") == "train"]
        last_row = rows[-1] if rows else {}
    return TrainResult(str(out), engine.step, engine.stopped_by, last_row, eval_row, round(train_seconds, 3), 0.0)
