"""What every annotation importer shares: the shown-order annotation, spellings, timestamps, orientation.

Importers read a tool's export into `Shown` annotations (the two sides in the order the annotator saw
them, the choice in those terms) and `Dropped` ones (cancelled, skipped, discarded: counted, never
written). `orient` then gives every item one canonical a/b (the orientation its first annotation was
shown in), flips the winners of annotations shown the other way round (`order` "ba"), numbers the
same annotator's repeats on an item, and turns all of it into `Label` records.
"""
from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from pydantic import ValidationError

from rlaif.errors import ConfigError, InputError
from rlaif.records import Label, stable_id

CANONICAL = ("annotator", "item", "prompt", "model_a", "model_b", "response_a", "response_b", "choice",
             "strength", "created_at", "lead_time_s", "topic", "status", "confidence", "rating")
# Names --map may give besides the columns: which question (Argilla) or control tag (Label Studio) holds the verdict.
MAP_TARGETS = (*CANONICAL, "question")

_DEFAULT_CHOICES = {
    "a": ("a", None), "left": ("a", None), "1": ("a", None), "first": ("a", None), "response_a": ("a", None),
    "model_a": ("a", None), "a is better": ("a", None), "left is better": ("a", None),
    "b": ("b", None), "right": ("b", None), "2": ("b", None), "second": ("b", None), "response_b": ("b", None),
    "model_b": ("b", None), "b is better": ("b", None), "right is better": ("b", None),
    "tie": ("tie", None), "0": ("tie", None), "equal": ("tie", None), "same": ("tie", None), "draw": ("tie", None),
    "both": ("tie", None), "neither": ("tie", None), "tie (bothbad)": ("tie", None),
}
# Statuses of annotations that are not verdicts: counted under their kind, never written as labels.
DROPPED_STATUS = {"cancelled": "cancelled", "canceled": "cancelled", "skipped": "skipped", "skip": "skipped",
                  "ignore": "skipped", "ignored": "skipped", "discarded": "discarded", "draft": "draft",
                  "pending": "draft"}


@dataclass(frozen=True)
class Side:
    """One response as shown: its model (or response id) and text."""

    model: str | None = None
    response: Any = None
    response_id: str | None = None

    def identity(self) -> str:
        """What makes two annotations' sides the same response: the model, else the id, else the text."""
        if self.model:
            return f"model:{self.model}"
        if self.response_id:
            return f"id:{self.response_id}"
        return "text:" + stable_id(self.response)


@dataclass
class Shown:
    """One annotation as the annotator saw it: `first` shown first (left), `choice` in shown terms; or a rating
    of one response (`second` None, `rating` set: nothing to orient)."""

    where: str  # "PATH:LINE" or "PATH task ID", for messages
    rater: str
    first: Side
    second: Side | None
    choice: str | None  # "first", "second", "tie" or None (no verdict: written with `error`)
    item: str | None = None
    prompt: Any = None
    extra: dict[str, Any] = field(default_factory=dict)  # created_at, lead_time_s, strength, status, ...
    rating: float | None = None


@dataclass
class Dropped:
    kind: str  # cancelled, skipped, discarded, draft, ...
    where: str


@dataclass
class ImportResult:
    labels: list[Label]
    dropped: Counter = field(default_factory=Counter)  # kind -> count
    n_reoriented: int = 0
    n_repeats: int = 0

    @property
    def n_annotators(self) -> int:
        return len({lb.rater for lb in self.labels})

    @property
    def n_items(self) -> int:
        return len({lb.item for lb in self.labels})

    def summary(self) -> str:
        dropped = ", ".join(f"{n} {k}" for k, n in sorted(self.dropped.items())) or "none"
        return (f"{len(self.labels)} labels written; not written: {dropped}; {self.n_annotators} annotators, "
                f"{self.n_items} items, {self.n_reoriented} re-oriented, {self.n_repeats} repeats")


# ---- --map and --values ----

