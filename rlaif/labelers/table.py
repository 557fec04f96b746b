"""What the labeler audit reads of a label file: one row per label in columns, and one label per item for its
texts. A million labels as records would take gigabytes; as columns they take a few hundred megabytes.

`LabelTable.read(path)` streams the file through `records.iter_labels` (so every line is validated, repeats
dropped and swapped orientations refused exactly as for `read_labels`); `LabelTable.of(labels)` builds the
same table from records in memory.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from rlaif.records import Label, LabelDuplicates, iter_labels

COLUMNS = ("item", "rater", "winner", "order", "created_at", "lead_time_s", "strength", "confidence", "rating",
           "model_a", "model_b", "longer", "topic")


def _level(v) -> str | None:
    """A stated strength, confidence or topic as text (numbers as 1, 2.5)."""
    if v is None:
        return None
    return f"{v:g}" if isinstance(v, float) else str(v)


@dataclass
class LabelTable:
    """`columns`: name -> one value per label (see COLUMNS; `topic` from the chosen topic field, `longer` the
    side whose response is longer by more than the margin, "a"/"b"/""); `texts`: item -> its first label
    that carries a prompt or a response; `human`: some label carries a field only annotation importers write."""

    columns: dict[str, list] = field(default_factory=lambda: {c: [] for c in COLUMNS})
    texts: dict[str, Label] = field(default_factory=dict)
    human: bool = False
    duplicates: LabelDuplicates | None = None
    source: str = ""

    def __len__(self) -> int:
        return len(self.columns["item"])

    def add(self, lb: Label, topic_field: str, length_margin: int) -> None:
        c = self.columns
        for name in ("item", "rater", "winner", "order", "created_at", "lead_time_s", "rating", "model_a",
                     "model_b"):
            c[name].append(getattr(lb, name))
        c["strength"].append(_level(lb.strength))
        c["confidence"].append(_level(lb.confidence))
        c["topic"].append(_level(getattr(lb, topic_field)))
        longer = ""
        if lb.response_a is not None and lb.response_b is not None:
            d = len(lb.response_a) - len(lb.response_b)
            longer = "a" if d > length_margin else "b" if d < -length_margin else ""
        c["longer"].append(longer)
        if lb.item not in self.texts and (lb.prompt is not None or lb.response_a is not None):
            self.texts[lb.item] = lb
        if not self.human and _HUMAN_FIELDS & lb.model_fields_set:
            self.human = True

    @classmethod
    def of(cls, labels: Iterable[Label], *, topic_field: str = "topic", length_margin: int = 30,
           source: str = "") -> LabelTable:
        table = cls(source=source)
        for lb in labels:
            table.add(lb, topic_field, length_margin)
        return table

    @classmethod
    def read(cls, path: str | Path, *, topic_field: str = "topic", length_margin: int = 30) -> LabelTable:
        dup = LabelDuplicates(str(path))
        table = cls.of(iter_labels(path, dup), topic_field=topic_field, length_margin=length_margin,
                       source=str(path))
        table.duplicates = dup
        return table

    def frame(self):
        import pandas as pd

        return pd.DataFrame(self.columns)

    def labels_of(self, items: Iterable[str]) -> dict[str, list[tuple[str, str | None]]]:
        """item -> (rater, winner) of each of its labels in file order, for a few items (the page's examples)."""
        want = set(items)
        out: dict[str, list[tuple[str, str | None]]] = {i: [] for i in want}
        c = self.columns
        for i, it in enumerate(c["item"]):
            if it in want:
                out[it].append((c["rater"][i], c["winner"][i]))
        return out


def looks_human(path: str | Path, lines: int = 1000) -> bool:
    """Whether the first labels of a file came from an annotation importer (see `_HUMAN_FIELDS`)."""
    from itertools import islice

    return any(_HUMAN_FIELDS & lb.model_fields_set for lb in islice(iter_labels(path, LabelDuplicates(str(path))),
                                                                      lines))


# Fields that only annotation importers write (with a value or null): their labels are audited as people.
_HUMAN_FIELDS = frozenset({"created_at", "lead_time_s", "status", "rating", "repeat"})
