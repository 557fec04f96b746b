"""`rlaif train` on a few prompts (issue 23, items 9 and 10): `--limit`/`--offset` on the online recipes,
with a built-in prompt set's name; the offline recipes refuse them."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from rlaif.catalog import prompt_set
from rlaif.records import read_prompts
from tests.support.cli_helpers import rlaif_inproc

ROOT = Path(__file__).resolve().parents[2]


def test_grpo_trains_on_the_prompts_limit_and_offset_pick(tiny_model_dir, tmp_path):
    record = tmp_path / "seen.txt"
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'tests' / 'support'}", "OMP_NUM_THREADS": "1",
           "RLAIF_TEST_RECORD": str(record)}
    p = subprocess.run([sys.executable, "-m", "rlaif.cli", "train", "grpo", "--prompts", "ifeval_id", "--limit", "2",
                        "--offset", "3", "--model", str(tiny_model_dir), "--reward",
                        "python:reward_helpers:record_prompt_ids", "-o", str(tmp_path / "run"), "max_steps=2",
                        "batch_size=2", "k=2", "max_new_tokens=4"], capture_output=True, text=True, env=env,
                       timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    every = [x.prompt_id for x in read_prompts(prompt_set("ifeval_id"))]
    seen = record.read_text().split()
    assert len(seen) == 8 and set(seen) == set(every[3:5])  # 2 steps x 2 prompts x k=2
    config = (tmp_path / "run" / "config.yaml").read_text()
    assert "prompts_offset: 3" in config and "prompts_limit: 2" in config  # a resume reads the same prompts


def test_offline_recipes_refuse_limit_and_offset(tmp_path):
    prefs = tmp_path / "p.jsonl"
    prefs.write_text('{"prompt": "q", "chosen": "a", "rejected": "b"}\n')
    for flag in ("--limit", "--offset"):
        r = rlaif_inproc("train", "dpo", "--data", prefs, flag, "2", "-o", tmp_path / "o")
        assert r.code == 2 and "--limit, --offset" in r.stderr and "Fix: drop them" in r.stderr
    assert not (tmp_path / "o").exists()
