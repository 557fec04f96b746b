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


def _compare(who, b_in_accept, answer, ts=1714564800):
    """A task as the compare recipe builds it: system A's output in the accept slot unless randomized to B."""
    a, b = {"text": "short summary"}, {"text": "long summary"}
    accept, reject, mapping = (b, a, {"B": "accept", "A": "reject"}) if b_in_accept else \
        (a, b, {"A": "accept", "B": "reject"})
    return {"id": 3, "input": {"text": "Summarize the memo"}, "accept": accept, "reject": reject, "mapping": mapping,
            "answer": answer, "_input_hash": 111, "_task_hash": 222, "_session_id": f"memo-{who}",
            "_annotator_id": f"memo-{who}", "_timestamp": ts, "_view_id": "compare"}


def test_compare_tasks_follow_the_mapping(tmp_path):
    rows = [_compare("ann", False, "accept"),  # A in the accept slot, accepted: A wins
            _compare("bo", True, "accept"),  # B in the accept slot (shown first), accepted: B wins, shown "ba"
            _compare("cy", True, "reject"),  # B in the accept slot, rejected: A wins
            _compare("dee", False, "ignore")]
    r = import_annotations("prodigy", [_jsonl(tmp_path, rows)])
    got = [(lb.rater, lb.response_a, lb.response_b, lb.order, lb.winner) for lb in r.labels]
    assert got == [("memo-ann", "short summary", "long summary", "ab", "a"),
                   ("memo-bo", "short summary", "long summary", "ba", "b"),
                   ("memo-cy", "short summary", "long summary", "ba", "a")]
    assert r.labels[0].created_at == "2024-05-01T12:00:00Z" and r.labels[0].prompt == "Summarize the memo"
    assert dict(r.dropped) == {"skipped": 1} and r.n_reoriented == 2
    # outputs that name their model are paired by it
    named = [{**_compare("eve", True, "accept"), "accept": {"text": "long summary", "model": "base"},
              "reject": {"text": "short summary", "model": "tuned"}}]
    lb = import_annotations("prodigy", [_jsonl(tmp_path, named)]).labels[0]
    assert (lb.model_a, lb.model_b, lb.winner) == ("base", "tuned", "a")


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
    row = _compare("ann", False, "accept")
    del row["_annotator_id"], row["_session_id"]
    with pytest.raises(InputError, match=r"db-out.jsonl:1: annotation without an annotator"):
        import_annotations("prodigy", [_jsonl(tmp_path, [row])])
    with pytest.raises(InputError, match=r"db-out.jsonl:1: answer = 'maybe'"):
        import_annotations("prodigy", [_jsonl(tmp_path, [{**_compare("a", False, "accept"), "answer": "maybe"}])])
    with pytest.raises(InputError, match=r"db-out.jsonl:1: timestamp 'noon' does not parse"):
        import_annotations("prodigy", [_jsonl(tmp_path, [_compare("a", False, "accept", ts="noon")])])
