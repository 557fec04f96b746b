"""Every bad input is a clean `PATH:LINE: problem. Fix: ...` and exit 2, never a traceback (issue 12, items 1, 6).

One table runs every command parameter that reads a file over the same malformed inputs. The table is
checked against the typer app itself: a new command (or option) that takes a path and is not in the
table, or takes a path without a check from rlaif/cli/paths.py, fails `test_the_table_covers_every_file_parameter`.
Most rows run in-process through `rlaif.cli.main` (the same error handling as the console script);
one row per error class runs as a real subprocess.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import get_args

import pytest
import typer.main
from fakeserver import FakeServer

from rlaif.cli import app
from rlaif.cli import paths as cli_paths
from tests.support.cli_helpers import Run, rlaif_inproc

ROOT = Path(__file__).resolve().parents[2]
DEAD = "http://127.0.0.1:9/v1"  # nothing listens: a row that got as far as a model call would fail, not pass


def rlaif_subprocess(*args: object, cwd: Path | None = None) -> Run:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.run([sys.executable, "-m", "rlaif.cli", *map(str, args)], capture_output=True, text=True,
                       env=env, cwd=cwd, timeout=120)
    return Run(p.returncode, p.stdout, p.stderr)


def assert_clean_error(r: Run, *needles: str) -> None:
    assert r.code == 2, (r.code, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    for n in needles:
        assert n in r.stderr, (n, r.stderr)


# ---- good files the rows need besides the bad one ----

def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _responses(d: Path, policies=("a", "b"), n=3) -> Path:
    return _jsonl(d / "responses.jsonl", [{"prompt_id": f"p{i}", "prompt": f"q{i}", "policy": p, "sample": 0,
                                           "response": f"{p} answers {i}"} for i in range(n) for p in policies])


def _labels(d: Path, a="a", b="b", rater="j", n=6, name="labels.jsonl") -> Path:
    rows = [{"item": f"p{i}:x~y", "rater": rater, "winner": "a" if i % 3 else "b", "order": o, "model_a": a,
             "model_b": b, "prompt": f"q{i}", "response_a": "aaa", "response_b": "b", "prompt_id": f"p{i}"}
            for i in range(n) for o in ("ab", "ba")]
    return _jsonl(d / name, rows)


@dataclass
class Good:
    responses: Path
    labels: Path
    prefs: Path


@pytest.fixture
def good(tmp_path) -> Good:
    d = tmp_path / "good"
    d.mkdir()
    prefs = _jsonl(d / "prefs.jsonl", [{"prompt": "q", "chosen": "yes", "rejected": "no"}])
    return Good(_responses(d), _labels(d), prefs)


# ---- the malformed inputs, per kind of file ----

@dataclass(frozen=True)
class Case:
    jsonl: bytes | None  # the file's content (None: a directory, or nothing, at the path)
    yaml: bytes | None
    jsonl_line: int | None = None  # the line the message must name, where there is one
    yaml_line: int | None = None


# The bad line comes first: the commands that sniff a file's format read its first record.
CASES: dict[str, Case] = {
    "invalid": Case(b"{not json\n", b"name: x\nkind: [\n", 1, 3),
    "non-utf8": Case(b'{"prompt": "caf\xe9"}\n', b"name: x\n\xff: y\n", 1, 2),
    "directory": Case(None, None),
    "missing": Case(None, None),
    "empty": Case(b"", b""),
    "wrong-types": Case(b'{"prompt": 5, "prompt_id": [1], "item": 3, "rater": [], "response": 1, "policy": 2, '
                        b'"chosen": 1, "rejected": 2, "winner": 7, "id": 3, "better": 1, "worse": 2}\n',
                        b"- 1\n- 2\n", 1, None),
}


def _bad_file(tmp_path: Path, case: str, kind: str) -> Path:
    c = CASES[case]
    path = tmp_path / f"bad-{case}.{'yaml' if kind == 'yaml' else 'jsonl'}"
    if case == "directory":
        path.mkdir()
    elif case != "missing":
        path.write_bytes(c.jsonl if kind == "jsonl" else c.yaml)
    return path


@dataclass(frozen=True)
class Row:
    kind: str  # "jsonl" or "yaml"
    argv: Callable[[Path, Path, Good], list]  # (bad file, tmp dir, good files) -> arguments
    skip: tuple[str, ...] = ()  # cases that are not errors for this parameter (with the reason below)


# "COMMAND PARAM" -> how to run it with the bad file in that parameter (every other argument valid).
TABLE: dict[str, Row] = {
    "generate prompts": Row("jsonl", lambda f, t, g: ["generate", f, "--policy", "openai:m", "--base-url", DEAD,
                                                      "-o", t / "o.jsonl"]),
    "label responses": Row("jsonl", lambda f, t, g: ["label", f, "-j", "pairwise", "--judge-model", "openai:m",
                                                     "--base-url", DEAD, "-o", t / "o"]),
    "label judge": Row("yaml", lambda f, t, g: ["label", g.responses, "-j", f, "-o", t / "o"]),
    "label prompts": Row("jsonl", lambda f, t, g: ["label", g.responses, "-j", "rule", "--prompts", f,
                                                   "-o", t / "o"]),
    "synth prompts": Row("jsonl", lambda f, t, g: ["synth", f, "--policy", "openai:a", "--policy", "openai:b", "-j",
                                                   "pairwise", "--judge-model", "openai:m", "--base-url", DEAD,
                                                   "-o", t / "o"]),
    "synth judge": Row("yaml", lambda f, t, g: ["synth", "demo", "--policy", "openai:a", "--policy", "openai:b",
                                                "-j", f, "--base-url", DEAD, "-o", t / "o"]),
    "probe judge": Row("yaml", lambda f, t, g: ["probe", "-j", f, "-o", t / "o"]),
    "probe probe_set": Row("jsonl", lambda f, t, g: ["probe", "-j", "pairwise", "--judge-model", "openai:m",
                                                     "--base-url", DEAD, "--probe-set", f, "-o", t / "o"]),
    "probe master_keys": Row("jsonl", lambda f, t, g: ["probe", "-j", "pairwise", "--judge-model", "openai:m",
                                                       "--base-url", DEAD, "--master-keys", f, "-o", t / "o"]),
    "audit labels": Row("jsonl", lambda f, t, g: ["audit", f, "-o", t / "o"]),
    "audit gold": Row("jsonl", lambda f, t, g: ["audit", g.labels, "--gold", f, "-o", t / "o"]),
    "audit annotators": Row("jsonl", lambda f, t, g: ["audit", g.labels, "--annotators", f, "-o", t / "o"]),
    "elo battles": Row("jsonl", lambda f, t, g: ["elo", f, "-o", t / "o"]),
    "convert inputs": Row("jsonl", lambda f, t, g: ["convert", f, "-o", t / "o.jsonl"]),
    "convert annotators": Row("jsonl", lambda f, t, g: ["convert", "-f", "csv", g.labels, "--annotators", f,
                                                        "-o", t / "o.jsonl"]),
    "train prompts": Row("jsonl", lambda f, t, g: ["train", "online-dpo", "--prompts", f, "-j", "rule", "-o", t / "o"]),
    "train judge": Row("yaml", lambda f, t, g: ["train", "online-dpo", "--prompts", "demo", "-j", f, "-o", t / "o"]),
    "train data": Row("jsonl", lambda f, t, g: ["train", "rm", "--data", f, "-o", t / "o"]),
    # An empty config file is a valid config (every default): it would start training.
    "train config": Row("yaml", lambda f, t, g: ["train", "rm", "--config", f, "--data", g.prefs, "-o", t / "o"],
                        skip=("empty",)),
    "winrate responses": Row("jsonl", lambda f, t, g: ["winrate", f, "--policy", "a", "--baseline", "b", "-j",
                                                       "pairwise", "--judge-model", "openai:m", "--base-url", DEAD,
                                                       "-o", t / "o"]),
    "winrate labels": Row("jsonl", lambda f, t, g: ["winrate", "--labels", f, "--policy", "a", "--baseline", "b",
                                                    "-o", t / "o"]),
    "winrate judge": Row("yaml", lambda f, t, g: ["winrate", g.responses, "--policy", "a", "--baseline", "b",
                                                  "-j", f, "--base-url", DEAD, "-o", t / "o"]),
    "winrate prompts": Row("jsonl", lambda f, t, g: ["winrate", "--labels", g.labels, "--policy", "a",
                                                     "--baseline", "b", "--prompts", f, "-o", t / "o"]),
    "serve judge": Row("yaml", lambda f, t, g: ["serve", "-j", f, "--port", "0"]),
    "diversity responses": Row("jsonl", lambda f, t, g: ["diversity", f, "--no-embedding", "-o", t / "o"]),
    "eval suite": Row("yaml", lambda f, t, g: ["eval", f, "--policy", "openai:m", "--base-url", DEAD,
                                               "-o", t / "o"]),
}
SUBPROCESS_ROW = "audit labels"  # each error class also goes through a real `python -m rlaif.cli` once

INPUT_CHECKS = {cli_paths.input_file, cli_paths.file_or_name, cli_paths.prompt_set}
ALL_CHECKS = INPUT_CHECKS | {cli_paths.output_dir, cli_paths.output_file, cli_paths.folder_or_name}


def _file_parameters() -> dict[str, tuple[object, object]]:
    """'COMMAND PARAM' -> (the check it runs, its annotation) for every parameter that names a path."""
    found: dict[str, tuple[object, object]] = {}

    def walk(cmd, path: str) -> None:
        if hasattr(cmd, "commands"):
            for name, sub in cmd.commands.items():
                walk(sub, f"{path} {name}".strip())
            return
        for p in cmd.params:
            check = getattr(p.callback, "__wrapped__", p.callback)
            ann = p.type_descriptor.annotation if hasattr(p, "type_descriptor") else None
            if check in ALL_CHECKS or ann is Path or Path in get_args(ann):
                found[f"{path} {p.name}"] = (check, ann)

    walk(typer.main.get_command(app), "")
    return found


def test_the_table_covers_every_file_parameter():
    params = _file_parameters()
    unchecked = [k for k, (check, _) in params.items() if check not in ALL_CHECKS]
    assert not unchecked, f"path parameters without a rlaif.cli.paths check: {unchecked}"
    inputs = {k for k, (check, _) in params.items() if check in INPUT_CHECKS}
    assert inputs - set(TABLE) == set(), f"file inputs missing from TABLE: {sorted(inputs - set(TABLE))}"
    assert set(TABLE) - inputs == set(), f"TABLE rows that are no file input: {sorted(set(TABLE) - inputs)}"


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("row", list(TABLE))
def test_every_file_input_rejects_malformed_files(row, case, tmp_path, good):
    spec = TABLE[row]
    if case in spec.skip:
        pytest.skip(f"{case} is a valid {row}")
    bad = _bad_file(tmp_path, case, spec.kind)
    argv = spec.argv(bad, tmp_path, good)
    r = rlaif_subprocess(*argv) if row == SUBPROCESS_ROW else rlaif_inproc(*argv)
    line = CASES[case].jsonl_line if spec.kind == "jsonl" else CASES[case].yaml_line
    assert_clean_error(r, str(bad) + (f":{line}:" if line else ""), "Fix:")
    assert "error:" in r.stderr


# ---- output locations: checked before any model call ----

def _unwritable_dir(tmp_path: Path) -> Path:
    """A folder nothing can be created in: chmod where that binds, else (root) a path under a regular file."""
    if os.geteuid() != 0:
        d = tmp_path / "readonly"
        d.mkdir()
        d.chmod(0o555)
        return d / "out"
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    return blocker / "out"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a 0555 folder; the a-file case covers root")
def test_a_read_only_folder_is_refused_before_any_call(tmp_path, good):
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o555)
    try:
        with FakeServer() as srv:
            r = rlaif_inproc("label", good.responses, "-j", "pairwise", "--judge-model", "openai:m",
                             "--base-url", srv.openai_url, "-o", d / "out")
            assert_clean_error(r, f"{d / 'out'}:", "not writable", "Fix:")
            assert srv.count == 0
    finally:
        d.chmod(0o755)


def test_unwritable_outputs_fail_before_any_model_call(tmp_path, good):
    out = _unwritable_dir(tmp_path)
    with FakeServer() as srv:
        label = ["label", good.responses, "-j", "pairwise", "--judge-model", "openai:m", "--base-url", srv.openai_url]
        r = rlaif_subprocess(*label, "-o", out)  # the real console path once
        assert_clean_error(r, f"{out}:", "Fix:")
        winrate = ["winrate", good.responses, "--policy", "a", "--baseline", "b", "-j", "pairwise", "--judge-model",
                   "openai:m", "--base-url", srv.openai_url]
        assert_clean_error(rlaif_inproc(*winrate, "-o", out), f"{out}:", "Fix:")
        # -o names an existing file where a folder is meant
        a_file = tmp_path / "taken"
        a_file.write_text("keep me")
        for argv in (label, winrate):
            assert_clean_error(rlaif_inproc(*argv, "-o", a_file), f"{a_file}: is a file, but -o/--out must be a "
                               "folder", "Fix:")
        # ... and the reverse: a folder where generate's output file is meant
        r = rlaif_inproc("generate", "demo", "--policy", "openai:m", "--base-url", srv.openai_url, "-o", tmp_path)
        assert_clean_error(r, f"{tmp_path}: is a folder, but -o/--out must be a file", "Fix:")
        assert_clean_error(rlaif_inproc("generate", "demo", "--policy", "openai:m", "--base-url", srv.openai_url,
                                        "-o", a_file / "r.jsonl"), f"{a_file / 'r.jsonl'}:", "is a file", "Fix:")
        assert srv.count == 0  # not one paid call before the refusal
    assert a_file.read_text() == "keep me" and list(tmp_path.glob("**/labels.jsonl")) == [good.labels]


def test_the_io_layer_names_the_path_when_writing_fails(tmp_path):
    from rlaif.errors import InputError
    from rlaif.records import JsonlAppender, iter_json_lines, read_json_file, write_json

    blocker = tmp_path / "f"
    blocker.write_text("x")
    with pytest.raises(InputError, match=rf"{blocker / 'o.json'}: cannot write: .*Fix:"):
        write_json(blocker / "o.json", {})
    with pytest.raises(InputError, match=rf"{blocker / 'o.jsonl'}: cannot write: .*Fix:"):
        JsonlAppender(blocker / "o.jsonl")
    with pytest.raises(InputError, match=rf"{tmp_path}: is a folder, not a file. Fix:"):
        read_json_file(tmp_path)
    (tmp_path / "x.jsonl").write_bytes(b'{"a": 1}\n\n{"a": "caf\xe9"}\n')
    with pytest.raises(InputError, match=r"x.jsonl:3: not UTF-8 text \(byte 0xe9 at column 11\)"):
        list(iter_json_lines(tmp_path / "x.jsonl"))
    (tmp_path / "x.json").write_bytes(b'{\n  "a": "\xff"\n}\n')
    with pytest.raises(InputError, match=r"x.json:2: not UTF-8 text \(byte 0xff at column 9\)"):
        read_json_file(tmp_path / "x.json")


def test_main_turns_a_stray_os_error_into_one_line(monkeypatch):
    import rlaif.cli.entry

    def boom(*_, **__):
        raise PermissionError(13, "Permission denied", "/some/where")

    monkeypatch.setattr(rlaif.cli.entry, "command", boom)
    r = rlaif_inproc("audit")
    assert_clean_error(r, "error: /some/where: Permission denied. Fix:")


# ---- option values out of range: click's usage errors, exit 2, naming the option ----

def test_out_of_range_options_are_refused_and_named(tmp_path, good):
    r = rlaif_subprocess("winrate", "--labels", good.labels, "--policy", "a", "--baseline", "b", "--bootstrap", "0",
                         "-o", tmp_path / "w")
    assert_clean_error(r, "--bootstrap")
    cases = [
        (["label", good.responses, "-j", "pairwise", "-c", "0", "-o", tmp_path / "l"], "--concurrency"),
        (["elo", good.labels, "--bootstrap", "-5", "-o", tmp_path / "e"], "--bootstrap"),
        (["audit", good.labels, "--bootstrap", "-1", "-o", tmp_path / "a"], "--bootstrap"),
        (["audit", good.labels, "--length-margin", "-1", "-o", tmp_path / "a"], "--length-margin"),
        (["elo", good.labels, "--online", "--k", "-3", "-o", tmp_path / "e"], "--k"),
        (["elo", good.labels, "--anchor", "zzz", "-o", tmp_path / "e"], "--anchor 'zzz': expected MODEL=RATING"),
        (["elo", good.labels, "--anchor", "=1000", "-o", tmp_path / "e"], "expected MODEL=RATING"),
        (["elo", good.labels, "--anchor", "a=nan", "-o", tmp_path / "e"], "expected MODEL=RATING"),
        (["elo", good.labels, "--anchor", "zzz=1000", "-o", tmp_path / "e"], "'zzz' is not in the battles"),
        (["serve", "--unscored-reward", "low", "--port", "0"], "--unscored-reward 'low' is not a finite number. Fix:"),
        (["serve", "--unscored-reward", "nan", "--port", "0"], "--unscored-reward 'nan' is not a finite number. Fix:"),
    ]
    gen = ["generate", "demo", "--policy", "openai:m", "--base-url", DEAD, "-o", tmp_path / "g.jsonl"]
    synth = ["synth", "demo", "--policy", "openai:a", "--policy", "openai:b", "-j", "rule", "--base-url", DEAD,
             "-o", tmp_path / "s"]
    label = ["label", good.responses, "-j", "rule", "-o", tmp_path / "l"]
    train = ["train", "grpo", "--prompts", "demo", "--reward", "rule", "-o", tmp_path / "t"]
    cases += [([*cmd, flag, value], flag) for cmd in (gen, synth, label, train)
              for flag, value in (("--limit", "0"), ("--offset", "-1"))]
    for argv, needle in cases:
        assert_clean_error(rlaif_inproc(*argv), needle)
    assert not (tmp_path / "e").exists() and not (tmp_path / "w").exists()
    assert not any((tmp_path / x).exists() for x in ("g.jsonl", "s", "l", "t"))


def test_an_offset_past_the_last_prompt_says_how_many_there_are(tmp_path, good):
    with FakeServer() as srv:
        r = rlaif_inproc("generate", "demo", "--policy", "openai:m", "--base-url", srv.openai_url, "--offset", "20",
                         "-o", tmp_path / "g.jsonl")
        assert_clean_error(r, "demo.jsonl has 20 prompts: none left after skipping 20. Fix: lower --offset "
                              "(below 20)")
        r = rlaif_inproc("label", good.responses, "-j", "rule", "--offset", "3", "-o", tmp_path / "l")
        assert_clean_error(r, f"{good.responses} has 3 prompts: none left after skipping 3. Fix:")
        assert srv.count == 0


def test_probe_and_group_reward_options_are_refused_and_named(tmp_path, good):
    """Issue 22's options: a bad value exits 2 before any call, naming the option, with a Fix."""
    probe = ["probe", "-j", "pairwise", "--judge-model", "openai:m", "--base-url", DEAD, "-o", tmp_path / "p"]
    grpo = ["train", "grpo", "--prompts", "demo", "--judge-model", "openai:m", "--base-url", DEAD, "-o", tmp_path / "g"]
    cases = [
        ([*probe, "--retest", "1"], "--retest 1"),
        ([*probe, "--retest", "-3"], "--retest -3"),
        ([*probe, "--max-fpr", "1.5"], "--max-fpr 1.5"),
        ([*probe, "--max-fpr", "-0.1"], "--max-fpr -0.1"),
        ([*probe, "--master-key-threshold", "0"], "--master-key-threshold 0"),
        ([*probe, "--master-key-threshold", "2"], "--master-key-threshold 2"),
        ([*probe, "--probes", "master-key,keys"], "unknown probe keys"),
        ([*grpo, "--reward", "group:pairwise,pairs=0"], "--reward 'group:pairwise,pairs=0'"),
        ([*grpo, "--reward", "group:pairwise,every=2"], "--reward 'group:pairwise,every=2'"),
        ([*grpo, "--reward", "group:rubric"], "--reward 'group:rubric'"),
        (["train", "ppo", "--prompts", "demo", "--reward", "group:pairwise", "-o", tmp_path / "ppo"],
         "--reward group:pairwise"),
    ]
    for argv, needle in cases:
        assert_clean_error(rlaif_inproc(*argv), needle, "Fix:")
    assert not (tmp_path / "p" / "probe.json").exists()
    r = rlaif_inproc("probe", "-j", "binary", "--judge-model", "openai:m", "--base-url", DEAD, "--probes", "position",
                     "-o", tmp_path / "b")
    assert_clean_error(r, "binary", "--probes master-key", "Fix:")


