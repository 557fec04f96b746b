"""The annotator file: attributes by annotator id; repeated ids and missing columns named by line."""
from __future__ import annotations

import pytest

from rlaif.annotations import read_annotators
from rlaif.errors import InputError


def test_attributes_by_annotator_and_unknown_raters(tmp_path):
    p = tmp_path / "annotators.csv"
    p.write_text("annotator,region,expertise,age band\nu1,EU,nurse,30-39\nu2,US,,40-49\n", encoding="utf-8")
    a = read_annotators(p)
    assert a.columns == ["region", "expertise", "age band"]
    assert a.attributes == {"u1": {"region": "EU", "expertise": "nurse", "age band": "30-39"},
                            "u2": {"region": "US", "expertise": "", "age band": "40-49"}}
    assert a.unknown(["u1", "u3", "u9", "u3"]) == ["u3", "u9"] and a.unlabeled(["u1"]) == ["u2"]


def test_jsonl_annotator_file(tmp_path):
    p = tmp_path / "annotators.jsonl"
    p.write_text('{"annotator": 7, "vendor": "acme"}\n{"annotator": "8", "vendor": null}\n', encoding="utf-8")
    assert read_annotators(p).attributes == {"7": {"vendor": "acme"}, "8": {"vendor": ""}}


@pytest.mark.parametrize(("text", "message"), [
    ("annotator,region\nu1,EU\nu2,US\nu1,EU\n", r"annotators.csv:4: annotator 'u1' is listed twice \(first on line "
                                               r"2\). Fix: keep one row per annotator"),
    ("worker,region\nu1,EU\n", r"annotators.csv:2: no `annotator` column. Fix:"),
    ("annotator,region\n,EU\n", r"annotators.csv:2: a row without an annotator id"),
    ("annotator,region\n", r"annotators.csv: the annotator file lists no annotators"),
    ("", r"annotators.csv: the file is empty \(no header line\)"),
])
def test_bad_annotator_files(tmp_path, text, message):
    p = tmp_path / "annotators.csv"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        read_annotators(p)
