"""Label Studio exports in the documented task format (JSON), JSON_MIN and CSV."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from rlaif.annotations import import_annotations
from rlaif.errors import InputError

CONFIG = """<View>
  <Text name="question" value="$prompt"/>
  <Pairwise name="pw" toName="left_answer,right_answer"/>
  <Text name="left_answer" value="$answer1"/>
  <Text name="right_answer" value="$answer2"/>
  <Choices name="how_much" toName="question"><Choice value="clearly"/><Choice value="slightly"/></Choices>
</View>"""


def _ann(who, selected=None, *, cancelled=False, created="2024-05-01T12:00:00.000000Z", lead=4.5, extra=()):
    result = [] if selected is None else [{"id": "r1", "from_name": "pw", "to_name": "left_answer,right_answer",
                                           "type": "pairwise", "value": {"selected": selected}}]
    return {"id": 1, "completed_by": who, "result": [*result, *extra], "was_cancelled": cancelled,
            "ground_truth": False, "created_at": created, "updated_at": created, "lead_time": lead, "task": 1}


def _task(tid, data, annotations):
    return {"id": tid, "data": data, "annotations": annotations, "predictions": [], "project": 3,
            "created_at": "2024-04-30T09:00:00Z"}


def _write(tmp_path: Path, name: str, obj) -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(obj) if not isinstance(obj, str) else obj, encoding="utf-8")
    return p


def test_pairwise_export_with_config_reorients_swapped_tasks(tmp_path):
    # Two tasks hold the same pair (item q7), the second with the answers swapped left/right.
    d1 = {"prompt": "Why?", "answer1": "gpt says", "answer2": "llama says", "model_a": "gpt", "model_b": "llama",
          "item": "q7"}
    d2 = {**d1, "answer1": "llama says", "answer2": "gpt says", "model_a": "llama", "model_b": "gpt"}
    strength = {"from_name": "how_much", "to_name": "question", "type": "choices", "value": {"choices": ["clearly"]}}
    tasks = [_task(1, d1, [_ann(11, "left", extra=[strength]),  # gpt (left) wins
                           _ann({"id": 12, "email": "bo@x.org"}, "right"),  # llama (right) wins
                           _ann(13, cancelled=True)]),
             _task(2, d2, [_ann(14, "left"),  # llama shown left, wins: b in the item's terms
                           _ann(11, "right", created="2024-05-03T08:00:00Z")])]  # 11 again: gpt (right) wins
    tasks[1]["predictions"] = [{"model_version": "rm-v2", "score": 0.8, "result": [
        {"from_name": "pw", "to_name": "left_answer,right_answer", "type": "pairwise",
         "value": {"selected": "right"}}]}]
    r = import_annotations("label-studio", [_write(tmp_path, "export.json", tasks),
                                            _write(tmp_path, "config.xml", CONFIG)],
                           ["model_a=model_a", "model_b=model_b", "how_much=strength"])
    got = [(lb.rater, lb.model_a, lb.model_b, lb.order, lb.winner, lb.repeat) for lb in r.labels]
    assert got == [("11", "gpt", "llama", "ab", "a", None), ("bo@x.org", "gpt", "llama", "ab", "b", None),
                   ("14", "gpt", "llama", "ba", "b", None), ("11", "gpt", "llama", "ba", "a", 1),
                   ("prediction:rm-v2", "gpt", "llama", "ba", "a", None)]  # gpt on the right in task 2
    assert r.labels[4].confidence == 0.8 and r.labels[4].status == "prediction"
    assert {lb.item for lb in r.labels} == {"q7"} and r.labels[0].prompt == "Why?"
    assert r.labels[0].response_a == "gpt says" and r.labels[2].response_a == "gpt says"
    assert r.labels[0].strength == "clearly" and r.labels[0].lead_time_s == 4.5
    assert r.labels[0].created_at == "2024-05-01T12:00:00Z" and r.labels[3].created_at == "2024-05-03T08:00:00Z"
    assert dict(r.dropped) == {"cancelled": 1} and r.n_reoriented == 3 and r.n_repeats == 1
    # unmapped, a choices tag beside the pairwise one is a side question, kept under its name
    r = import_annotations("label-studio", [tmp_path / "export.json", tmp_path / "config.xml"])
    assert r.labels[0].how_much == "clearly" and r.labels[0].strength is None and r.labels[0].winner == "a"


def test_choices_ranker_and_ratings_without_a_config(tmp_path):
    data = {"prompt": "P", "response_a": "ra", "response_b": "rb"}
    choice = {"from_name": "pref", "to_name": "prompt", "type": "choices", "value": {"choices": ["Left is better"]}}
    tie = {"from_name": "pref", "to_name": "prompt", "type": "choices", "value": {"choices": ["Both equal"]}}
    rate_a = {"from_name": "q_a", "to_name": "response_a", "type": "rating", "value": {"rating": 2}}
    rate_b = {"from_name": "q_b", "to_name": "response_b", "type": "rating", "value": {"rating": 5}}
    items = [{"id": "r1", "title": "one", "body": "first text", "model": "m1"},
             {"id": "r2", "title": "two", "body": "second text", "model": "m2"}]
    ranked = {"from_name": "rank", "to_name": "answers", "type": "ranker", "value": {"ranker": {"_": ["r2", "r1"]}}}
    note = {"from_name": "prompt", "to_name": "prompt", "type": "textarea", "value": {"text": ["too", "long"]}}
    tasks = [_task(1, data, [_ann(1, extra=[choice, note]), _ann(2, extra=[tie]), _ann(3, extra=[rate_a, rate_b])]),
             _task(2, {"prompt": "P2", "answers": items}, [
                 _ann(4, extra=[ranked]),
                 _ann(5, extra=[{**ranked, "value": {"ranker": {"_": ["r2"], "best": ["r1"]}}}]),  # bucketed
                 _ann(6, extra=[{**ranked, "value": {"ranker": ["r2", "r1"]}}])])]  # a plain list
    r = import_annotations("label-studio", [_write(tmp_path, "export.json", tasks)], None, ["both equal=tie"])
    assert [(lb.rater, lb.winner) for lb in r.labels] == [("1", "a"), ("2", "tie"), ("3", "b"), ("4", "b"),
                                                          ("5", "a"), ("6", "b")]
    assert (r.labels[3].model_a, r.labels[3].response_b) == ("m1", "second text")
    assert (r.labels[2].rating_first, r.labels[2].rating_second) == (2.0, 5.0)
    assert r.labels[0].prompt == "P" and r.labels[0].tool_prompt == "too\nlong"  # a tag named like a label field


def test_json_min_and_csv_exports(tmp_path):
    rows = [{"id": 5, "prompt": "P", "answer1": "x", "answer2": "y", "annotator": "ann@x.org", "annotation_id": 9,
             "created_at": "2024-05-01T12:00:00Z", "updated_at": "2024-05-01T12:00:00Z", "lead_time": 7.0,
             "pw": {"selected": "right"}},
            {"id": 5, "prompt": "P", "answer1": "x", "answer2": "y", "annotator": "bo@x.org", "annotation_id": 10,
             "created_at": "2024-05-02T12:00:00Z", "updated_at": "2024-05-02T12:00:00Z", "lead_time": 3.0,
             "pw": {"selected": "left"}}]
    cfg = _write(tmp_path, "config.xml", CONFIG)
    r = import_annotations("label-studio", [_write(tmp_path, "min.json", rows), cfg])
    assert [(lb.rater, lb.winner, lb.lead_time_s) for lb in r.labels] == [("ann@x.org", "b", 7.0),
                                                                           ("bo@x.org", "a", 3.0)]
    with (tmp_path / "export.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows({**row, "pw": json.dumps(row["pw"])} for row in rows)
    r2 = import_annotations("label-studio", [tmp_path / "export.csv", cfg])
    assert [(lb.rater, lb.winner, lb.item) for lb in r2.labels] == [(lb.rater, lb.winner, lb.item) for lb in r.labels]
    # JSON_MIN flattens a ranker, a single choice and a rating to their bare values
    items = [{"id": "r1", "body": "x"}, {"id": "r2", "body": "y"}]
    rows = [{"id": 6, "prompt": "P", "answers": items, "annotator": "cy", "rank": {"_": ["r2", "r1"]}},
            {"id": 7, "prompt": "P", "response_a": "x", "response_b": "y", "annotator": "cy", "pref": "Right"},
            {"id": 7, "prompt": "P", "response_a": "x", "response_b": "y", "annotator": "di", "pref": "tie"}]
    r3 = import_annotations("label-studio", [_write(tmp_path, "min2.json", rows)], ["rank=choice", "pref=choice"])
    assert [(lb.rater, lb.winner) for lb in r3.labels] == [("cy", "b"), ("cy", "b"), ("di", "tie")]


def test_bad_exports_name_the_task(tmp_path):
    data = {"prompt": "P", "response_a": "a", "response_b": "b"}
    label = {"from_name": "ner", "to_name": "prompt", "type": "labels", "value": {"labels": ["X"]}}
    p = _write(tmp_path, "e.json", [_task(41, data, [_ann(1, extra=[label])])])
    with pytest.raises(InputError, match=r"e.json task 41: unknown tag type 'labels' .*Fix: rlaif reads the tag "
                                         r"types pairwise, choices"):
        import_annotations("label-studio", [p])
    p = _write(tmp_path, "e.json", [_task(42, data, [_ann(None, "left")])])
    with pytest.raises(InputError, match=r"e.json task 42: annotation without an annotator"):
        import_annotations("label-studio", [p])
    p = _write(tmp_path, "e.json", [_task(43, {"text": "P", "foo": "a", "bar": "b"}, [_ann(1, "left")])])
    with pytest.raises(InputError, match=r"task 43: cannot tell which data keys .*Fix: pass the labeling config"):
        import_annotations("label-studio", [p])
    r = import_annotations("label-studio", [p], ["foo=response_a", "bar=response_b"])
    assert r.labels[0].response_a == "a" and r.labels[0].prompt == "P"
    p = _write(tmp_path, "e.json", [_task(44, data, [_ann(1, "left", created="yesterday")])])
    with pytest.raises(InputError, match=r"e.json task 44: timestamp 'yesterday' does not parse"):
        import_annotations("label-studio", [p])