# ---- names that look like mathtext or markdown: plain text everywhere ----

HOSTILE = "m$\\bad{$ [x](http://e.x)<b>|*_"


def test_mathtext_and_markdown_in_names_are_plain_text(tmp_path):
    labels = _labels(tmp_path, a=HOSTILE, b="$y^$", rater="judge$^$")
    r = rlaif_subprocess("elo", labels, "-o", tmp_path / "elo")
    assert r.code == 0, r.stderr
    assert {p.name for p in (tmp_path / "elo").iterdir()} >= {"leaderboard.json", "leaderboard.svg",
                                                              "leaderboard.html"}
    r = rlaif_inproc("audit", labels, "-o", tmp_path / "audit")
    assert r.code == 0, r.stderr
    assert (tmp_path / "audit" / "audit.html").is_file()
    assert "judge\\$^\\$" in (tmp_path / "audit" / "audit.md").read_text()
    r = rlaif_inproc("winrate", "--labels", labels, "--policy", HOSTILE, "--baseline", "$y^$", "--bootstrap", "200",
                     "-o", tmp_path / "wr")
    assert r.code == 0, r.stderr
    assert (tmp_path / "wr" / "winrate.html").is_file()
    md = (tmp_path / "wr" / "winrate.md").read_text()
    heading = md.splitlines()[0]
    assert heading == ("# Win rate: m\\$\\\\bad{\\$ \\[x\\](http://e.x)\\<b\\>\\|\\*\\_ vs \\$y^\\$"), heading
    assert "<b>" not in md and "[x](" not in md


