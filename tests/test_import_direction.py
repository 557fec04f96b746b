"""The dependency direction of docs/architecture.md, enforced on every module.

records <- stats <- audit, eval <- cli;  records <- backends <- calls <- judge <- eval;
records <- train (never judges, backends, calls or API SDKs). Leaves import no torch and no SDKs.
"""
from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "rlaif"

# module prefix -> prefixes it must never import (rlaif modules or third-party packages)
FORBIDDEN = {
    "rlaif.records": ["rlaif.", "torch", "transformers", "openai", "anthropic", "vllm", "numpy"],
    "rlaif.errors": ["rlaif.", "torch", "transformers", "openai", "anthropic"],
    "rlaif.stats": ["rlaif.backends", "rlaif.calls", "rlaif.judge", "rlaif.train", "rlaif.audit", "rlaif.eval",
                    "rlaif.cli", "torch", "transformers", "openai", "anthropic", "vllm"],
    "rlaif.backends": ["rlaif.calls", "rlaif.judge", "rlaif.train", "rlaif.audit", "rlaif.eval", "rlaif.cli",
                       "rlaif.stats"],
    "rlaif.calls": ["rlaif.judge", "rlaif.train", "rlaif.audit", "rlaif.eval", "rlaif.cli"],
    "rlaif.judge": ["rlaif.train", "rlaif.audit", "rlaif.eval", "rlaif.cli"],
    "rlaif.train": ["rlaif.backends", "rlaif.calls", "rlaif.judge", "rlaif.audit", "rlaif.eval", "rlaif.cli",
                    "rlaif.stats", "openai", "anthropic", "vllm"],
    "rlaif.audit": ["rlaif.backends", "rlaif.calls", "rlaif.judge", "rlaif.train", "rlaif.eval", "rlaif.cli",
                    "torch", "transformers", "openai", "anthropic"],
    "rlaif.eval": ["rlaif.train", "rlaif.cli"],
    "rlaif.report": ["rlaif.backends", "rlaif.calls", "rlaif.judge", "rlaif.train", "rlaif.cli", "torch",
                     "openai", "anthropic"],
}


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def _matches(name: str, prefix: str) -> bool:
    if prefix.endswith("."):
        return name.startswith(prefix)
    return name == prefix or name.startswith(prefix + ".")


def test_no_forbidden_edges():
    bad = []
    for path in PKG.rglob("*.py"):
        mod = _module_name(path)
        for owner, forbidden in FORBIDDEN.items():
            if not _matches(mod, owner):
                continue
            for imp in _imports(path):
                if imp.startswith("rlaif.errors") or (imp.startswith("rlaif.records") and owner != "rlaif.records"):
                    continue
                for f in forbidden:
                    if _matches(imp, f) and not _matches(imp, owner):
                        bad.append(f"{mod} imports {imp} (forbidden: {f})")
    assert not bad, "\n".join(bad)


def test_every_module_imports():
    import importlib

    optional = ("rlaif.backends.vllm_backend",)  # needs vllm (GPU)
    for path in PKG.rglob("*.py"):
        mod = _module_name(path)
        if mod.startswith(optional):
            continue
        importlib.import_module(mod)


def test_cli_help_is_fast_and_light():
    import subprocess
    import sys
    heavy = "('torch', 'transformers', 'openai', 'anthropic', 'pandas')"
    code = f"import sys, rlaif.cli; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", f"rlaif.cli imports heavy modules at start-up: {out}"
    subprocess.run([sys.executable, "-m", "rlaif.cli", "--help"], capture_output=True, check=True)
