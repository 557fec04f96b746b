"""Regenerate the shipped prompt sets: `python -m rlaif.instructions.promptsets [OUT_DIR]` (default: ./prompts)."""
from __future__ import annotations

import sys
from pathlib import Path

from rlaif.instructions.promptsets import assistant, ifeval
from rlaif.records import write_jsonl


def write_all(out_dir: Path) -> list[Path]:
    paths = []
    for name, rows in ifeval.build().items():
        paths.append(write_jsonl(out_dir / f"{name}.jsonl", rows))
    paths.append(write_jsonl(out_dir / "assistant.jsonl", assistant.build()))
    return paths


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("prompts")
    for p in write_all(out):
        print(p)
