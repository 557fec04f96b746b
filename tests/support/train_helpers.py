"""Synthetic, learnable preference data for the training tests: chosen responses carry a marker."""
from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from pathlib import Path

WORDS = "apple river stone cloud green quick silent bright north paper window garden".split()
MARKER = "OK!"


def write_pairs(path: Path, n: int = 48, seed: int = 0, soft: bool = False) -> Path:
    rng = random.Random(seed)
    with path.open("w") as f:
        for i in range(n):
            topic = " ".join(rng.sample(WORDS, 3))
            good = " ".join(rng.choices(WORDS, k=rng.randint(3, 9)))
            bad = " ".join(rng.choices(WORDS, k=rng.randint(3, 9)))
            row = {"prompt": f"Say something about {topic}.", "chosen": f"{MARKER} {good}", "rejected": bad,
                   "prompt_id": f"p{i}"}
            if soft:
                row["p_chosen"] = rng.choice([0.6, 0.8, 1.0])
            f.write(json.dumps(row) + "\n")
    return path


def write_kto(path: Path, n: int = 40, seed: int = 0) -> Path:
    """3 desirable (marker) for every undesirable example."""
    rng = random.Random(seed)
    with path.open("w") as f:
        for i in range(n):
            topic = " ".join(rng.sample(WORDS, 3))
            text = " ".join(rng.choices(WORDS, k=rng.randint(3, 9)))
            good = i % 4 != 0
            f.write(json.dumps({"prompt": f"Say something about {topic}.",
                                "completion": f"{MARKER} {text}" if good else text, "label": good}) + "\n")
    return path


def rows(out: Path, split: str = "train") -> list[dict]:
    return [r for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()) if r["split"] == split]


def kill_after_rows(proc: subprocess.Popen, out: Path, n: int, timeout: float = 120) -> None:
    """SIGKILL a training subprocess once OUT/metrics.jsonl has n rows (or it ended, or `timeout` passed);
    fails the test when the run finished before it could be killed."""
    import pytest

    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        metrics = out / "metrics.jsonl"
        if metrics.exists() and len(metrics.read_text().splitlines()) >= n:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if (out / "train_result.json").exists():
        pytest.fail("the run finished before it could be killed; the test needs a slower run")
