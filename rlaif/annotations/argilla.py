"""Argilla v2 dataset exports (`-f argilla`): JSON list or JSONL of records, nested or flat.

Nested (`Record.to_dict`): `id`, `fields`, `metadata`, `responses: {question: [{value, user_id, status}]}`,
`suggestions: {question: {value, score, agent}}`. Flat (`to_list(flatten=True)`, Hub exports): the fields
and metadata as columns and, per question Q, `Q.responses`, `Q.responses.users`, `Q.responses.status`,
`Q.suggestion`, `Q.suggestion.score`, `Q.suggestion.agent`.

The verdict question is the only question, or the one named with `--map Q=choice`; a ranking answer
(an ordered list, or `[{value, rank}]`) names the winner by the field (or spelling) ranked first, a
label answer is read through the choice spellings (`--values`). Responses are shown in field order
(the first response field first). Submitted responses become labels; discarded and draft ones are
counted. A suggestion (a model's prediction) becomes a rater of its own, `suggestion:AGENT`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from rlaif.annotations.canonical import load_rows
from rlaif.annotations.core import (
    DROPPED_STATUS,
    Dropped,
    Shown,
    Side,
    annotator_id,
    number_or_text,
    parse_time,
    read_choice,
    where_error,
)
from rlaif.annotations.labelstudio import _DEFAULT_KEYS

_ROLES = ("choice", "question", "strength", "confidence", "topic")


def _record_view(rec: dict) -> tuple[dict, dict[str, list[dict]], dict[str, dict]]:
    """(fields and metadata, responses by question, suggestion by question), nested or flat."""
    if isinstance(rec.get("responses"), dict) or isinstance(rec.get("fields"), dict):
        data = {**(rec.get("metadata") or {}), **(rec.get("fields") or {})}
        responses = {q: rs for q, rs in (rec.get("responses") or {}).items() if isinstance(rs, list)}
        suggestions = {q: s for q, s in (rec.get("suggestions") or {}).items() if isinstance(s, dict)}
        return data, responses, suggestions
    data, responses, suggestions = {}, {}, {}
    questions = {k[: -len(".responses")] for k in rec if k.endswith(".responses")} | \
                {k[: -len(".suggestion")] for k in rec if k.endswith(".suggestion")}
    for k, v in rec.items():
        if not any(k.startswith(q + ".") for q in questions):
            data[k] = v
    for q in questions:
        values = rec.get(f"{q}.responses") or []
        users = rec.get(f"{q}.responses.users") or []
        status = rec.get(f"{q}.responses.status") or ["submitted"] * len(values)
        if not (isinstance(values, list) and isinstance(users, list) and isinstance(status, list)):
            values, users, status = [values], [users], [status]
        responses[q] = [{"value": v, "user_id": users[i] if i < len(users) else None,
                         "status": status[i] if i < len(status) else "submitted"} for i, v in enumerate(values)]
        if rec.get(f"{q}.suggestion") is not None:
            suggestions[q] = {"value": rec[f"{q}.suggestion"], "score": rec.get(f"{q}.suggestion.score"),
                              "agent": rec.get(f"{q}.suggestion.agent")}
    return data, responses, suggestions


def _field(data: dict, mapping: dict[str, str], name: str) -> tuple[str | None, Any]:
    key = next((src for src, dst in mapping.items() if dst == name and src in data), None)
    key = key or next((k for k in _DEFAULT_KEYS.get(name, ()) if k in data), None)
    return key, None if key is None else data[key]


def _question(where: str, responses: dict, suggestions: dict, mapping: dict[str, str]) -> str:
    named = [src for src, dst in mapping.items() if dst in ("choice", "question")]
    if named:
        return named[0]
    verdicts = sorted((set(responses) | set(suggestions)) - {src for src, dst in mapping.items() if dst in _ROLES})
    if len(verdicts) != 1:
        raise where_error(where, f"cannot tell the verdict question among {verdicts or 'no questions'}",
                          "name it: --map QUESTION=choice")
    return verdicts[0]


def _choice(value: Any, keys: tuple[str | None, str | None], table: dict, where: str) -> tuple[str, str | None]:
    """A label or ranking answer -> ("first" | "second" | "tie", strength)."""
    if isinstance(value, list):
        ranks = [(x.get("rank"), x.get("value")) if isinstance(x, dict) else (i + 1, x) for i, x in enumerate(value)]
        ranks = [(r, v) for r, v in ranks if r is not None]
        if not ranks:
            raise where_error(where, f"a ranking {value!r} that ranks nothing", "rank the two responses")
        best = min(r for r, _ in ranks)
        top = [v for r, v in ranks if r == best]
        if len(top) > 1:
            return "tie", None
        value = top[0]
    if value in keys and value is not None:
        return ("first" if value == keys[0] else "second"), None
    return read_choice(value, table, where, "answer")


def read_argilla(paths: list[Path], mapping: dict[str, str], table: dict) -> tuple[list[Shown], list[Dropped]]:
    shown: list[Shown] = []
    dropped: list[Dropped] = []
    for path in paths:
        for n, rec in load_rows(path):
            where = f"{path}:{n}"
            data, responses, suggestions = _record_view(rec)
            if not any(responses.values()) and not suggestions:
                dropped.append(Dropped("records without responses", where))
                continue
            q = _question(where, responses, suggestions, mapping)
            for resp in responses.get(q, []):
                status = str(resp.get("status") or "submitted").lower()
                if status in DROPPED_STATUS:
                    dropped.append(Dropped(DROPPED_STATUS[status], where))
                    continue
                shown.append(_shown(where, annotator_id(resp.get("user_id"), where), resp.get("value"), status,
                                    data, rec, responses, resp, mapping, table))
            if q in suggestions:
                s = suggestions[q]
                rater = f"suggestion:{s['agent']}" if s.get("agent") else "suggestion"
                shown.append(_shown(where, rater, s.get("value"), "suggestion", data, rec, responses,
                                    {"confidence": s.get("score")}, mapping, table))
    return shown, dropped


def _shown(where: str, rater: str, value: Any, status: str, data: dict, rec: dict, responses: dict,
           resp: dict, mapping: dict[str, str], table: dict) -> Shown:
    ka, ra = _field(data, mapping, "response_a")
    kb, rb = _field(data, mapping, "response_b")
    if ra is None or rb is None:
        raise where_error(where, "cannot tell which fields hold the two responses",
                          "name them: --map FIELD=response_a --map FIELD=response_b")
    choice, strength = _choice(value, (ka, kb), table, where)
    extra: dict[str, Any] = {"status": status, "created_at": parse_time(resp.get("updated_at")
                                                                        or resp.get("inserted_at"), where),
                             "strength": strength, "confidence": number_or_text(resp.get("confidence"))}
    for src, dst in mapping.items():  # other questions answered by the same user: strength, confidence, topic
        if dst in ("strength", "confidence", "topic") and src in responses:
            mine = [r for r in responses[src] if r.get("user_id") == resp.get("user_id")]
            if mine:
                extra[dst] = str(mine[0].get("value")) if dst == "topic" else number_or_text(mine[0].get("value"))
    topic = _field(data, mapping, "topic")[1]
    if extra.get("topic") is None and topic is not None:
        extra["topic"] = str(topic)
    item = _field(data, mapping, "item")[1] or rec.get("id") or rec.get("_server_id")
    ma, mb = _field(data, mapping, "model_a")[1], _field(data, mapping, "model_b")[1]
    return Shown(where=where, rater=rater, first=Side(model=None if ma is None else str(ma), response=ra),
                 second=Side(model=None if mb is None else str(mb), response=rb), choice=choice,
                 item=None if item is None else str(item), prompt=_field(data, mapping, "prompt")[1], extra=extra)
