"""What `rlaif train` shows, as a user runs it (real subprocesses): a line per log interval without a terminal and
a bar on one (a pty), a short summary instead of a JSON dump, no library load bars or LOAD REPORT tables, the
checkpoint removed at the end (kept with --keep-checkpoint), and a finished run's command run again."""
from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

from tests.support.train_helpers import write_pairs

ROOT = Path(__file__).resolve().parents[2]
COMMON = ["batch_size=4", "micro_batch_size=4", "max_length=64", "max_prompt_length=32", "threads=1", "max_steps=4",
          "log_every=2", "eval_fraction=0.2"]
ESC = "\x1b["


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def _cmd(data: Path, model: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "rlaif.cli", "train", "dpo", "--data", str(data), "--model", str(model),
            "-o", str(out), *COMMON, *extra]


def _run(*args: str | Path, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(_cmd(*args), env=_env(), capture_output=True, text=True, timeout=300, **kw)


def test_without_a_terminal_a_line_per_log_interval_then_a_summary(tiny_model_dir, tmp_path):
    data, out = write_pairs(tmp_path / "pairs.jsonl", n=24), tmp_path / "dpo"
    r = _run(data, tiny_model_dir, out)
    assert r.returncode == 0, r.stderr[-2000:]
    # stderr: one plain line at steps 2 and 4 (log_every=2), nothing from transformers (no loading/writing bars)
    lines = r.stderr.strip().splitlines()
    assert [ln.split()[:2] for ln in lines] == [["dpo", "2/4"], ["dpo", "4/4"]], r.stderr
    assert re.search(r"loss \d\.\d{4} acc \d\.\d\d margin -?\d\.\d{3} .*ETA \d+s$", lines[0]), lines[0]
    assert ESC not in r.stderr and "\r" not in r.stderr and "Loading weights" not in r.stderr
    # stdout: the summary, not the result's JSON (which stays in OUT/train_result.json)
    assert not r.stdout.lstrip().startswith("{") and '"out_dir"' not in r.stdout
    saved = json.loads((out / "train_result.json").read_text())
    assert re.fullmatch(r"dpo finished: 4 steps \(stopped by max_steps\) in \d+s", r.stdout.splitlines()[0])
    assert f"  model       {out}  (Hugging Face format" in r.stdout
    assert f"loss {saved['train']['loss']:.4f}" in r.stdout and f"loss {saved['eval']['loss']:.4f}" in r.stdout
    # the next command names the model as training wrote it: OUT itself, not OUT/model
    assert f"next: rlaif eval ifeval --policy dpo=hf:{out} --baseline hf:{tiny_model_dir}" in r.stdout
    assert (out / "model.safetensors").exists() and not (out / "model").exists()
    # the checkpoint is gone once the model is saved, and the summary says how much that freed
    assert not (out / "checkpoint").exists() and saved["checkpoint_kept"] is False
    mb = saved["checkpoint_bytes"] / 1e6
    assert mb > 1 and f"checkpoint  removed ({mb:.1f} MB freed); --keep-checkpoint keeps it" in r.stdout


def test_a_finished_run_run_again_trains_nothing_and_other_settings_are_refused(tiny_model_dir, tmp_path):
    data, out = write_pairs(tmp_path / "pairs.jsonl", n=24), tmp_path / "dpo"
    assert _run(data, tiny_model_dir, out).returncode == 0
    weights = (out / "model.safetensors").stat().st_mtime_ns
    again = _run(data, tiny_model_dir, out)
    assert again.returncode == 0, again.stderr
    assert f"dpo: {out} already holds this run, finished (4 steps): nothing trained" in again.stdout
    assert "resume=false trains it again from scratch" in again.stderr
    assert (out / "model.safetensors").stat().st_mtime_ns == weights  # untouched
    longer = _run(data, tiny_model_dir, out, "max_steps=6")  # nothing to continue from: said, not retrained
    assert longer.returncode == 2 and "Traceback" not in longer.stderr
    assert f"{out} holds a finished run with other settings (max_steps changed)" in longer.stderr
    assert "Fix: another -o directory, or resume=false" in longer.stderr
    fresh = _run(data, tiny_model_dir, out, "max_steps=6", "resume=false")
    assert fresh.returncode == 0 and "dpo finished: 6 steps" in fresh.stdout


def test_keep_checkpoint_keeps_it_and_the_run_can_be_extended(tiny_model_dir, tmp_path):
    data, out = write_pairs(tmp_path / "pairs.jsonl", n=24), tmp_path / "dpo"
    r = _run(data, tiny_model_dir, out, "--keep-checkpoint")
    assert r.returncode == 0, r.stderr
    assert (out / "checkpoint" / "progress.json").exists() and f"checkpoint  kept in {out}/checkpoint" in r.stdout
    more = _run(data, tiny_model_dir, out, "--keep-checkpoint", "max_steps=6")
    assert more.returncode == 0 and f"resuming from {out / 'checkpoint'} at step 4" in more.stderr
    assert "dpo finished: 6 steps" in more.stdout


def test_a_load_report_becomes_one_plain_line_when_weights_were_newly_initialised(tiny_rm_dir, tmp_path):
    """A reward model's folder given as the policy: its LM head is missing (random) — a real warning, said in one
    line without the colored table; its unused score head alone would be noise."""
    data = write_pairs(tmp_path / "pairs.jsonl", n=24)
    r = _run(data, tiny_rm_dir, tmp_path / "dpo")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "LOAD REPORT" not in r.stderr and ESC not in r.stderr
    assert (f"LlamaForCausalLM from: {tiny_rm_dir}: 1 weight(s) missing and 0 of another shape were newly "
            "initialised (random)") in r.stderr


def test_on_a_terminal_a_bar_with_steps_loss_and_time(tiny_model_dir, tmp_path):
    data, out = write_pairs(tmp_path / "pairs.jsonl", n=24), tmp_path / "dpo"
    main, child = pty.openpty()
    proc = subprocess.Popen(_cmd(data, tiny_model_dir, out), env={**_env(), "COLUMNS": "160"}, stdin=child,
                            stdout=child, stderr=child, close_fds=True)
    os.close(child)
    seen, deadline = b"", time.time() + 300
    while time.time() < deadline:
        if select.select([main], [], [], 0.5)[0]:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # the child closed the pty
                break
            if not chunk:
                break
            seen += chunk
        elif proc.poll() is not None:
            break
    proc.wait(timeout=60)
    os.close(main)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", seen.decode("utf-8", "replace"))
    assert proc.returncode == 0, text[-2000:]
    assert "━" in text and "4/4" in text and "loss 0." in text  # rich's bar, steps done/total, the loss
    assert "dpo 2/4  loss" not in text  # the bar, not the plain lines
    assert "dpo finished: 4 steps" in text
