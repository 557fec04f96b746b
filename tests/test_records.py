import json

import pytest

from rlaif.errors import InputError
from rlaif.records import (
    JsonlAppender,
    Label,
    Preference,
    read_jsonl,
    read_labels,
    read_prompts,
    stable_id,
    write_jsonl,
)


def _write(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_prompt_shapes(tmp_path):
    p = _write(tmp_path / "p.jsonl", [
        json.dumps({"prompt": "plain"}),
        json.dumps({"instruction": "Summarize", "input": "some text", "id": 7}),
        json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}),
        json.dumps({"question_id": 81, "category": "writing", "turns": ["first", "second"]}),
        "",
    ])
    recs = read_prompts(p)
    assert [r.prompt for r in recs] == ["plain", "Summarize\n\nsome text", [{"role": "user", "content": "hi"}], "first"]
    assert recs[0].prompt_id == stable_id("plain")
    assert recs[1].prompt_id == "7" and recs[3].prompt_id == "81" and recs[3].category == "writing"
    assert recs[3].turns == ["first", "second"]  # extra fields are kept


def test_bad_prompt_line_names_file_and_line(tmp_path):
    p = _write(tmp_path / "p.jsonl", [json.dumps({"prompt": "ok"}), json.dumps({"text": "no prompt"})])
    with pytest.raises(InputError) as e:
        read_prompts(p)
    assert str(e.value).startswith(f"{p}:2: ") and "Fix:" in str(e.value)


def test_bad_json_and_duplicates(tmp_path):
    p = _write(tmp_path / "p.jsonl", [json.dumps({"prompt": "ok"}), "{broken"])
    with pytest.raises(InputError, match=r":2: not valid JSON"):
        read_prompts(p)
    p = _write(tmp_path / "d.jsonl", [json.dumps({"prompt": "a", "id": 1}), json.dumps({"prompt": "b", "id": 1})])
    with pytest.raises(InputError, match=r":2: duplicate prompt_id '1' \(first on line 1\)"):
        read_prompts(p)


def test_label_validation(tmp_path):
    good = {"item": "x", "rater": "j", "winner": "a", "order": "ba", "p_a": 0.7}
    bad = {"item": "x", "rater": "j", "winner": "left"}
    p = _write(tmp_path / "l.jsonl", [json.dumps(good), json.dumps(bad)])
    with pytest.raises(InputError, match=r"l.jsonl:2: .*winner"):
        read_jsonl(p, Label)
    p = _write(tmp_path / "l2.jsonl", [json.dumps(good)])
    (lab,) = read_jsonl(p, Label)
    assert lab.winner == "a" and lab.order == "ba" and lab.p_a == 0.7 and lab.raw is None


def test_write_is_atomic_and_roundtrips(tmp_path):
    out = tmp_path / "sub" / "prefs.jsonl"
    recs = [Preference(prompt="p", chosen="c", rejected="r", p_chosen=0.8, judges=["j"])]
    write_jsonl(out, recs)
    assert read_jsonl(out, Preference) == recs
    assert [f.name for f in out.parent.iterdir()] == ["prefs.jsonl"]  # no temp files left

    class Boom(Exception):
        pass

    def gen():
        yield recs[0]
        raise Boom

    with pytest.raises(Boom):
        write_jsonl(out, gen())
    assert read_jsonl(out, Preference) == recs  # the old file is untouched
    assert [f.name for f in out.parent.iterdir()] == ["prefs.jsonl"]


def test_appender_drops_partial_last_line(tmp_path):
    p = tmp_path / "a.jsonl"
    p.write_text('{"item": "1", "rater": "r"}\n{"item": "2", "ra', encoding="utf-8")
    with JsonlAppender(p) as app:
        app.write(Label(item="3", rater="r"))
    assert [r.item for r in read_jsonl(p, Label)] == ["1", "3"]


def test_written_files_get_normal_permissions(tmp_path):
    import os

    out = write_jsonl(tmp_path / "x.jsonl", [Label(item="1", rater="r")])
    mask = os.umask(0)
    os.umask(mask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~mask


def test_label_declares_what_rlaif_writes_and_writes_it_only_when_set(tmp_path):
    judged = Label(item="i", rater="r", judge="pairwise", prompt_id="p0", sample_a=0, sample_b=1, winner="a",
                   usage={"input_tokens": 3, "output_tokens": 1}, cached=False, call_failed=True)
    assert (judged.judge, judged.prompt_id, judged.usage.output_tokens, judged.call_failed) == \
        ("pairwise", "p0", 1, True)
    plain = Label(item="i", rater="r", tool_field=1)
    out = write_jsonl(tmp_path / "l.jsonl", [judged, plain])
    first, second = (json.loads(line) for line in out.read_text().splitlines())
    assert list(first)[-7:] == ["judge", "prompt_id", "sample_a", "sample_b", "usage", "cached", "call_failed"]
    assert "judge" not in second and "usage" not in second and second["tool_field"] == 1
    assert read_jsonl(out, Label) == [judged, plain]


def test_read_labels_refuses_an_item_whose_models_are_swapped(tmp_path):
    path = _write(tmp_path / "l.jsonl", [
        json.dumps({"item": "i", "rater": "r1", "model_a": "x", "model_b": "y", "winner": "a"}),
        json.dumps({"item": "j", "rater": "r1", "model_a": "y", "model_b": "x", "winner": "a"}),
        json.dumps({"item": "i", "rater": "r2", "model_a": "x", "model_b": "y", "winner": "b"}),
        json.dumps({"item": "i", "rater": "r3", "model_a": "y", "model_b": "x", "winner": "b"})])
    with pytest.raises(InputError) as e:
        read_labels(path)
    assert f"{path}:4:" in str(e.value) and "swapped relative to line 1" in str(e.value)
    assert "rlaif convert -f reorient" in str(e.value)
    assert len(read_labels(_write(tmp_path / "ok.jsonl", path.read_text().splitlines()[:3]))[0]) == 3
