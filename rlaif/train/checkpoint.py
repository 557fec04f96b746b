"""What a run leaves on disk: atomic resumable checkpoints (weights, optimizer, scheduler, RNG, step) and the
final Hugging Face-format model.

Every write goes to a temporary directory that is renamed into place, so a run killed at any moment leaves
either the previous checkpoint or the new one, never half of one.
"""
from __future__ import annotations

import json
import os
import random
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from rlaif.errors import ConfigError
from rlaif.records import write_json
from rlaif.train.config import TrainConfig
from rlaif.train.runtime import Runtime, unwrap


@dataclass
class TrainResult:
    """What a finished recipe returns and saves beside the final model."""
    out_dir: str
    steps: int
    stopped_by: str  # "epochs" | "max_steps" | "max_seconds" | "hacking" (stop_on_hacking)
    train: dict  # the last train metrics row
    eval: dict | None  # the final evaluation row
    train_seconds: float
    reference_seconds: float
    hacking: dict | None = None  # online recipes with a gold reward: the monitor's summary (rl/hacking.py)
    checkpoint_kept: bool = False  # OUT/checkpoint stays (keep_checkpoint); else removed once the model is saved
    checkpoint_bytes: int = 0  # its size on disk (freed when removed)
    already_complete: bool = False  # OUT held this finished run: nothing was trained (see `finished_run`)


CHECKPOINT = "checkpoint"

# keys that may change between a run and its resumption (budgets and bookkeeping, not the training itself)
RESUMABLE_CHANGES = {"max_steps", "max_seconds", "epochs", "eval_every", "save_every", "log_every", "resume",
                     "threads", "out", "keep_checkpoint"}
# ... and those of them that change how far a run goes: a finished run without its checkpoint cannot honor them
EXTENDING_CHANGES = {"max_steps", "max_seconds", "epochs"}


class RunComplete(Exception):  # noqa: N818 (not an error: the recipe entry returns `result`)
    """OUT already holds this run, finished, and no checkpoint to continue from: nothing to train."""

    def __init__(self, result: TrainResult):
        super().__init__(result.out_dir)
        self.result = result


@dataclass
class Saved:
    """Where a checkpoint left off."""

    step: int
    elapsed_s: float  # training seconds before the checkpoint (counts against max_seconds)
    extra: dict = field(default_factory=dict)  # a recipe's own state (the online recipes' KL controller, ...)


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


def _full_state_options(**kw):
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    return StateDictOptions(full_state_dict=True, **kw)


def _trainable_state(model: nn.Module, rt: Runtime) -> dict:
    if rt.fsdp:
        from torch.distributed.checkpoint.state_dict import get_model_state_dict

        sd = get_model_state_dict(model, options=_full_state_options(cpu_offload=True))
    else:
        sd = model.state_dict()
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    return {k: v.detach().cpu().clone() for k, v in sd.items() if k in names}


def _optimizer_state(model, optimizer, rt: Runtime) -> dict:
    if rt.fsdp:
        from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

        return get_optimizer_state_dict(model, optimizer, options=_full_state_options(cpu_offload=True))
    return optimizer.state_dict()


def save_checkpoint(out: Path, rt: Runtime, model: nn.Module, optimizer, scheduler, step: int,
                    elapsed: float, cfg: TrainConfig, extra: dict | None = None) -> None:
    """Model (trainable weights), optimizer, scheduler, RNG, step and the recipe's `extra` state, written to a
    temp dir then renamed."""
    inner = unwrap(model)
    weights, optim = _trainable_state(inner, rt), _optimizer_state(inner, optimizer, rt)  # collectives under FSDP
    if not rt.is_main:
        rt.barrier()
        return
    tmp, final, old = out / f".{CHECKPOINT}-tmp", out / CHECKPOINT, out / f"{CHECKPOINT}.old"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    torch.save(weights, tmp / "weights.pt")
    torch.save({"optimizer": optim, "scheduler": scheduler.state_dict(), "rng": _rng_state(), "extra": extra or {}},
               tmp / "state.pt")
    (tmp / "config.json").write_text(cfg.model_dump_json(), encoding="utf-8")
    write_json(tmp / "progress.json", {"step": step, "elapsed_s": elapsed})  # written last: marks it complete
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)
    rt.barrier()