def parse_map(specs: list[str] | None) -> dict[str, str]:
    """`SOURCE=CANONICAL` pairs (repeatable, or comma-separated) -> {source name: canonical name}."""
    out: dict[str, str] = {}
    for spec in _split(specs):
        src, sep, dst = spec.partition("=")
        src, dst = src.strip(), dst.strip()
        if not sep or not src or dst not in MAP_TARGETS:
            raise ConfigError(f"--map {spec!r}: expected SOURCE=NAME with NAME one of {', '.join(MAP_TARGETS)}. "
                              "Fix: e.g. --map worker_id=annotator --map verdict=choice")
        out[src] = dst
    return out


def parse_values(specs: list[str] | None) -> dict[str, tuple[str, str | None]]:
    """`SPELLING=CHOICE[:STRENGTH]` pairs -> the choice table (defaults plus these), keys lower-cased."""
    table = dict(_DEFAULT_CHOICES)
    for spec in _split(specs):
        src, sep, dst = spec.rpartition("=")
        choice, _, strength = dst.strip().partition(":")
        if not sep or not src.strip() or choice not in ("a", "b", "tie"):
            raise ConfigError(f"--values {spec!r}: expected SPELLING=a|b|tie[:STRENGTH]. "
                              "Fix: e.g. --values a-is-better=a:clear --values 'about the same=tie'")
        table[src.strip().lower()] = (choice, strength.strip() or None)
    return table


def _split(specs: list[str] | None) -> list[str]:
    return [s for spec in specs or [] for s in spec.split(",") if s.strip()]


_SHOWN = {"a": "first", "b": "second", "tie": "tie"}


def read_choice(value: Any, table: dict[str, tuple[str, str | None]], where: str,
                what: str = "choice") -> tuple[str, str | None]:
    """A choice spelling -> ("first" | "second" | "tie", strength or None); unknown -> InputError."""
    key = str(value).strip().lower()
    if key in table:
        choice, strength = table[key]
        return _SHOWN[choice], strength
    raise where_error(where, f"{what} = {value!r} is not a known spelling",
                       "name it with --values, e.g. --values 'much better=a:clear' (a = the response shown "
                       "first)")


def number_or_text(value: Any) -> str | float | None:
    """Strength or confidence: a number when it reads as one, else the trimmed text; blank -> None."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    try:
        x = float(str(value))
        return x if math.isfinite(x) else str(value).strip()
    except ValueError:
        return str(value).strip().lower()


# ---- timestamps and lead times ----

_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def parse_time(value: Any, where: str) -> str | None:
    """ISO 8601 (naive = UTC) or unix seconds (milliseconds above 1e11) -> "YYYY-MM-DDTHH:MM:SS[.ffffff]Z"."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        if isinstance(value, (int, float)) and not isinstance(value, bool) or _NUMBER.match(str(value).strip()):
            secs = float(value)
            dt = datetime.fromtimestamp(secs / 1000 if abs(secs) > 1e11 else secs, tz=timezone.utc)
        else:
            dt = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00").replace("z", "+00:00"))
            dt = dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)
    except (ValueError, OverflowError, OSError):
        raise where_error(where, f"timestamp {value!r} does not parse",
                           "use ISO 8601 (2024-05-01T12:00:00Z) or unix seconds") from None
    return dt.strftime("%Y-%m-%dT%H:%M:%S" + (".%f" if dt.microsecond else "") + "Z")


def parse_seconds(value: Any, where: str) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        x = math.nan
    if not math.isfinite(x) or x < 0:
        raise where_error(where, f"lead time {value!r} is not a number of seconds", "give seconds, e.g. 12.5")
    return x


def where_error(where: str, problem: str, fix: str) -> InputError:
    """An InputError at "PATH:LINE" (or at "PATH task ID", which has no line)."""
    path, _, line = where.rpartition(":")
    if path and line.isdigit():
        return InputError(path, int(line), problem, fix)
    return InputError(where, None, problem, fix)


def annotator_id(value: Any, where: str) -> str:
    if value is None or isinstance(value, (dict, list)) or not str(value).strip():
        raise where_error(where, "annotation without an annotator",
                           "every annotation needs its annotator id (map its column with --map COLUMN=annotator)")
    return str(value).strip()


