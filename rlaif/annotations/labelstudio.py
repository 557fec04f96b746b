"""Label Studio exports (`-f label-studio`): the JSON export, JSON_MIN and CSV, told apart per file.

JSON: a list of tasks, each with `data` and `annotations[]` (`completed_by` an id or a user object,
`created_at`, `lead_time`, `was_cancelled`, `ground_truth`, `result[]` of `{from_name, to_name, type,
value}`). JSON_MIN / CSV: one row per annotation, the task's data keys, `annotator`, `created_at`,
`lead_time`, and one column per control tag (CSV cells holding JSON are decoded).

The verdict comes from a `pairwise` tag (`value.selected` left/right), else a `choices` tag (its
values spelled as in --values), else a `ranker` over the two responses, else one `rating` per
response (the higher wins). A labeling config (`.xml`) passed among the inputs tells which data keys
hold the prompt and the responses shown left and right; without one, `--map KEY=response_a` etc. do,
or the usual key names (prompt / instruction / text, response_a / answer1 / text1, ...). A task's
`predictions` (model pre-annotations) become raters of their own, `prediction:MODEL_VERSION`.
"""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlaif.annotations.canonical import load_rows
from rlaif.annotations.core import (
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
from rlaif.records import read_text

KNOWN_TYPES = ("pairwise", "choices", "rating", "ranker", "textarea", "number")
_DEFAULT_KEYS = {
    "prompt": ("prompt", "instruction", "question", "input", "text", "query"),
    "response_a": ("response_a", "answer1", "text1", "response1", "left", "output_1", "chosen"),
    "response_b": ("response_b", "answer2", "text2", "response2", "right", "output_2", "rejected"),
    "model_a": ("model_a", "model1", "model_left", "generator_1"),
    "model_b": ("model_b", "model2", "model_right", "generator_2"),
    "item": ("item", "item_id", "pair_id"),
    "topic": ("topic", "category"),
}
_CONTROLS = {"pairwise": "pairwise", "choices": "choices", "rating": "rating", "ranker": "ranker",
             "textarea": "textarea", "number": "number"}


@dataclass
class Config:
    """What a labeling config (or --map) says: data keys by canonical name, control tags by type."""

    keys: dict[str, str] = field(default_factory=dict)  # canonical name -> data key
    tag_keys: dict[str, str] = field(default_factory=dict)  # object tag name -> data key
    controls: dict[str, str] = field(default_factory=dict)  # control tag name -> type
    roles: dict[str, str] = field(default_factory=dict)  # control tag name -> choice/strength/confidence/topic


def read_config(path: Path) -> Config:
    """Data keys and control tags from a Label Studio labeling config (XML)."""
    try:
        root = ET.fromstring(read_text(path))
    except ET.ParseError as e:
        raise InputError(path, e.position[0], f"not a valid labeling config ({e})", "fix the XML") from None
    cfg = Config()
    for el in root.iter():  # object tags first: a control may come before the texts it points at
        name, value = el.get("name"), el.get("value", "")
        if name and value.startswith("$"):
            cfg.tag_keys[name] = value[1:]
    for el in root.iter():
        name = el.get("name")
        if name and el.tag.lower() in _CONTROLS:
            cfg.controls[name] = _CONTROLS[el.tag.lower()]
            if el.tag.lower() == "pairwise":
                left, _, right = (el.get("toName") or "").partition(",")
                cfg.keys["response_a"] = cfg.tag_keys.get(left.strip(), left.strip())
                cfg.keys["response_b"] = cfg.tag_keys.get(right.strip(), right.strip())
    shown = [k for k in cfg.tag_keys.values() if k not in cfg.keys.values()]
    if shown and "prompt" not in cfg.keys and "response_a" in cfg.keys:
        cfg.keys["prompt"] = shown[0]  # the one text shown besides the two responses
    return cfg


def _finish(cfg: Config, mapping: dict[str, str]) -> Config:
    for src, dst in mapping.items():
        if dst in ("choice", "strength", "confidence", "topic") and (src in cfg.controls or dst != "topic"):
            cfg.roles[src] = dst
        else:
            cfg.keys[dst] = src
    return cfg


def read_label_studio(paths: list[Path], mapping: dict[str, str], table: dict) -> tuple[list[Shown], list[Dropped]]:
    configs = [read_config(p) for p in paths if p.suffix.lower() == ".xml"]
    cfg = _finish(configs[0] if configs else Config(), mapping)
    shown: list[Shown] = []
    dropped: list[Dropped] = []
    for path in paths:
        if path.suffix.lower() == ".xml":
            continue
        for n, task in load_rows(path):
            if isinstance(task.get("annotations"), list) and isinstance(task.get("data"), dict):
                _task(path, task, cfg, table, shown, dropped)
            elif "annotations" in task or "data" in task:
                raise InputError(path, n, "a task whose `data` is not an object or `annotations` not a list",
                                 "pass Label Studio's JSON export unchanged")
            else:
                _min_row(path, n, task, cfg, table, shown, dropped)
    return shown, dropped


def _task(path: Path, task: dict, cfg: Config, table: dict, shown: list[Shown], dropped: list[Dropped]) -> None:
    where = f"{path} task {task.get('id', '?')}"
    for ann in task["annotations"]:
        if not isinstance(ann, dict) or not isinstance(ann.get("result", []), list):
            raise where_error(where, "an annotation that is not an object with a `result` list",
                              "pass Label Studio's JSON export unchanged")
        if ann.get("was_cancelled"):
            dropped.append(Dropped("cancelled", where))
            continue
        who = ann.get("completed_by")
        who = (who.get("email") or who.get("id")) if isinstance(who, dict) else who
        extra = {"created_at": parse_time(ann.get("created_at"), where),
                 "lead_time_s": parse_seconds(ann.get("lead_time"), where), "status": "submitted",
                 **({"ground_truth": True} if ann.get("ground_truth") else {})}
        s = _verdict(where, annotator_id(who, where), task["data"], ann.get("result") or [], cfg, table, extra)
        (shown.append(s) if isinstance(s, Shown) else dropped.append(s))
    for pred in task.get("predictions") or []:  # a model's pre-annotation: a rater of its own, like a suggestion
        if isinstance(pred, dict) and isinstance(pred.get("result"), list) and pred["result"]:
            extra = {"status": "prediction", "confidence": number_or_text(pred.get("score"))}
            s = _verdict(where, f"prediction:{pred.get('model_version') or 'model'}", task["data"], pred["result"],
                         cfg, table, extra)
            (shown.append(s) if isinstance(s, Shown) else dropped.append(Dropped("predictions without a verdict",
                                                                                  where)))


def _min_row(path: Path, n: int, row: dict, cfg: Config, table: dict, shown: list[Shown],
             dropped: list[Dropped]) -> None:
    """A JSON_MIN / CSV row: control-tag columns become results, the rest is the task's data."""
    where = f"{path}:{n}"
    row = {k: _decode(v) for k, v in row.items()}
    result, data = [], {}
    for k, v in row.items():
        kind = _min_kind(k, v, cfg)
        if kind and v not in (None, ""):
            result.append({"from_name": k, "type": kind, "value": _min_value(kind, v)})
        else:
            data[k] = v
    extra = {"created_at": parse_time(row.get("created_at"), where),
             "lead_time_s": parse_seconds(row.get("lead_time"), where), "status": "submitted"}
    s = _verdict(where, annotator_id(row.get("annotator"), where), data, result, cfg, table, extra)
    (shown.append(s) if isinstance(s, Shown) else dropped.append(s))


def _min_kind(key: str, v: Any, cfg: Config) -> str | None:
    """Which control tag a JSON_MIN column is: from the config, else its shape, else --map; None = task data."""
    if key in cfg.controls:
        return cfg.controls[key]
    if isinstance(v, dict) and "selected" in v:
        return "pairwise"
    if key not in cfg.roles:
        return None
    if isinstance(v, dict) and v and all(isinstance(x, list) for x in v.values()):
        return "ranker"
    return "rating" if isinstance(v, (int, float)) and cfg.roles[key] != "choice" else "choices"


def _min_value(kind: str, v: Any) -> dict:
    """A JSON_MIN cell as the full export's `value`: JSON_MIN keeps pairwise's and multi-choice's objects and
    flattens the rest to the bare value."""
    if kind == "pairwise" or (isinstance(v, dict) and kind in v):
        return v
    if kind == "choices":
        return {"choices": v if isinstance(v, list) else [v]}
    return {"text" if kind == "textarea" else kind: v}


def _decode(v: Any) -> Any:
    if isinstance(v, str) and v[:1] in ("{", "["):
        try:
            return json.loads(v)
        except json.JSONDecodeError:
            return v
    return v


def _key(data: dict, cfg: Config, name: str) -> Any:
    if name in cfg.keys:
        return data.get(cfg.keys[name])
    return next((data[k] for k in _DEFAULT_KEYS.get(name, ()) if k in data), None)


_NO_KEYS = ("pass the labeling config (.xml) among the inputs, or name the data keys: "
            "--map KEY=response_a --map KEY=response_b (and prompt, model_a, model_b)")


def _sides(where: str, data: dict, cfg: Config, results: list[dict]) -> tuple[Side, Side]:
    ranker = next((r for r in results if r.get("type") == "ranker"), None)
    if ranker is not None and _key(data, cfg, "response_a") is None:
        to = ranker.get("to_name")
        items = data.get(cfg.tag_keys.get(to, to)) if isinstance(to, str) else None
        items = items if isinstance(items, list) else next(
            (v for v in data.values() if isinstance(v, list) and v and all(isinstance(x, dict) for x in v)), None)
        if not items or len(items) != 2 or not all(isinstance(x, dict) and "id" in x for x in items):
            raise where_error(where, "a ranker needs a list of exactly two items with ids in the task data",
                              "rank two responses per task")
        return tuple(Side(model=x.get("model"), response=x.get("body", x.get("title")), response_id=str(x["id"]))
                     for x in items)  # type: ignore[return-value]
    ra, rb = _key(data, cfg, "response_a"), _key(data, cfg, "response_b")
    if ra is None or rb is None:
        raise where_error(where, "cannot tell which data keys hold the two responses", _NO_KEYS)
    ma, mb = _key(data, cfg, "model_a"), _key(data, cfg, "model_b")
    return Side(model=None if ma is None else str(ma), response=ra), Side(model=None if mb is None else str(mb),
                                                                          response=rb)


def _side_of(to_name: Any, data: dict, cfg: Config) -> str | None:
    """Which response a per-response tag (a rating) points at: "first", "second" or None."""
    name = to_name[0] if isinstance(to_name, list) and to_name else to_name
    key = cfg.tag_keys.get(name, name)
    a = cfg.keys.get("response_a") or next((k for k in _DEFAULT_KEYS["response_a"] if k in data), None)
    b = cfg.keys.get("response_b") or next((k for k in _DEFAULT_KEYS["response_b"] if k in data), None)
    return "first" if key == a else "second" if key == b else None


def _verdict(where: str, rater: str, data: dict, results: list, cfg: Config, table: dict,
             extra: dict) -> Shown | Dropped:
    """One annotation's results -> a shown-order verdict (or a Dropped "no choice")."""
    found: dict[str, tuple[str, str | None]] = {}  # tag type -> (choice, strength)
    ratings: dict[str, float] = {}
    # with a pairwise tag, choices tags are side questions (kept by name) unless --map names one the choice
    pairwise = "pairwise" in cfg.controls.values() or any(isinstance(r, dict) and r.get("type") == "pairwise"
                                                          for r in results)
    for r in results:
        if not isinstance(r, dict) or not isinstance(r.get("value"), dict):
            raise where_error(where, "a result that is not an object with a `value` object",
                              "pass Label Studio's export unchanged")
        kind, name, value = r.get("type"), str(r.get("from_name")), r["value"]
        if kind not in KNOWN_TYPES:
            raise where_error(where, f"unknown tag type {kind!r} (from_name {name!r})",
                              f"rlaif reads the tag types {', '.join(KNOWN_TYPES)}; remove the others' results")
        role = cfg.roles.get(name)
        raw = _value(kind, value)
        if role in ("strength", "confidence", "topic"):
            extra[role] = number_or_text(raw) if role != "topic" else str(raw)
        elif kind == "pairwise":
            found.setdefault("pairwise", read_choice(raw, table, where, "pairwise selected"))
        elif kind == "choices" and (role == "choice" or not (pairwise or "choice" in cfg.roles.values())):
            found.setdefault("choices", read_choice(raw, table, where, f"{name} choice"))
        elif kind == "ranker":
            found.setdefault("ranker", _ranked(raw, where))
        elif kind == "rating" and _side_of(r.get("to_name"), data, cfg):
            rating = number_or_text(raw)
            if not isinstance(rating, float):
                raise where_error(where, f"rating {raw!r} is not a number", "rate each response with a number")
            ratings[_side_of(r.get("to_name"), data, cfg)] = rating
        else:
            extra[name] = raw
    if len(ratings) == 2:
        ratings_choice = "first" if ratings["first"] > ratings["second"] else \
            "second" if ratings["second"] > ratings["first"] else "tie"
        found.setdefault("rating", (ratings_choice, None))
        extra.update(rating_first=ratings["first"], rating_second=ratings["second"])
    choice = next((found[k] for k in ("pairwise", "choices", "ranker", "rating") if k in found), None)
    if choice is None:
        return Dropped("no choice", where)
    first, second = _sides(where, data, cfg, results)
    if choice[0].startswith("rank:"):
        top = choice[0][len("rank:"):]
        if top not in (first.response_id, second.response_id):
            raise where_error(where, f"the ranker puts {top!r} first, which is neither item", "rank the two items")
        choice = ("first" if top == first.response_id else "second", None)
    if choice[1] is not None and extra.get("strength") is None:
        extra["strength"] = choice[1]
    extra.setdefault("topic", None if _key(data, cfg, "topic") is None else str(_key(data, cfg, "topic")))
    item = _key(data, cfg, "item")
    return Shown(where=where, rater=rater, first=first, second=second, choice=choice[0],
                 item=None if item is None else str(item), prompt=_key(data, cfg, "prompt"), extra=extra)


def _value(kind: str, value: dict) -> Any:
    if kind == "pairwise":
        return value.get("selected")
    if kind == "choices":
        ch = value.get("choices")
        return ch[0] if isinstance(ch, list) and len(ch) == 1 else ch
    if kind == "textarea":
        t = value.get("text")
        return "\n".join(map(str, t)) if isinstance(t, list) else t
    return value.get(kind)


def _ranked(raw: Any, where: str) -> tuple[str, None]:
    """A ranker value ([ids], or {bucket: [ids]}: buckets in their export order, best first, and "_", the
    items left uncategorized, last) over the two items -> which was ranked first."""
    if isinstance(raw, dict):
        raw = [x for name, bucket in sorted(raw.items(), key=lambda kv: kv[0] == "_")
               if isinstance(bucket, list) for x in bucket]
    order = raw
    if not isinstance(order, list) or not order:
        raise where_error(where, f"a ranker value {raw!r} that ranks nothing", "rank the two responses")
    return ("rank:" + str(order[0]), None)