def check_resumable(ckpt: Path, cfg: TrainConfig) -> None:
    saved_path = ckpt / "config.json"
    if not saved_path.exists():
        return
    saved = json.loads(saved_path.read_text())
    now = json.loads(cfg.model_dump_json())
    changed = sorted(k for k in set(saved) | set(now) if k not in RESUMABLE_CHANGES and saved.get(k) != now.get(k))
    if changed:
        raise ConfigError(f"{ckpt} was written with a different config ({', '.join(changed)} changed), so it "
                          f"cannot be resumed. Fix: use the same settings, another -o directory, or resume=false")


def finished_run(out: Path, cfg: TrainConfig) -> TrainResult | None:
    """A re-invoked run whose OUT holds its finished result and no checkpoint (removed when it finished): the
    saved result when the settings are the same (bookkeeping keys aside), so re-running a command is a no-op;
    a ConfigError when they differ, since there is nothing to continue from. None when there is no such run
    (no result, a checkpoint to resume, or resume=false)."""
    result_path = out / "train_result.json"
    if not cfg.resume or not result_path.exists() or find_checkpoint(out) is not None:
        return None
    saved = json.loads(result_path.read_text(encoding="utf-8"))
    before, now = saved.get("config") or {}, json.loads(cfg.model_dump_json())
    changed = sorted(k for k in set(before) | set(now)
                     if (k not in RESUMABLE_CHANGES or k in EXTENDING_CHANGES) and before.get(k) != now.get(k))
    if changed:
        raise ConfigError(f"{out} holds a finished run with other settings ({', '.join(changed)} changed), and its "
                          "checkpoint was removed when it finished, so it cannot be continued. Fix: another -o "
                          "directory, or resume=false to train again from scratch there (--keep-checkpoint keeps "
                          "a run's checkpoint so it can be extended)")
    fields = {f for f in TrainResult.__dataclass_fields__}
    result = TrainResult(**{k: v for k, v in saved.items() if k in fields})
    result.already_complete = True
    return result


def _dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else 0


def find_checkpoint(out: Path) -> Path | None:
    for d in (out / CHECKPOINT, out / f"{CHECKPOINT}.old"):  # .old survives a kill between the two renames
        if (d / "progress.json").exists():
            return d
    return None


def load_checkpoint(ckpt: Path, rt: Runtime, model: nn.Module, optimizer, scheduler) -> Saved:
    inner = unwrap(model)
    weights = torch.load(ckpt / "weights.pt", map_location="cpu", weights_only=True)
    state = torch.load(ckpt / "state.pt", map_location="cpu", weights_only=False)
    if rt.fsdp:
        from torch.distributed.checkpoint.state_dict import set_model_state_dict, set_optimizer_state_dict

        opts = _full_state_options(strict=False)
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
    return Saved(int(progress["step"]), float(progress["elapsed_s"]), state.get("extra") or {})


def save_final(out: Path, rt: Runtime, module: nn.Module, tokenizer, result: TrainResult, config: dict) -> None:
    """The trained model in Hugging Face format in `out` (LoRA merged), tokenizer beside it, then train_result.json."""
    from rlaif.train.modeling import base_model

    inner = unwrap(module)
    model = inner.model
    full_sd = None
    if rt.fsdp:
        from torch.distributed.checkpoint.state_dict import get_model_state_dict

        full_sd = get_model_state_dict(inner, options=_full_state_options(cpu_offload=True))
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
        # the result marks the run complete; then the checkpoint goes (a kill in between resumes, then removes it)
        result.checkpoint_kept = bool(config.get("keep_checkpoint"))
        result.checkpoint_bytes = _dir_bytes(out / CHECKPOINT) + _dir_bytes(out / f"{CHECKPOINT}.old")
        write_json(out / "train_result.json", {**asdict(result), "config": config})
        if not result.checkpoint_kept:
            for d in (out / CHECKPOINT, out / f"{CHECKPOINT}.old", out / f".{CHECKPOINT}-tmp"):
                shutil.rmtree(d, ignore_errors=True)
    rt.barrier()
