"""The annotator file (`annotators.csv`): one row per annotator, `annotator` plus any columns
(region, expertise, vendor, age band, ...), for the audit's group and coverage analyses."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from rlaif.annotations.canonical import load_rows
from rlaif.errors import InputError

_FIX = "one row per annotator: a column `annotator` (the ids used in the labels) plus any attribute columns"


@dataclass
class Annotators:
    """Attributes by annotator id, and the attribute columns in file order."""

    path: str
    columns: list[str]
    attributes: dict[str, dict[str, str]] = field(default_factory=dict)

    def unknown(self, raters: Iterable[str]) -> list[str]:
        """Raters of the labels that the file does not describe, sorted."""
        return sorted(set(raters) - set(self.attributes))

    def unlabeled(self, raters: Iterable[str]) -> list[str]:
        """Annotators of the file with no label."""
        return sorted(set(self.attributes) - set(raters))


def read_annotators(path: str | Path) -> Annotators:
    """Read an annotator file (CSV, TSV, JSONL or a JSON list); a missing or repeated id names its line."""
    path = Path(path)
    out: Annotators | None = None
    first_line: dict[str, int] = {}
    for n, row in load_rows(path):
        if "annotator" not in row:
            raise InputError(path, n, "no `annotator` column", _FIX)
        who = str(row["annotator"] if row["annotator"] is not None else "").strip()
        if not who:
            raise InputError(path, n, "a row without an annotator id", _FIX)
        if who in first_line:
            raise InputError(path, n, f"annotator '{who}' is listed twice (first on line {first_line[who]})",
                             "keep one row per annotator (merge the two rows' attributes)")
        first_line[who] = n
        if out is None:
            out = Annotators(str(path), [k for k in row if k != "annotator"])
        out.attributes[who] = {k: "" if v is None else str(v).strip() for k, v in row.items() if k != "annotator"}
    if out is None:
        raise InputError(path, None, "the annotator file lists no annotators", _FIX)
    return out
