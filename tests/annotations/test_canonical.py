"""The canonical annotation CSV/JSONL: orientation checked by hand, repeats kept, --map and --values."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from rlaif.annotations import import_annotations
from rlaif.annotations.core import parse_time
from rlaif.errors import ConfigError, InputError
from rlaif.records import read_labels, write_jsonl

HEADER = "annotator,item,prompt,model_a,model_b,response_a,response_b,choice,strength,created_at,lead_time_s,topic\n"


def _csv(tmp_path: Path, body: str, header: str = HEADER, name: str = "ann.csv") -> Path:
    p = tmp_path / name
    p.write_text(header + body, encoding="utf-8")
    return p


def test_rows_shown_either_way_round_are_reoriented_to_the_first_orientation(tmp_path):
    # Item i1: u1 sees gpt|llama and picks a (gpt). u2 sees llama|gpt and picks a (llama, shown first):
    # in the item's terms (a = gpt, b = llama) that is b. u3 sees llama|gpt and picks b (gpt): a.
    # Item i2: both see claude|gpt; u1 says tie, u2 says b (gpt).
    p = _csv(tmp_path, "u1,i1,Q1,gpt,llama,G1,L1,a,clear,2024-05-01T12:00:00Z,12.5,math\n"
                       "u2,i1,Q1,llama,gpt,L1,G1,a,slight,1714564800,3,math\n"
                       "u3,i1,Q1,llama,gpt,L1,G1,b,,2024-05-01T14:00:00+02:00,,math\n"
                       "u1,i2,Q2,claude,gpt,C2,G2,tie,,2024-05-02,,code\n"
                       "u2,i2,Q2,claude,gpt,C2,G2,b,0.9,2024-05-02T08:30:00,,code\n")
    r = import_annotations("csv", [p])
    got = [(lb.item, lb.rater, lb.model_a, lb.model_b, lb.response_a, lb.order, lb.winner) for lb in r.labels]
    assert got == [("i1", "u1", "gpt", "llama", "G1", "ab", "a"),
                   ("i1", "u2", "gpt", "llama", "G1", "ba", "b"),
                   ("i1", "u3", "gpt", "llama", "G1", "ba", "a"),
                   ("i2", "u1", "claude", "gpt", "C2", "ab", "tie"),
                   ("i2", "u2", "claude", "gpt", "C2", "ab", "b")]
    assert r.n_reoriented == 2 and r.n_items == 2 and r.n_annotators == 3 and not r.dropped
    assert [lb.created_at for lb in r.labels] == ["2024-05-01T12:00:00Z", "2024-05-01T12:00:00Z",
                                                  "2024-05-01T12:00:00Z", "2024-05-02T00:00:00Z",
                                                  "2024-05-02T08:30:00Z"]
    assert [lb.strength for lb in r.labels] == ["clear", "slight", None, None, 0.9]
    assert r.labels[0].lead_time_s == 12.5 and r.labels[0].topic == "math"
    assert r.summary() == "5 labels written; not written: none; 3 annotators, 2 items, 2 re-oriented, 0 repeats"


def test_a_repeat_by_the_same_annotator_is_kept_and_survives_read_labels(tmp_path):
    p = _csv(tmp_path, "u1,i1,Q,gpt,llama,G,L,a,,2024-05-01,,\n"
                       "u1,i1,Q,gpt,llama,G,L,b,,2024-05-03,,\n"  # same item, same order: a repeat, not a copy
                       "u1,i1,Q,llama,gpt,L,G,a,,2024-05-04,,\n")
    r = import_annotations("csv", [p])
    assert [(lb.order, lb.winner, lb.repeat) for lb in r.labels] == [("ab", "a", None), ("ab", "b", 1),
                                                                    ("ba", "b", 2)]
    assert r.n_repeats == 2
    out = write_jsonl(tmp_path / "labels.jsonl", r.labels)
    kept, dup = read_labels(out)
    assert [(lb.winner, lb.repeat) for lb in kept] == [("a", None), ("b", 1), ("b", 2)] and dup.count == 0
    # the same file concatenated twice is still caught as duplicate lines
    out.write_text(out.read_text() * 2)
    kept, dup = read_labels(out)
    assert len(kept) == 3 and dup.count == 3


def test_statuses_are_counted_not_written(tmp_path):
    p = _csv(tmp_path, "u1,i1,Q,gpt,llama,G,L,a,,,,,submitted\n"
                       "u2,i1,Q,gpt,llama,G,L,,,,,,skipped\n"
                       "u3,i1,Q,gpt,llama,G,L,b,,,,,cancelled\n"
                       "u4,i1,Q,gpt,llama,G,L,,,,,,\n", header=HEADER.rstrip("\n") + ",status\n")
    r = import_annotations("csv", [p])
    assert [lb.rater for lb in r.labels] == ["u1"] and r.labels[0].status == "submitted"
    assert dict(r.dropped) == {"skipped": 1, "cancelled": 1, "no choice": 1}
    assert "not written: 1 cancelled, 1 no choice, 1 skipped" in r.summary()


def test_a_vendor_file_needs_only_map_and_values(tmp_path):
    p = _csv(tmp_path, "w7,p1,Q,sys1,sys2,X,Y,a-is-better,1714564800\n"
                       "w8,p1,Q,sys2,sys1,Y,X,A is slightly better,1714564801\n"
                       "w9,p1,Q,sys1,sys2,X,Y,about the same,1714564802\n",
             header="worker_id,task,question,left_model,right_model,left,right,verdict,ts\n")
    maps = ["worker_id=annotator,task=item,question=prompt", "left_model=model_a", "right_model=model_b",
            "left=response_a", "right=response_b", "verdict=choice", "ts=created_at"]
    values = ["a-is-better=a:clear", "A is slightly better=a:slight", "about the same=tie"]
    r = import_annotations("csv", [p], maps, values)
    got = [(lb.rater, lb.order, lb.winner, lb.strength, lb.created_at) for lb in r.labels]
    assert got == [("w7", "ab", "a", "clear", "2024-05-01T12:00:00Z"),
                   ("w8", "ba", "b", "slight", "2024-05-01T12:00:01Z"),  # sys2 shown first and preferred
                   ("w9", "ab", "tie", None, "2024-05-01T12:00:02Z")]
    with pytest.raises(InputError, match=r"ann.csv:2: choice = 'a-is-better' is not a known spelling.*Fix: .*--values"):
        import_annotations("csv", [p], maps)
    with pytest.raises(ConfigError, match="--map 'verdict=winner'"):
        import_annotations("csv", [p], ["verdict=winner"])
    with pytest.raises(ConfigError, match="--values 'x=c'"):
        import_annotations("csv", [p], maps, ["x=c"])


def test_jsonl_rows_without_item_ids_pair_by_prompt_and_models(tmp_path):
    rows = [{"annotator": "u1", "prompt": "Q", "model_a": "m1", "model_b": "m2", "choice": "b", "created_at": 0,
             "category": "chat"},
            {"annotator": "u2", "prompt": "Q", "model_a": "m2", "model_b": "m1", "choice": "b", "created_at": 60},
            {"annotator": "u1", "prompt": "Q2", "model_a": "m1", "model_b": "m2", "choice": "a"}]
    p = tmp_path / "ann.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    r = import_annotations("annotations", [p])
    assert r.labels[0].item == r.labels[1].item != r.labels[2].item
    assert [(lb.order, lb.winner) for lb in r.labels] == [("ab", "b"), ("ba", "a"), ("ab", "a")]
    assert r.labels[0].category == "chat"  # other columns are kept on the label
    assert r.labels[1].created_at == "1970-01-01T00:01:00Z"


def test_an_item_with_two_different_pairs_is_refused(tmp_path):
    p = _csv(tmp_path, "u1,i1,Q,gpt,llama,G,L,a,,,,\nu2,i1,Q,gpt,claude,G,C,a,,,,\n")
    with pytest.raises(InputError, match=r"ann.csv:3: item 'i1' pairs gpt with claude, but its first annotation "
                                         r"\(.*ann.csv:2\) pairs gpt with llama"):
        import_annotations("csv", [p])


@pytest.mark.parametrize(("value", "iso"), [
    ("2024-05-01T12:00:00Z", "2024-05-01T12:00:00Z"),
    ("2024-05-01T14:00:00.250+02:00", "2024-05-01T12:00:00.250000Z"),
    ("2024-05-01 12:00:00", "2024-05-01T12:00:00Z"),  # naive: read as UTC
    (1714564800, "2024-05-01T12:00:00Z"),
    ("1714564800.5", "2024-05-01T12:00:00.500000Z"),
    (1714564800000, "2024-05-01T12:00:00Z"),  # milliseconds
    ("", None),
])
def test_timestamps_are_normalized_to_utc(value, iso):
    assert parse_time(value, "f.csv:2") == iso


def test_a_timestamp_that_does_not_parse_names_the_line():
    with pytest.raises(InputError, match=r"f.csv:7: timestamp 'last tuesday' does not parse. Fix: use ISO 8601"):
        parse_time("last tuesday", "f.csv:7")
