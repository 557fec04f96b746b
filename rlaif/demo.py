"""`rlaif demo`: the best real path that exists so far (grows into the whole loop)."""
from __future__ import annotations

from pathlib import Path


def run_demo(out: Path, quick: bool = False) -> None:
    raise NotImplementedError
