"""The dependency direction of docs/architecture.md, enforced on every module.

records <- stats <- audit, eval <- cli;  records <- backends <- calls <- judge <- eval;
records <- train (never judges, backends, calls or API SDKs); judge <- rewards (never train, cli or eval)
<- serve (never train; nothing below imports it); client: httpx and rlaif.errors only; integrations (the
trainers' adapters) at the top, never imported by rlaif, the OpenRLHF file importing nothing of rlaif.
Leaves (scoring among them) import no torch and no SDKs.
"""
from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "rlaif"

# module prefix -> prefixes it must never import (rlaif modules or third-party packages)
FORBIDDEN = {
    "rlaif.records": ["rlaif.", "torch", "transformers", "openai", "anthropic", "vllm", "numpy"],
    "rlaif.errors": ["rlaif.", "torch", "transformers", "openai", "anthropic"],
    "rlaif.outlock": ["rlaif.records", "rlaif.backends", "rlaif.calls", "rlaif.judge", "rlaif.train", "rlaif.eval",
                      "rlaif.cli", "pydantic", "torch", "transformers", "openai", "anthropic", "numpy"],
    "rlaif.stats": ["rlaif.backends", "rlaif.calls", "rlaif.judge", "rlaif.train", "rlaif.audit", "rlaif.eval",
                    "rlaif.cli", "rlaif.labelers", "torch", "transformers", "openai", "anthropic", "vllm"],
    "rlaif.backends": ["rlaif.calls", "rlaif.judge", "rlaif.train", "rlaif.audit", "rlaif.eval", "rlaif.cli",
                       "rlaif.stats"],
    "rlaif.calls": ["rlaif.judge", "rlaif.train", "rlaif.audit", "rlaif.eval", "rlaif.cli"],
    # The cache stands alone (`rlaif cache` reads it without the worker pool); progress is a leaf.
    "rlaif.calls.cache": ["rlaif.calls.pool", "rlaif.judge", "rlaif.train", "rlaif.eval",
                          "rlaif.cli", "torch", "transformers", "openai", "anthropic"],
    "rlaif.progress": ["rlaif.", "torch", "transformers", "openai", "anthropic", "vllm", "numpy"],
    # whether bf16 runs faster here: a leaf (torch, imported when asked)
    "rlaif.hardware": ["rlaif.", "transformers", "openai", "anthropic", "vllm", "numpy"],
    "rlaif.judge": ["rlaif.train", "rlaif.rewards", "rlaif.audit", "rlaif.eval", "rlaif.cli"],
    "rlaif.train": ["rlaif.backends", "rlaif.calls", "rlaif.judge", "rlaif.rewards", "rlaif.audit", "rlaif.eval",
                    "rlaif.cli", "rlaif.stats", "openai", "anthropic", "vllm"],
    # above judge: turns --reward specs into the trainers' reward callable; the trained reward model comes
    # through rlaif.scoring's lazy factory, never by import
    "rlaif.rewards": ["rlaif.train", "rlaif.cli", "rlaif.eval", "rlaif.pipelines", "rlaif.serve", "rlaif.client"],
    # the service sits above rewards and judge; nothing below it imports it, and it imports no training code
    "rlaif.serve": ["rlaif.train", "rlaif.cli", "rlaif.eval", "rlaif.pipelines", "rlaif.client"],
    # the scorer contract and registry: a leaf (stdlib + errors); its factories are named, not imported
    "rlaif.scoring": ["rlaif.", "torch", "transformers", "openai", "anthropic", "vllm", "numpy", "httpx"],
    # the client of the service: httpx and rlaif.errors only
    "rlaif.client": ["rlaif.", "torch", "transformers", "openai", "anthropic", "vllm", "numpy", "pydantic",
                     "starlette", "uvicorn"],
    "rlaif.audit": ["rlaif.backends", "rlaif.calls", "rlaif.judge", "rlaif.train", "rlaif.eval", "rlaif.cli",
                    "torch", "transformers", "openai", "anthropic"],
    "rlaif.eval": ["rlaif.train", "rlaif.cli"],
    # annotation importers: records and errors only (the audit and convert read them, never the reverse)
    "rlaif.annotations": ["rlaif.backends", "rlaif.calls", "rlaif.judge", "rlaif.train", "rlaif.audit", "rlaif.eval",
                          "rlaif.cli", "rlaif.convert", "rlaif.elo", "rlaif.report", "rlaif.stats", "rlaif.labelers",
                          "torch",
                          "transformers", "openai", "anthropic", "vllm", "numpy", "pandas"],
    # the human-labeler audit: records, annotations, stats, report; never calls, judges or training
    "rlaif.labelers": ["rlaif.backends", "rlaif.calls", "rlaif.judge", "rlaif.train", "rlaif.eval", "rlaif.cli",
                       "rlaif.pipelines", "rlaif.rewards", "torch", "transformers", "openai", "anthropic", "vllm"],
    "rlaif.report": ["rlaif.backends", "rlaif.calls", "rlaif.judge", "rlaif.train", "rlaif.cli", "torch",
                     "openai", "anthropic"],
    "rlaif.instructions": ["rlaif.backends", "rlaif.calls", "rlaif.judge", "rlaif.train", "rlaif.audit",
                           "rlaif.eval", "rlaif.cli", "torch", "transformers", "openai", "anthropic", "vllm"],
}
# The trainers' adapters sit at the top, beside the CLI: nothing of rlaif imports them. OpenRLHF's file imports
# nothing of rlaif (it must work copied to a machine without it); verl's reaches the client and the rewards.
FORBIDDEN["rlaif.integrations.openrlhf_reward"] = ["rlaif.", "httpx", "pydantic", "transformers", "numpy"]
FORBIDDEN["rlaif.integrations"] = ["rlaif.train", "rlaif.cli", "rlaif.eval", "rlaif.pipelines"]
for _owner in [o for o in FORBIDDEN if not o.startswith("rlaif.integrations")]:
    FORBIDDEN[_owner] = [*FORBIDDEN[_owner], "rlaif.integrations"]