def test_markdown_text_escapes_markup():
    from rlaif.report.markdown import md_table, md_text

    assert md_text("a\nb|c [l](u) <i> `c` *e* _u_ ~s~ $m$ \\") == \
        "a b\\|c \\[l\\](u) \\<i\\> \\`c\\` \\*e\\* \\_u\\_ \\~s\\~ \\$m\\$ \\\\"
    assert md_table([{"model": "<b>"}]).splitlines()[2] == "| \\<b\\> |"


# ---- duplicates, missing fields, empty files ----

def test_duplicate_response_keys_name_file_and_lines(tmp_path):
    path = _responses(tmp_path)
    with path.open("a") as f:
        f.write(json.dumps({"prompt_id": "p1", "prompt": "q1", "policy": "b", "sample": 0, "response": "again"}) + "\n")
    # p1/b/0 is line 4 of 6 (p0 a, p0 b, p1 a, p1 b, ...); the repeat is line 7
    needle = f"{path}:7: duplicate sample 0 of prompt 'p1' for policy 'b' (first on line 4)"
    assert_clean_error(rlaif_subprocess("label", path, "-j", "pairwise", "--judge-model", "openai:m", "--base-url",
                                        DEAD, "-o", tmp_path / "l"), needle, "Fix:")
    assert_clean_error(rlaif_inproc("winrate", path, "--policy", "a", "--baseline", "b", "-j", "pairwise",
                                    "--judge-model", "openai:m", "--base-url", DEAD, "-o", tmp_path / "w"),
                       needle, "Fix:")


