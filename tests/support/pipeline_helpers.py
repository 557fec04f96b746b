"""A rule checker that `checker="pipeline_helpers:parity"` specs name in tests/pipelines/ (importable by bare
name: tests/support is on sys.path, a test module is not under --import-mode=importlib)."""
from __future__ import annotations


def parity(constraints, response: str) -> float:
    """Even-length responses pass."""
    return float(len(response) % 2 == 0)