# The one exception to a prefix above: records validates each constraint's fields as a prompt file is read, with
# the constraint table (a leaf itself: stdlib and rlaif.errors).
ALLOWED = {"rlaif.records": "rlaif.instructions.constraints"}
# Nothing below the service imports it or its client.
for _below in ("rlaif.backends", "rlaif.calls", "rlaif.judge", "rlaif.train", "rlaif.eval", "rlaif.stats",
               "rlaif.audit", "rlaif.report", "rlaif.instructions", "rlaif.scoring", "rlaif.annotations",
               "rlaif.labelers"):
    FORBIDDEN[_below] = [*FORBIDDEN[_below], "rlaif.serve", "rlaif.client"]
# The pipelines (demo, online DPO) sit above everything but the CLI; the report renders their typed results.
for _below in ("rlaif.records", "rlaif.outlock", "rlaif.stats", "rlaif.backends", "rlaif.calls", "rlaif.progress",
               "rlaif.judge", "rlaif.train", "rlaif.rewards", "rlaif.serve", "rlaif.audit", "rlaif.eval",
               "rlaif.report", "rlaif.instructions", "rlaif.scoring"):
    FORBIDDEN[_below] = [*FORBIDDEN[_below], "rlaif.pipelines"]


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
                if _matches(imp, ALLOWED.get(owner, "-")):
                    continue
                for f in forbidden:
                    if _matches(imp, f) and not _matches(imp, owner):
                        bad.append(f"{mod} imports {imp} (forbidden: {f})")
    assert not bad, "\n".join(bad)


def test_names_become_code_only_in_the_scorer_registry():
    """rlaif.scoring's factories are imported by name, around the edges above; so they are checked here: no
    factory lives in train, the trained reward model is the one name of training code, no other module of
    ours names code of ours as 'module:attr', and no shipped judge YAML names rlaif code."""
    import re

    from rlaif import scoring

    named = re.compile(r"""["']rlaif\.[\w.]+:\w+["']""")
    for kind in scoring.KINDS.values():
        assert not _matches(kind.factory.partition(":")[0], "rlaif.train"), kind
    text = (PKG / "scoring.py").read_text(encoding="utf-8")
    assert [m for m in named.findall(text) if "rlaif.train" in m] == [
        '"rlaif.train.reward_model:RewardScorer"', '"rlaif.train.reward:RewardScorer"']  # and its old spelling
    others = [f"{p}: {m}" for p in PKG.rglob("*.py") if p.name != "scoring.py"
              for m in named.findall(p.read_text(encoding="utf-8"))]
    assert not others, others
    yamls = [p.name for p in (PKG.parent / "judges").glob("*.yaml")
             if any("rlaif." in line.partition("#")[0] for line in p.read_text(encoding="utf-8").splitlines())]
    assert not yamls, yamls


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


def _module_graph() -> dict[str, set[str]]:
    """Our modules -> the modules of ours they import (any depth of the file, lazy imports included)."""
    modules = {_module_name(p): p for p in PKG.rglob("*.py")}
    graph = {}
    for mod, path in modules.items():
        edges = set()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = mod.split(".")[: len(mod.split(".")) - node.level + (path.name == "__init__.py")]
                names = [".".join(base + ([node.module] if node.module else []))]
                names += [f"{names[0]}.{a.name}" for a in node.names]
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names = _imports_of(node)
            else:
                continue
            for name in names:
                # `from rlaif.x import y` names module rlaif.x.y when that is a module, else rlaif.x
                while name and name not in modules:
                    name = name.rpartition(".")[0]
                if name and name != mod:
                    edges.add(name)
        graph[mod] = edges
    return graph


def _imports_of(node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    return [f"{node.module}.{a.name}" for a in node.names] if node.module else []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each a cycle to report."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _is_package_parent(parent: str, child: str) -> bool:
    return child.startswith(parent + ".")


def test_no_import_cycles():
    graph = _module_graph()
    # A package's __init__ re-exporting its own submodules is not a cycle between subjects.
    graph = {m: {d for d in deps if not _is_package_parent(m, d)} for m, deps in graph.items()}
    cycles = _cycles(graph)
    assert not cycles, "import cycles between rlaif modules:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_cycle_check_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
