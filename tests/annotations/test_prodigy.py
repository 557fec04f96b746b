"""Prodigy `db-out` JSONL: compare tasks (accept/reject with a randomized A/B mapping) and choice tasks."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from rlaif.annotations import import_annotations
from rlaif.errors import InputError


def _jsonl(tmp_path: Path, rows: list[dict]) -> Path:
    p = tmp_path / "db-out.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return p


def _compare(who, mapping, answer, ts=1714564800):
    return {"id": 3, "input": {"text": "Summarize the memo"}, "accept": {"text": "short summary", "model": "sys-a"},
            "reject": {"text": "long summary", "model": "sys-b"}, "mapping": mapping, "answer": answer,
            "_input_hash": 111, "_task_hash": 222, "_session_id": f"memo-{who}", "_annotator_id": f"memo-{who}",
            "_timestamp": ts, "_view_id": "compare"}


def test_compare_tasks_follow_the_mapping(tmp_path):
    ab, ba = {"A": "accept", "B": "reject"}, {"A": "reject", "B": "accept"}
    rows = [_compare("ann", ab, "accept"),  # A = sys-a shown first and preferred -> a
            _compare("bo", ba, "accept"),  # A = sys-b shown first and preferred -> b, shown "ba"
            _compare("cy", ba, "reject"),  # B = sys-a (shown second) preferred -> a
            _compare("dee", ab, "ignore")]
    r = import_annotations("prodigy", [_jsonl(tmp_path, rows)])
    got = [(lb.rater, lb.model_a, lb.model_b, lb.order, lb.winner) for lb in r.labels]
    assert got == [("memo-ann", "sys-a", "sys-b", "ab", "a"), ("memo-bo", "sys-a", "sys-b", "ba", "b"),
                   ("memo-cy", "sys-a", "sys-b", "ba", "a")]
    assert r.labels[0].created_at == "2024-05-01T12:00:00Z" and r.labels[0].prompt == "Summarize the memo"
    assert r.labels[1].response_a == "short summary" and dict(r.dropped) == {"skipped": 1} and r.n_reoriented == 2


def test_choice_tasks_in_shown_order_with_a_tie_option(tmp_path):
    def task(who, opts, accept, answer="accept"):
        return {"text": "Write a haiku", "options": [{"id": o, "text": f"{o} haiku"} for o in opts],
                "accept": accept, "answer": answer, "_annotator_id": who, "_session_id": who,
                "_timestamp": 1714564800, "meta": {"topic": "poetry"}}
    rows = [task("s1", ["llama", "gpt"], ["gpt"]), task("s2", ["gpt", "llama"], ["gpt"]),
            task("s3", ["gpt", "llama", "tie"], ["tie"]), task("s4", ["gpt", "llama"], [], "reject")]
    r = import_annotations("prodigy", [_jsonl(tmp_path, rows)])
    got = [(lb.rater, lb.model_a, lb.model_b, lb.response_a, lb.order, lb.winner) for lb in r.labels]
    assert got == [("s1", None, None, "llama haiku", "ab", "b"), ("s2", None, None, "llama haiku", "ba", "b"),
                   ("s3", None, None, "llama haiku", "ba", "tie")]
    assert r.labels[0].topic == "poetry" and dict(r.dropped) == {"rejected": 1}


def test_bad_prodigy_lines(tmp_path):
    row = _compare("ann", {"A": "accept", "B": "reject"}, "accept")
    del row["_annotator_id"], row["_session_id"]
    with pytest.raises(InputError, match=r"db-out.jsonl:1: annotation without an annotator"):
        import_annotations("prodigy", [_jsonl(tmp_path, [row])])
    with pytest.raises(InputError, match=r"db-out.jsonl:1: answer = 'maybe'"):
        import_annotations("prodigy", [_jsonl(tmp_path, [{**_compare("a", None, "accept"), "answer": "maybe"}])])
    with pytest.raises(InputError, match=r"db-out.jsonl:1: timestamp 'noon' does not parse"):
        import_annotations("prodigy", [_jsonl(tmp_path, [_compare("a", None, "accept", ts="noon")])])
