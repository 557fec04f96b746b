"""Counts the assertions of the test suite (assert statements, pytest.raises/approx/skip calls), so a
restructure can show it kept every one: `python benchmarks/count_asserts.py [TESTS_DIR]`."""
from __future__ import annotations

import ast
import sys
from pathlib import Path


def count(root: Path) -> dict[str, int]:
    n = {"files": 0, "tests": 0, "assert": 0, "pytest.raises": 0}
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text())
        n["files"] += 1
        for node in ast.walk(tree):
            if isinstance(node, ast.Assert):
                n["assert"] += 1
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test_"):
                n["tests"] += 1
            elif (isinstance(node, ast.Attribute) and node.attr == "raises" and isinstance(node.value, ast.Name)
                  and node.value.id == "pytest"):
                n["pytest.raises"] += 1
    return n


if __name__ == "__main__":
    print(count(Path(sys.argv[1] if len(sys.argv) > 1 else "tests")))
