"""PandaLM's three human annotators, shown to each in a random orientation and exported as the canonical CSV and as
a Label Studio export: re-oriented, every verdict matches `rlaif convert -f pandalm` on the original file."""
from __future__ import annotations

import csv
import json
import random

from rlaif.annotations import import_annotations
from rlaif.convert import convert

_SHOWN = {1: "a", 2: "b", 0: "tie"}
_SWAP = {"a": "b", "b": "a", "tie": "tie"}


def _pandalm(shared_data):
    rows = json.loads((shared_data / "pandalm" / "testset-v1.json").read_text(encoding="utf-8"))
    reference = {(lb.item, lb.rater): _winning_model(lb) for lb in convert("pandalm", [shared_data / "pandalm" /
                                                                                       "testset-v1.json"])}
    return rows, reference


def _winning_model(lb) -> str | None:
    """The verdict in model names: comparable whatever orientation an item was given."""
    return {"a": lb.model_a, "b": lb.model_b, "tie": "tie"}.get(lb.winner)


def test_pandalm_as_a_shuffled_canonical_csv(shared_data, tmp_path):
    rows, reference = _pandalm(shared_data)
    rng = random.Random(0)
    out, swapped = [], 0
    for row in rows:
        ma, _, mb = row["cmp_key"].partition("_")
        for k in (1, 2, 3):
            choice = _SHOWN[row[f"annotator{k}"]]
            sides = [(ma, row["response1"]), (mb, row["response2"])]
            if rng.random() < 0.5:  # this annotator saw response2 on the left
                sides, choice, swapped = sides[::-1], _SWAP[choice], swapped + 1
            out.append({"annotator": f"annotator{k}", "item": f"pandalm-{row['idx']}", "prompt": row["instruction"],
                        "model_a": sides[0][0], "model_b": sides[1][0], "response_a": sides[0][1],
                        "response_b": sides[1][1], "choice": choice, "created_at": 1714564800 + len(out)})
    with (tmp_path / "pandalm.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(out[0]))
        w.writeheader()
        w.writerows(out)
    r = import_annotations("csv", [tmp_path / "pandalm.csv"])
    assert len(r.labels) == len(reference) == 2997 and r.n_items == 999 and r.n_annotators == 3
    # an item's canonical orientation is its first row's; every later row shown the other way is re-oriented
    assert 0 < r.n_reoriented < swapped + 999
    assert {(lb.item, lb.rater): _winning_model(lb) for lb in r.labels} == reference
    by_item = {}
    for lb in r.labels:
        by_item.setdefault(lb.item, set()).add((lb.model_a, lb.model_b))
    assert all(len(pairs) == 1 for pairs in by_item.values())


def test_pandalm_as_a_label_studio_export_with_swapped_tasks(shared_data, tmp_path):
    rows, reference = _pandalm(shared_data)
    tasks = []
    for row in rows[:200]:
        ma, _, mb = row["cmp_key"].partition("_")
        for k in (1, 2, 3):  # one task per annotator, every other one with the answers swapped left/right
            flip = (row["idx"] + k) % 2 == 1
            (la, lr), (ra, rr) = ((mb, row["response2"]), (ma, row["response1"])) if flip else \
                ((ma, row["response1"]), (mb, row["response2"]))
            v = row[f"annotator{k}"]
            result = [] if v == 0 else [{"from_name": "pw", "to_name": "left,right", "type": "pairwise",
                                         "value": {"selected": "left" if (v == 1) != flip else "right"}}]
            tie = [{"from_name": "tie", "to_name": "prompt", "type": "choices", "value": {"choices": ["tie"]}}]
            tasks.append({"id": len(tasks) + 1, "data": {"item": f"pandalm-{row['idx']}", "prompt": row["instruction"],
                                                         "left": lr, "right": rr, "model_left": la,
                                                         "model_right": ra},
                          "annotations": [{"completed_by": {"id": k, "email": f"annotator{k}"}, "result":
                                           result or tie, "was_cancelled": False, "lead_time": 1.0,
                                           "created_at": "2024-05-01T12:00:00Z"}]})
    (tmp_path / "ls.json").write_text(json.dumps(tasks), encoding="utf-8")
    r = import_annotations("label-studio", [tmp_path / "ls.json"], ["model_left=model_a", "model_right=model_b",
                                                                   "tie=choice"])
    got = {(lb.item, lb.rater): _winning_model(lb) for lb in r.labels}
    assert len(got) == 600 and got == {k: reference[k] for k in got}