def test_duplicate_label_lines_are_dropped_with_a_warning(tmp_path):
    labels = _labels(tmp_path)  # 12 lines: 6 items x 2 orders
    lines = labels.read_text().splitlines(keepends=True)
    flipped = json.loads(lines[0]) | {"winner": "tie"}  # a repeat with another verdict: the first still wins
    labels.write_text("".join(lines + lines[:2] + [json.dumps(flipped) + "\n"]))
    clean = _labels(tmp_path, name="clean.jsonl")
    warning = f"{labels}: 3 duplicate label line(s) (same item, rater and order) ignored; the first of each is " \
              "kept (e.g. line 13 repeats line 1)"
    r = rlaif_subprocess("audit", labels, "-o", tmp_path / "a", "--bootstrap", "0")
    assert r.code == 0 and warning in r.stderr, r.stderr
    assert rlaif_inproc("audit", clean, "-o", tmp_path / "a2", "--bootstrap", "0").code == 0
    got, want = (json.loads((tmp_path / d / "audit.json").read_text()) for d in ("a", "a2"))
    assert got["n_labels"] == want["n_labels"] == 12 and got["raters"] == want["raters"]
    r = rlaif_inproc("elo", labels, "-o", tmp_path / "e", "--bootstrap", "0")
    assert r.code == 0 and warning in r.stderr, r.stderr
    assert rlaif_inproc("elo", clean, "-o", tmp_path / "e2", "--bootstrap", "0").code == 0
    got, want = (json.loads((tmp_path / d / "leaderboard.json").read_text()) for d in ("e", "e2"))
    assert got["ratings"] == want["ratings"] and got["n_battles"] == want["n_battles"]
    r = rlaif_inproc("audit", clean, "-o", tmp_path / "a3", "--bootstrap", "0")
    assert "duplicate" not in r.stderr


def test_a_label_without_rater_names_the_field(tmp_path):
    row = json.loads(_labels(tmp_path).read_text().splitlines()[0])
    del row["rater"]
    path = _jsonl(tmp_path / "norater.jsonl", [row])
    r = rlaif_inproc("elo", path, "-o", tmp_path / "e")
    assert_clean_error(r, f"{path}:1: not a valid label: field 'rater': Field required", "Fix:")
    assert "winner" not in r.stderr.split("Fix:")[0]


def test_audit_of_an_empty_file_names_it(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    assert_clean_error(rlaif_inproc("audit", empty, "-o", tmp_path / "a"), f"{empty}: the file holds no labels",
                       "Fix:")
    assert not (tmp_path / "a").exists()
