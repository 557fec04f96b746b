"""Where training runs: device, precision, processes (torchrun / accelerate launch) and model wrapping."""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from rlaif.errors import ConfigError
from rlaif.train.config import TrainConfig


@dataclass
class Runtime:
    device: torch.device
    rank: int
    world: int
    local_rank: int
    autocast_dtype: torch.dtype | None  # bf16 autocast, or None for plain fp32
    gradient_checkpointing: bool
    fsdp: bool

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def all_reduce(self, t: torch.Tensor) -> torch.Tensor:
        if self.world > 1:
            dist.all_reduce(t)
        return t

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()


def setup(cfg: TrainConfig) -> Runtime:
    """Read torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK) and start the process group once."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    want_cuda = cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available())
    if want_cuda and not torch.cuda.is_available():
        raise ConfigError("device=cuda but CUDA is not available. Fix: use device=cpu or device=auto")
    device = torch.device(f"cuda:{local_rank}") if want_cuda else torch.device("cpu")
    if want_cuda:
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if want_cuda else "gloo")
    if cfg.fsdp and not want_cuda:
        raise ConfigError("fsdp needs CUDA. Fix: drop fsdp (CPU processes use DDP) or run on GPUs")
    if cfg.fsdp and cfg.lora is not None:
        raise ConfigError("fsdp with lora is not supported (LoRA trains few weights: DDP is enough). "
                          "Fix: drop fsdp, or drop lora")
    if cfg.precision == "bf16" or (cfg.precision == "auto" and want_cuda):
        dtype = torch.bfloat16
    else:
        dtype = None
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    checkpointing = cfg.gradient_checkpointing == "on" or (cfg.gradient_checkpointing == "auto" and want_cuda)
    return Runtime(device, rank, world, local_rank, dtype, checkpointing, cfg.fsdp and world > 1)


def wrap(module: nn.Module, rt: Runtime) -> nn.Module:
    """DDP across processes, or FSDP (each decoder layer its own shard unit) when asked."""
    module.to(rt.device)
    if rt.world == 1:
        return module
    if rt.fsdp:
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

        mp = MixedPrecisionPolicy(param_dtype=rt.autocast_dtype or torch.float32, reduce_dtype=torch.float32)
        for sub in module.modules():
            if type(sub).__name__.endswith("DecoderLayer"):
                fully_shard(sub, mp_policy=mp)
        fully_shard(module, mp_policy=mp)
        return module
    from torch.nn.parallel import DistributedDataParallel

    ids = [rt.device.index] if rt.device.type == "cuda" else None
    # no buffer broadcast: the only buffers are fixed rotary tables, and without it a no-grad forward
    # (reference, evaluation, KTO's KL pass) is not a collective
    return DistributedDataParallel(module, device_ids=ids, broadcast_buffers=False)


def unwrap(module: nn.Module) -> nn.Module:
    return module.module if hasattr(module, "no_sync") and hasattr(module, "module") else module


def sync_context(module: nn.Module, rt: Runtime, last: bool):
    """Gradients are synchronized once per optimizer step, on the last micro-batch."""
    if rt.world == 1 or last:
        if rt.fsdp:
            module.set_requires_gradient_sync(True)
        return contextlib.nullcontext()
    if rt.fsdp:
        module.set_requires_gradient_sync(False)
        return contextlib.nullcontext()
    return module.no_sync()
