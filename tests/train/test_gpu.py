"""GPU checks (skipped without CUDA): bf16 autocast + gradient checkpointing, and FSDP over 2 GPUs."""
from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.support.train_helpers import rows, write_pairs

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]
ROOT = Path(__file__).resolve().parents[2]


def test_dpo_bf16_with_checkpointing_on_gpu(tiny_model_dir, tmp_path):
    from rlaif.train.dpo import train_dpo

    data = write_pairs(tmp_path / "pairs.jsonl", n=32)
    res = train_dpo(data=str(data), model=str(tiny_model_dir), out=str(tmp_path / "o"), max_steps=6, batch_size=8,
                    micro_batch_size=4, lr=1e-3, max_length=96, max_prompt_length=48, device="cuda")
    first = rows(tmp_path / "o")[0]
    assert first["loss"] == pytest.approx(math.log(2), abs=2e-2)  # bf16 log-probs: close to ln 2, not exact
    assert res.steps == 6 and (tmp_path / "o" / "model.safetensors").exists()


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 GPUs")
def test_fsdp_two_gpus_matches_one(tiny_model_dir, tmp_path):
    data = write_pairs(tmp_path / "pairs.jsonl", n=32)
    args = ["train", "dpo", "--data", str(data), "--model", str(tiny_model_dir), "max_steps=2", "batch_size=8",
            "micro_batch_size=4", "max_length=96", "max_prompt_length=48", "precision=fp32", "lr=1e-3"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-m", "rlaif.cli", *args, "-o", str(tmp_path / "one")], check=True, env=env)
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                    "-m", "rlaif.cli", *args, "fsdp=true", "-o", str(tmp_path / "fsdp")], check=True, env=env)
    for a, b in zip(rows(tmp_path / "one"), rows(tmp_path / "fsdp"), strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-3)