# ---- orientation ----

def _item_key(s: Shown, ids: tuple[str, str]) -> str:
    if s.item:
        return s.item
    return "pair-" + stable_id([s.prompt, sorted(ids)])


_FLIP = {"a": "b", "b": "a", "tie": "tie", None: None}


def orient(shown: list[Shown], dropped: list[Dropped]) -> ImportResult:
    """Labels with one canonical a/b per item (its first annotation's), winners in those terms."""
    canon: dict[str, tuple[str, str, Shown]] = {}
    repeats: Counter = Counter()
    result = ImportResult(labels=[], dropped=Counter(d.kind for d in dropped))
    for s in shown:
        if s.second is None:
            result.labels.append(_rating_label(s, repeats))
            result.n_repeats += repeats[(result.labels[-1].item, s.rater)] > 1
            continue
        ids = (s.first.identity(), s.second.identity())
        if ids[0] == ids[1]:
            raise where_error(s.where, "both responses of the pair are the same model / response",
                               "give the two sides different model names or response ids")
        item = _item_key(s, ids)
        if item not in canon:
            canon[item] = (ids[0], ids[1], s)
        a_id, b_id, ref = canon[item]
        if set(ids) != {a_id, b_id}:
            raise where_error(s.where, f"item '{item}' pairs {ids[0][ids[0].index(':') + 1:]} with "
                               f"{ids[1][ids[1].index(':') + 1:]}, but its first annotation ({ref.where}) "
                               f"pairs {a_id[a_id.index(':') + 1:]} with {b_id[b_id.index(':') + 1:]}",
                               "give each pair of responses its own item id")
        flipped = ids[0] != a_id
        a, b = (s.second, s.first) if flipped else (s.first, s.second)
        winner = {"first": "a", "second": "b", "tie": "tie", None: None}[s.choice]
        winner = _FLIP[winner] if flipped else winner
        repeats[(item, s.rater)] += 1
        n = repeats[(item, s.rater)]
        result.n_reoriented += flipped
        result.n_repeats += n > 1
        fields = dict(item=item, rater=s.rater, winner=winner, order="ba" if flipped else "ab", model_a=a.model,
                      model_b=b.model, prompt=_prompt(s.prompt if s.prompt is not None else ref.prompt),
                      response_a=_text(a.response), response_b=_text(b.response), repeat=n - 1 if n > 1 else None,
                      error=None if winner else "no verdict")
        # a tool's own field named like one of ours (a tag called "prompt") is kept beside it, prefixed
        extra = {(f"tool_{k}" if k in fields else k): v for k, v in s.extra.items()}
        try:
            result.labels.append(Label(**fields, **extra))
        except ValidationError as e:
            raise where_error(s.where, f"cannot make a label of it ({e.errors()[0]['loc']}: {e.errors()[0]['msg']})",
                              "check that column's values") from None
    return result


def _rating_label(s: Shown, repeats: Counter) -> Label:
    """A rating of one response: its item is the given id, else the response's identity and prompt."""
    item = s.item or "rated-" + stable_id([s.prompt, s.first.identity()])
    repeats[(item, s.rater)] += 1
    n = repeats[(item, s.rater)]
    try:
        return Label(item=item, rater=s.rater, rating=s.rating, model_a=s.first.model, prompt=_prompt(s.prompt),
                     response_a=_text(s.first.response), repeat=n - 1 if n > 1 else None, **s.extra)
    except ValidationError as e:
        raise where_error(s.where, f"cannot make a label of it ({e.errors()[0]['loc']}: {e.errors()[0]['msg']})",
                          "check that column's values") from None


def _text(x: Any) -> str | None:
    if x is None or isinstance(x, str):
        return x
    return json.dumps(x, ensure_ascii=False)


def _prompt(x: Any) -> Any:
    """A prompt as Label types it: a string or a chat message list, else its JSON text."""
    if x is None or isinstance(x, str) or (isinstance(x, list) and all(isinstance(m, dict) for m in x)):
        return x
    return _text(x)
