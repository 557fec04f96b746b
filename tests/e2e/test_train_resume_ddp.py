"""Real subprocesses: a run SIGKILLed mid-training resumes to the uninterrupted result; 2-process DDP = 1 process."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.support.train_helpers import kill_after_rows, rows, write_pairs

ROOT = Path(__file__).resolve().parents[2]
COMMON = ["batch_size=8", "micro_batch_size=4", "lr=1e-3", "max_length=96", "max_prompt_length=48", "threads=1"]
COMPARED = ("loss", "rewards_chosen", "rewards_rejected", "reward_accuracy", "reward_margin", "kl", "grad_norm", "lr")


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def _cmd(data, model, out, *extra, recipe: str = "dpo") -> list[str]:
    return [sys.executable, "-m", "rlaif.cli", "train", recipe, "--data", str(data), "--model", str(model),
            "-o", str(out), *COMMON, *extra]


def test_resume_after_sigkill_matches_an_uninterrupted_run(tiny_model_dir, tmp_path):
    data = write_pairs(tmp_path / "pairs.jsonl", n=48)
    extra = ("max_steps=40", "save_every=3", "eval_every=20")
    full = tmp_path / "full"
    subprocess.run(_cmd(data, tiny_model_dir, full, *extra), check=True, env=_env(), capture_output=True)

    killed = tmp_path / "killed"
    proc = subprocess.Popen(_cmd(data, tiny_model_dir, killed, *extra), env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kill_after_rows(proc, killed, 8)  # a few steps (and a checkpoint), well before the end
    done_before = len(rows(killed))
    assert 3 <= done_before < 40

    resumed = subprocess.run(_cmd(data, tiny_model_dir, killed, *extra), env=_env(), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    step = int(resumed.stderr.split("resuming from")[1].split("at step")[1].split()[0])
    assert step % 3 == 0 and 3 <= step <= done_before  # from the last periodic checkpoint

    a, b = rows(full), rows(killed)
    assert [r["step"] for r in b] == list(range(1, 41))  # rows after the checkpoint were written once, not twice
    for ra, rb in zip(a, b, strict=True):
        for key in COMPARED:
            assert ra[key] == pytest.approx(rb[key], rel=1e-6, abs=1e-7), (ra["step"], key)
    assert rows(full, "eval")[-1]["loss"] == pytest.approx(rows(killed, "eval")[-1]["loss"], rel=1e-6)
    wa, wb = load_file(full / "model.safetensors"), load_file(killed / "model.safetensors")
    assert all(torch.allclose(wa[k], wb[k], atol=1e-6) for k in wa)


@pytest.mark.parametrize("recipe", ["dpo", "kto"])
def test_two_process_ddp_equals_one_process(tiny_model_dir, tmp_path, recipe):
    """torchrun, 2 CPU processes (gloo), 4 examples each, against one process with the same global batch of 8.
    For KTO the KL reference point is measured over the global batch across both processes."""
    data = write_pairs(tmp_path / "pairs.jsonl", n=90)  # dpo: 9 held-out pairs, 5 and 4 per process
    extra = ("max_steps=3", "eval_fraction=0.1", "save_every=100")
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    subprocess.run(_cmd(data, tiny_model_dir, single, *extra, recipe=recipe), check=True, env=_env(),
                   capture_output=True)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    proc = subprocess.run(torchrun + _cmd(data, tiny_model_dir, ddp, *extra, recipe=recipe)[1:], env=_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    a, b = rows(single), rows(ddp)
    assert len(a) == len(b) == 3
    compared = [k for k in COMPARED if k in a[0]]
    for ra, rb in zip(a, b, strict=True):
        for key in compared:
            if key == "reward_accuracy" and ra["step"] == 1:
                continue  # at step 0 every reward is 0 up to rounding: its sign (the "accuracy") is noise
            if ra[key] is None or rb[key] is None:  # e.g. no undesirable example in this KTO batch
                assert ra[key] == rb[key]
                continue
            assert ra[key] == pytest.approx(rb[key], rel=1e-4, abs=1e-5), (ra["step"], key, ra[key], rb[key])
    assert rows(single, "eval")[-1]["loss"] == pytest.approx(rows(ddp, "eval")[-1]["loss"], rel=1e-4)
    wa, wb = load_file(single / "model.safetensors"), load_file(ddp / "model.safetensors")
    assert all(torch.allclose(wa[k], wb[k], atol=1e-5) for k in wa)
