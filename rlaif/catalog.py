"""Find the shipped catalog data: judges/, evals/, prompts/.

In a source checkout they sit beside the package; in a wheel they are mapped
under `rlaif/_catalog/` (see pyproject.toml). A user file path always wins over
a built-in name.
"""
from __future__ import annotations

from pathlib import Path

from rlaif.errors import ConfigError

_PKG = Path(__file__).resolve().parent
KINDS = ("judges", "evals", "prompts")


def catalog_dir(kind: str) -> Path:
    assert kind in KINDS, kind
    for base in (_PKG / "_catalog", _PKG.parent):
        d = base / kind
        if d.is_dir():
            return d
    raise ConfigError(f"the built-in {kind}/ catalog is missing from this install. Fix: reinstall rlaif")


def find(kind: str, name_or_path: str, suffixes: tuple[str, ...] = (".yaml", ".yml", ".jsonl", ".txt", ".j2")) -> Path:
    """A user path if it exists, else a built-in of that name in the catalog."""
    p = Path(name_or_path)
    if p.exists():
        return p
    d = catalog_dir(kind)
    for cand in [d / name_or_path, *(d / f"{name_or_path}{s}" for s in suffixes)]:
        if cand.is_file():
            return cand
    names = sorted({f.stem for f in d.iterdir() if f.is_file() and not f.name.startswith(".")})
    raise ConfigError(f"no file '{name_or_path}' and no built-in in {kind}/ of that name. "
                      f"Fix: pass a path, or one of: {', '.join(names)}")


def builtin_names(kind: str) -> list[str]:
    d = catalog_dir(kind)
    return sorted(f.stem for f in d.iterdir() if f.is_file() and not f.name.startswith("."))
