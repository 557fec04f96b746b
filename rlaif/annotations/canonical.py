"""The canonical annotation file (`-f csv` / `-f annotations`): one row per annotation, CSV, TSV, JSONL or JSON.

Columns: annotator, item, prompt, model_a, model_b, response_a, response_b, choice, strength, created_at,
and optionally lead_time_s, topic, status, confidence. `choice` (a, b, tie) is in terms of the row's own
model_a/model_b as shown, a = shown first (left); rows of one item may show the models either way round.
A row with a `rating` (a number) and no second side is a rating of one response (model_a/response_a), e.g.
a 1-5 offensiveness or quality score.
Other columns are kept on the label as they are (e.g. a category for the coverage audit).
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rlaif.annotations.core import (
    CANONICAL,
    DROPPED_STATUS,
    Dropped,
    Shown,
    Side,
    annotator_id,
    number_or_text,
    parse_seconds,
    parse_time,
    read_choice,
    where_error,
)
from rlaif.errors import InputError
from rlaif.records import iter_json_lines, read_json_file, read_text

# what the importer itself writes; any other column (category, p_a, a vendor's own) is kept on the label
_KNOWN = frozenset(CANONICAL) | {"rater", "winner", "order", "repeat", "error"}
_FIX = ("the canonical file needs the columns annotator, choice and model_a/model_b or response_a/response_b "
        "(rename yours with --map COLUMN=NAME)")


def load_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line, row) from a CSV/TSV (by extension), a JSON list or a JSONL file."""
    if path.suffix.lower() in (".csv", ".tsv"):
        yield from _csv_rows(path, "\t" if path.suffix.lower() == ".tsv" else ",")
        return
    text = read_text(path)
    if text.lstrip().startswith("["):
        data = read_json_file(path)
        for n, obj in enumerate(data, 1):
            if not isinstance(obj, dict):
                raise InputError(path, None, f"record {n} is not a JSON object", "expected a list of objects")
            yield n, obj
        return
    yield from iter_json_lines(path)


def _csv_rows(path: Path, delimiter: str) -> Iterator[tuple[int, dict[str, Any]]]:
    text = read_text(path)
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""), delimiter=delimiter)
    try:
        header = next(reader, None)
        if not header:
            raise InputError(path, None, "the file is empty (no header line)", _FIX)
        header = [h.strip() for h in header]
        start = reader.line_num + 1
        for row in reader:
            if len(row) > len(header):
                raise InputError(path, start, f"{len(row)} fields but the header has {len(header)}",
                                 "quote fields that hold the delimiter")
            if any(c.strip() for c in row):
                yield start, dict(zip(header, row, strict=False))
            start = reader.line_num + 1
    except csv.Error as e:
        raise InputError(path, reader.line_num, f"not valid CSV ({e})", "fix the quoting on that line") from None


def rename(row: dict[str, Any], mapping: dict[str, str]) -> dict[str, Any]:
    """The row under canonical names, blank cells dropped (so a missing and an empty cell read alike)."""
    return {mapping.get(k, k): v for k, v in row.items()
            if v is not None and not (isinstance(v, str) and (not v or v.isspace()))}


def read_canonical(paths: list[Path], mapping: dict[str, str], table: dict) -> tuple[list[Shown], list[Dropped]]:
    shown: list[Shown] = []
    dropped: list[Dropped] = []
    for path in paths:
        for n, raw in load_rows(path):
            row = rename(raw, mapping)
            where = f"{path}:{n}"
            status = str(row["status"]).strip().lower() if "status" in row else None
            if status in DROPPED_STATUS:
                dropped.append(Dropped(DROPPED_STATUS[status], where))
                continue
            if "rating" in row and "choice" not in row and "model_b" not in row and "response_b" not in row:
                shown.append(_rating_row(row, where, status))
                continue
            if "choice" not in row:
                if not any(mapping.get(k, k) in ("choice", "rating") for k in raw):  # no such column at all
                    raise InputError(path, n, "no choice column", _FIX)
                dropped.append(Dropped("no choice", where))
                continue
            shown.append(_row(row, where, table, status))
    return shown, dropped


def _extra(row: dict[str, Any], where: str, status: str | None, strength: Any = None) -> dict[str, Any]:
    extra: dict[str, Any] = {
        "created_at": parse_time(row.get("created_at"), where),
        "lead_time_s": parse_seconds(row.get("lead_time_s"), where),
        "strength": number_or_text(row["strength"]) if "strength" in row else strength,
        "confidence": number_or_text(row.get("confidence")),
        "topic": str(row["topic"]).strip() if "topic" in row else None,
        "status": status,
    }
    extra.update({k: v for k, v in row.items() if k not in _KNOWN})
    return extra


def _rating_row(row: dict[str, Any], where: str, status: str | None) -> Shown:
    rater = annotator_id(row.get("annotator"), where)
    ma, ra = row.get("model_a"), row.get("response_a")
    if ma is None and ra is None and row.get("item") is None:
        raise where_error(where, "a rating of nothing: no item, model_a or response_a", _FIX)
    rating = number_or_text(row["rating"])
    if not isinstance(rating, float):
        raise where_error(where, f"rating {row['rating']!r} is not a number", "give ratings as numbers, e.g. 1-5")
    item = row.get("item")
    return Shown(where=where, rater=rater, first=Side(model=None if ma is None else str(ma).strip(), response=ra),
                 second=None, choice=None, item=None if item is None else str(item).strip(),
                 prompt=row.get("prompt"), extra=_extra(row, where, status), rating=rating)


def _row(row: dict[str, Any], where: str, table: dict, status: str | None) -> Shown:
    rater = annotator_id(row.get("annotator"), where)
    ma, mb, ra, rb = row.get("model_a"), row.get("model_b"), row.get("response_a"), row.get("response_b")
    if (ma is None and ra is None) or (mb is None and rb is None):
        raise where_error(where, "a side has neither a model nor a response", _FIX)
    choice, strength = read_choice(row["choice"], table, where)
    extra = _extra(row, where, status, strength)
    item = row.get("item")
    return Shown(where=where, rater=rater, first=Side(model=None if ma is None else str(ma).strip(), response=ra),
                 second=Side(model=None if mb is None else str(mb).strip(), response=rb), choice=choice,
                 item=None if item is None else str(item).strip(), prompt=row.get("prompt"), extra=extra)
