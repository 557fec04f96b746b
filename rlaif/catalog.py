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


# --- prompt sets: one resolver for every command that reads prompts (`--prompts`, PROMPTS) ---------------------
# The prompts/ catalog also holds judge templates (.txt), the bias-probe items (probes_*.jsonl) and the master-key
# responses (master_keys_*.jsonl): a prompt set is one of its .jsonl files that is neither.
def prompt_set_names() -> list[str]:
    """The built-in prompt sets, by the name commands accept (e.g. ifeval_id)."""
    d = catalog_dir("prompts")
    return sorted(f.stem for f in d.glob("*.jsonl") if not f.name.startswith(("probes", "master_keys", ".")))


def prompt_set(name_or_path: str | Path, option: str = "--prompts") -> Path:
    """A prompt file: a path when one exists there (a user file wins), else the built-in prompt set of that name
    (`ifeval_id` or `ifeval_id.jsonl`); a ConfigError naming `option`, the value and the built-in names."""
    p = Path(name_or_path)
    if p.exists():
        return p
    name = p.name.removesuffix(".jsonl") if p.parent == Path(".") else None
    if name in prompt_set_names():
        return catalog_dir("prompts") / f"{name}.jsonl"
    raise ConfigError(f"{option} {str(name_or_path)!r}: no such file, and no built-in prompt set of that name. "
                      f"Fix: pass a prompt JSONL file, or one of: {', '.join(prompt_set_names())}")


def select(items: list, limit: int | None, offset: int, source: object, unit: str = "prompts") -> list:
    """`--offset`/`--limit` as `rlaif eval` takes them: skip the first `offset` items, keep the next `limit`
    (None: all the rest); a ConfigError when nothing is left, naming `source` and its count."""
    if offset < 0 or (limit is not None and limit < 1):
        raise ConfigError("--limit must be at least 1 and --offset at least 0. Fix: e.g. --limit 5 --offset 0")
    chosen = items[offset:offset + limit if limit else None]
    if not chosen:
        raise ConfigError(f"{source} has {len(items)} {unit}: none left after skipping {offset}. "
                          f"Fix: lower --offset (below {len(items)})")
    return chosen
