"""Markdown helpers: tables and numbers formatted the same way as the HTML report.

Every model-provided text (names, categories, snippets) goes through `md_text`, in headings,
list items and table cells alike, so it shows as written and cannot add links, images, HTML,
emphasis, math or table columns.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any


def fmt(value: Any, digits: int = 3) -> str:
    """Floats to `digits` places, None/NaN as an em dash, booleans as yes/no, the rest as str."""
    if value is None:
        return "\u2014"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if hasattr(value, "item") and not isinstance(value, (list, tuple, dict)):  # numpy scalar
        value = value.item()
    if isinstance(value, float):
        return "\u2014" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def table_rows(rows: Sequence[Mapping[str, Any]] | Sequence[Sequence[Any]], columns: Sequence[str] | None,
               headers: Sequence[str] | None) -> tuple[list[str], list[list[Any]]]:
    """(shown headers, body cells) from dicts (columns = first row's keys unless given) or lists."""
    rows = list(rows)
    if rows and isinstance(rows[0], Mapping):
        columns = list(columns or rows[0].keys())
        body = [[r.get(c) for c in columns] for r in rows]
    else:
        body = [list(r) for r in rows]
        columns = list(columns or [])
    return list(headers or columns), body


_MD_SPECIAL = "\\`*_[]<>|~$"
_MD_ESCAPES = str.maketrans({c: "\\" + c for c in _MD_SPECIAL} | {"\r": " ", "\n": " "})


def md_text(text: Any) -> str:
    """`text` as literal inline markdown on one line: markup characters backslash-escaped, breaks as spaces."""
    return str(text).translate(_MD_ESCAPES)


def _cell(value: Any, digits: int) -> str:
    return md_text(fmt(value, digits))


def md_table(rows: Sequence[Mapping[str, Any]] | Sequence[Sequence[Any]], columns: Sequence[str] | None = None, *,
             headers: Sequence[str] | None = None, digits: int = 3) -> str:
    """A GitHub-flavoured markdown table from dicts (columns = first row's keys unless given) or lists.

    Numeric columns are right-aligned.
    """
    shown, body = table_rows(rows, columns, headers)
    numeric = [all(isinstance(r[i], (int, float)) and not isinstance(r[i], bool) or r[i] is None for r in body)
               and any(r[i] is not None for r in body) for i in range(len(shown))]
    out = ["| " + " | ".join(_cell(h, digits) for h in shown) + " |",
           "| " + " | ".join("---:" if num else "---" for num in numeric) + " |"]
    out += ["| " + " | ".join(_cell(v, digits) for v in r) + " |" for r in body]
    return "\n".join(out) + "\n"
