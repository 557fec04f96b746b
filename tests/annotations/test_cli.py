"""`rlaif convert -f FORMAT` on annotation exports, through the real command line: the summary line, and every
bad input an exit 2 naming file:line (or the task) with a Fix, no traceback, and no output written."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rlaif.records import read_labels
from tests.support.cli_helpers import rlaif_inproc as rlaif

ROOT = Path(__file__).resolve().parents[2]
CSV = ("annotator,item,prompt,model_a,model_b,response_a,response_b,choice,strength,created_at,status\n"
       "u1,i1,Q,gpt,llama,G,L,a,clear,2024-05-01T12:00:00Z,\n"
       "u2,i1,Q,llama,gpt,L,G,a,,2024-05-01T12:05:00Z,\n"
       "u1,i1,Q,gpt,llama,G,L,b,,2024-05-02T12:00:00Z,\n"
       "u3,i1,Q,gpt,llama,G,L,,,,skipped\n")


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_convert_csv_prints_the_summary_and_writes_labels(tmp_path):
    src = _write(tmp_path, "ann.csv", CSV)
    annotators = _write(tmp_path, "annotators.csv", "annotator,region\nu1,EU\nu9,US\n")
    r = rlaif("convert", "-f", "csv", src, "--annotators", annotators, "-o", tmp_path / "labels.jsonl")
    assert r.code == 0, r.stderr
    assert r.stdout.strip() == (f"3 labels written; not written: 1 skipped; 2 annotators, 1 items, 1 re-oriented, "
                                f"1 repeats -> {tmp_path / 'labels.jsonl'}")
    assert f"1 annotator(s) not in {annotators}: u2" in r.stderr
    labels, dup = read_labels(tmp_path / "labels.jsonl")
    assert [(lb.rater, lb.order, lb.winner, lb.repeat) for lb in labels] == [
        ("u1", "ab", "a", None), ("u2", "ba", "b", None), ("u1", "ab", "b", 1)] and dup.count == 0


def test_convert_subprocess_with_map_and_values(tmp_path):
    src = _write(tmp_path, "vendor.csv", "worker,task,left,right,verdict\nw1,t1,m1,m2,left-much\nw2,t1,m2,m1,"
                                         "right-slight\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.run([sys.executable, "-m", "rlaif.cli", "convert", "-f", "csv", str(src), "--map",
                        "worker=annotator,task=item,left=model_a,right=model_b,verdict=choice", "--values",
                        "left-much=a:clear", "--values", "right-slight=b:slight", "-o", str(tmp_path / "o.jsonl")],
                       capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    rows = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    # w2 saw m2 first and preferred the right one, m1: a in the item's terms (a = m1)
    assert [(x["rater"], x["order"], x["winner"], x["strength"]) for x in rows] == [
        ("w1", "ab", "a", "clear"), ("w2", "ba", "a", "slight")]


def _ls_task(tid, annotation):
    return {"id": tid, "data": {"prompt": "P", "response_a": "x", "response_b": "y"}, "annotations": [annotation]}


def _ls_ann(**kw):
    return {"id": 1, "completed_by": 5, "was_cancelled": False, "created_at": "2024-05-01T12:00:00Z",
            "lead_time": 2.0, "result": [{"from_name": "pw", "to_name": "a,b", "type": "pairwise",
                                          "value": {"selected": "left"}}], **kw}


BAD = {
    "malformed export": ("label-studio", "export.json", '[{"id": 1, "data": {}\n, "annotations": [}]\n',
                         ":2: not valid JSON"),
    "unknown tag type": ("label-studio", "export.json",
                         json.dumps([_ls_task(17, _ls_ann(result=[{"from_name": "box", "to_name": "img",
                                                                   "type": "rectanglelabels", "value": {}}]))]),
                         " task 17: unknown tag type 'rectanglelabels'"),
    "no annotator": ("label-studio", "export.json", json.dumps([_ls_task(18, _ls_ann(completed_by=None))]),
                     " task 18: annotation without an annotator"),
    "bad timestamp": ("csv", "ann.csv", CSV.replace("2024-05-01T12:05:00Z", "05/01 noonish"),
                      ":3: timestamp '05/01 noonish' does not parse"),
    "csv without annotator": ("csv", "ann.csv", CSV.replace("u2,", ","), ":3: annotation without an annotator"),
    "argilla without users": ("argilla", "records.jsonl",
                              json.dumps({"id": "r", "fields": {"prompt": "P", "response1": "x", "response2": "y"},
                                          "responses": {"q": [{"value": ["response1", "response2"]}]}}) + "\n",
                              ":1: annotation without an annotator"),
    "empty export": ("label-studio", "export.json", "[]", ": no annotations found in 1 file(s)"),
    "prodigy not db-out": ("prodigy", "db.jsonl", json.dumps({"text": "hi", "answer": "accept", "_annotator_id": "a"})
                           + "\n", ":1: neither a compare task"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_exports_exit_2_with_where_and_fix_and_write_nothing(tmp_path, case):
    fmt, name, text, where = BAD[case]
    src = _write(tmp_path, name, text)
    out = _write(tmp_path, "labels.jsonl", "previous run\n")  # an earlier output must survive a failed run
    r = rlaif("convert", "-f", fmt, src, "-o", out)
    assert r.code == 2, (r.code, r.stdout, r.stderr)
    assert f"{src}{where}" in r.stderr and "Fix:" in r.stderr and "Traceback" not in r.stderr
    assert out.read_text() == "previous run\n" and sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [name, "labels.jsonl"])


def test_an_annotator_file_with_a_duplicate_id_exits_2_before_writing(tmp_path):
    src = _write(tmp_path, "ann.csv", CSV)
    annotators = _write(tmp_path, "annotators.csv", "annotator,region\nu1,EU\nu2,US\nu1,US\n")
    r = rlaif("convert", "-f", "csv", src, "--annotators", annotators, "-o", tmp_path / "labels.jsonl")
    assert r.code == 2 and f"{annotators}:4: annotator 'u1' is listed twice (first on line 2)" in r.stderr
    assert "Fix:" in r.stderr and "Traceback" not in r.stderr and not (tmp_path / "labels.jsonl").exists()


def test_annotation_options_need_an_annotation_format(tmp_path):
    src = _write(tmp_path, "arena.jsonl", json.dumps({"model_a": "x", "model_b": "y", "winner": "model_a"}) + "\n")
    r = rlaif("convert", src, "--map", "a=annotator", "-o", tmp_path / "o.jsonl")
    assert r.code == 2 and "--map, --values and --annotators read human annotation exports" in r.stderr
    r = rlaif("convert", "-f", "csv", src, "--map", "a=nothing", "-o", tmp_path / "o.jsonl")
    assert r.code == 2 and "--map 'a=nothing'" in r.stderr and not (tmp_path / "o.jsonl").exists()


def test_rlaif_convert_reads_the_annotation_formats_too(tmp_path):
    from rlaif.convert import ANNOTATION_FORMATS, convert

    labels = convert("csv", [_write(tmp_path, "ann.csv", CSV)])
    assert "label-studio" in ANNOTATION_FORMATS and [(lb.rater, lb.winner) for lb in labels] == [
        ("u1", "a"), ("u2", "b"), ("u1", "b")]
