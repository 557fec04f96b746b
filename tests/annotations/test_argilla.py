"""Argilla v2 exports, nested (`Record.to_dict`) and flat (`to_list(flatten=True)`, Hub columns)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from rlaif.annotations import import_annotations
from rlaif.errors import InputError


def _jsonl(tmp_path: Path, rows: list[dict], name: str = "records.jsonl") -> Path:
    p = tmp_path / name
    p.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return p


FIELDS = {"prompt": "Explain DNS", "response1": "r one", "response2": "r two"}
META = {"model_a": "m1", "model_b": "m2", "topic": "networking"}


def test_nested_records_ranking_answers_statuses_and_suggestions(tmp_path):
    rec = {"id": "rec-1", "_server_id": "5f0c", "status": "completed", "fields": FIELDS, "metadata": META,
           "responses": {"preference": [
               {"value": ["response2", "response1"], "user_id": "u-1", "status": "submitted"},  # ordered list
               {"value": [{"value": "response1", "rank": 1}, {"value": "response2", "rank": 2}],
                "user_id": "u-2", "status": "submitted"},
               {"value": [{"value": "response1", "rank": 1}, {"value": "response2", "rank": 1}],
                "user_id": "u-3", "status": "submitted"},  # equal ranks: a tie
               {"value": ["response1", "response2"], "user_id": "u-4", "status": "discarded"},
               {"value": None, "user_id": "u-5", "status": "draft"}]},
           "suggestions": {"preference": {"value": ["response1", "response2"], "score": 0.7, "agent": "gpt-4o"}},
           "vectors": {}}
    unannotated = {"id": "rec-2", "fields": FIELDS, "metadata": META, "responses": {}, "suggestions": {}}
    r = import_annotations("argilla", [_jsonl(tmp_path, [rec, unannotated])])
    got = [(lb.rater, lb.winner, lb.order, lb.model_a, lb.item, lb.status) for lb in r.labels]
    assert got == [("u-1", "b", "ab", "m1", "rec-1", "submitted"), ("u-2", "a", "ab", "m1", "rec-1", "submitted"),
                   ("u-3", "tie", "ab", "m1", "rec-1", "submitted"),
                   ("suggestion:gpt-4o", "a", "ab", "m1", "rec-1", "suggestion")]
    assert r.labels[3].confidence == 0.7 and r.labels[0].topic == "networking" and r.labels[0].prompt == "Explain DNS"
    assert dict(r.dropped) == {"discarded": 1, "draft": 1, "records without responses": 1}


def test_flat_columns_with_a_label_question_and_a_strength_question(tmp_path):
    rows = [{"id": "r1", "status": "completed", "_server_id": "x1", **FIELDS, **META,
             "pick.responses": ["A is better", "B is better", "tie"],
             "pick.responses.users": ["u-1", "u-2", "u-3"],
             "pick.responses.status": ["submitted", "submitted", "submitted"],
             "sure.responses": [5, 2, 3], "sure.responses.users": ["u-1", "u-2", "u-3"],
             "sure.responses.status": ["submitted", "submitted", "submitted"],
             "pick.suggestion": "B is better", "pick.suggestion.score": 0.55, "pick.suggestion.agent": None}]
    p = _jsonl(tmp_path, rows)
    with pytest.raises(InputError, match=r"records.jsonl:1: cannot tell the verdict question among \['pick', "
                                         r"'sure'\]. Fix: name it: --map QUESTION=choice"):
        import_annotations("argilla", [p])
    r = import_annotations("argilla", [p], ["pick=choice", "sure=confidence"])
    assert [(lb.rater, lb.winner, lb.confidence) for lb in r.labels] == [
        ("u-1", "a", 5.0), ("u-2", "b", 2.0), ("u-3", "tie", 3.0), ("suggestion", "b", 0.55)]
    assert {lb.item for lb in r.labels} == {"r1"}


def test_a_response_without_a_user_is_refused(tmp_path):
    rec = {"id": "r", "fields": FIELDS, "responses": {"q": [{"value": ["response1", "response2"],
                                                             "status": "submitted"}]}}
    with pytest.raises(InputError, match=r"records.jsonl:1: annotation without an annotator. Fix:"):
        import_annotations("argilla", [_jsonl(tmp_path, [rec])])
