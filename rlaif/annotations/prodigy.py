"""Prodigy `db-out` JSONL (`-f prodigy`): one line per answered task.

Every line carries `_annotator_id` (else `_session_id`), `_timestamp` (unix seconds) and `answer`
(accept / reject / ignore). A `compare` task (Prodigy's `compare` recipe) holds two systems' outputs
in the `accept` slot (shown as the candidate, first) and the `reject` slot, and a `mapping` of which
system sits where ({"A": "accept", "B": "reject"}, or {"B": "accept", "A": "reject"} when randomized):
accept = the accept slot's output is better, reject = the other one. Sides are the systems (A, B) unless
the outputs name a `model`. A `choice` task (the A/B recipes) holds `options` in the order shown
and the chosen option ids in `accept`; a chosen third option is read through the choice spellings
(e.g. a "tie" option). `ignore` is counted as skipped, a rejected choice task as rejected.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from rlaif.annotations.canonical import load_rows
from rlaif.annotations.core import Dropped, Shown, Side, annotator_id, parse_time, read_choice, where_error
from rlaif.annotations.labelstudio import _DEFAULT_KEYS

_FIX = "pass the output of `prodigy db-out DATASET` unchanged"


def _text(x: Any) -> Any:
    if isinstance(x, dict):
        return x.get("text", x.get("html", x.get("output", x)))
    return x


def _prompt(task: dict) -> Any:
    inp = task.get("input")
    if isinstance(inp, dict):
        return _text(inp)
    return inp if inp is not None else next((task[k] for k in _DEFAULT_KEYS["prompt"] if k in task), None)


def _model(x: Any) -> str | None:
    m = x.get("model") or x.get("system") if isinstance(x, dict) else None
    return None if m is None else str(m)


def _compare(where: str, task: dict) -> tuple[Side, Side, str]:
    """The `compare` recipe puts one system's output in the `accept` slot (shown as the candidate, first) and
    the other's in `reject`; `mapping` says which system (A = its first file) sits in which slot. accept =
    the accept slot's output is better, reject = the other one is."""
    mapping = task.get("mapping") or {"A": "accept", "B": "reject"}
    if not isinstance(mapping, dict) or sorted(mapping) != ["A", "B"] or \
            sorted(mapping.values()) != ["accept", "reject"]:
        raise where_error(where, f"a compare task with mapping {mapping!r}",
                          "mapping must send A and B to accept and reject; " + _FIX)
    system = {slot: letter for letter, slot in mapping.items()}
    first, second = (Side(model=_model(task[slot]), response=_text(task[slot]), response_id=f"system {system[slot]}")
                     for slot in ("accept", "reject"))
    return first, second, "first" if task["answer"] == "accept" else "second"


def _choice_task(where: str, task: dict, table: dict) -> tuple[Side, Side, str, str | None]:
    options = task["options"]
    if not isinstance(options, list) or len(options) < 2 or not all(isinstance(o, dict) and "id" in o
                                                                     for o in options):
        raise where_error(where, "a choice task without two options with ids", _FIX)
    chosen = task.get("accept")
    if not isinstance(chosen, list) or len(chosen) != 1:
        raise where_error(where, f"a choice task with accept = {chosen!r}",
                          "the A/B choice needs exactly one chosen option")
    a, b = options[0], options[1]
    sides = [Side(model=_model(o), response=_text(o), response_id=str(o["id"])) for o in (a, b)]
    if chosen[0] in (a["id"], b["id"]):
        return sides[0], sides[1], "first" if chosen[0] == a["id"] else "second", None
    picked = next((o for o in options if o["id"] == chosen[0]), {"id": chosen[0]})
    spelled = str(picked["id"]) if str(picked["id"]).strip().lower() in table else picked.get("text", picked["id"])
    choice, strength = read_choice(spelled, table, where, "chosen option")
    return sides[0], sides[1], choice, strength


def read_prodigy(paths: list[Path], mapping: dict[str, str], table: dict) -> tuple[list[Shown], list[Dropped]]:
    shown: list[Shown] = []
    dropped: list[Dropped] = []
    item_key = next((src for src, dst in mapping.items() if dst == "item"), None)
    for path in paths:
        for n, task in load_rows(path):
            where = f"{path}:{n}"
            answer = task.get("answer")
            if answer not in ("accept", "reject", "ignore"):
                raise where_error(where, f"answer = {answer!r}", "Prodigy answers are accept, reject or ignore; "
                                  + _FIX)
            rater = annotator_id(task.get("_annotator_id") or task.get("_session_id"), where)
            if answer == "ignore":
                dropped.append(Dropped("skipped", where))
                continue
            strength = None
            if "options" in task:
                if answer == "reject":
                    dropped.append(Dropped("rejected", where))
                    continue
                first, second, choice, strength = _choice_task(where, task, table)
            elif "accept" in task and "reject" in task:
                first, second, choice = _compare(where, task)
            else:
                raise where_error(where, "neither a compare task (accept, reject, mapping) nor a choice task "
                                  "(options)", _FIX)
            item = task.get(item_key) if item_key else task.get("id")
            meta = task.get("meta") if isinstance(task.get("meta"), dict) else {}
            extra = {"created_at": parse_time(task.get("_timestamp"), where), "status": "submitted", "answer": answer,
                     "strength": strength, "session": task.get("_session_id"),
                     "topic": None if meta.get("topic") is None else str(meta["topic"])}
            shown.append(Shown(where=where, rater=rater, first=first, second=second, choice=choice,
                               item=None if item is None else str(item), prompt=_prompt(task), extra=extra))
    return shown, dropped
