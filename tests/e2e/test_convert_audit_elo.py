"""`rlaif convert`, `rlaif audit`, `rlaif elo` end to end through the real CLI (subprocesses), and what `elo`
and `winrate --labels` do with label files whose models are swapped within an item."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rlaif.convert import convert

ROOT = Path(__file__).resolve().parents[2]
EVIL = '<script>alert("pwned")</script>'


def run(*args, cwd=None):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "rlaif.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=cwd)


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_convert_mt_bench_pairs_judges_with_humans(tmp_path):
    judge = write_jsonl(tmp_path / "gpt-4_pair.jsonl", [
        {"question_id": 81, "model_1": "vicuna", "model_2": "alpaca", "g1_winner": "model_1", "g2_winner": "model_1",
         "judge": ["gpt-4", "pair-v2"], "turn": 1, "g1_judgment": "[[A]]", "g2_judgment": "[[B]]"},
        {"question_id": 82, "model_1": "gpt-4", "model_2": "alpaca", "g1_winner": "error", "g2_winner": "model_1",
         "judge": ["gpt-4", "pair-v2"], "turn": 1},
    ])
    human = write_jsonl(tmp_path / "human.jsonl", [
        {"question_id": 81, "model_a": "alpaca", "model_b": "vicuna", "winner": "model_b", "judge": "author_0",
         "turn": 1, "conversation_a": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "A1"}],
         "conversation_b": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "V1"}]},
    ])
    labels = convert("auto", [judge, human])
    items = {lb.item for lb in labels}
    assert "mtbench-q81-t1-alpaca-vs-vicuna" in items  # both judges land on one item, models sorted
    j81 = [lb for lb in labels if lb.item == "mtbench-q81-t1-alpaca-vs-vicuna" and lb.rater == "gpt-4/pair-v2"]
    # game 1 showed vicuna (= b after sorting) first and picked it; game 2 showed alpaca first, picked vicuna
    assert [(lb.order, lb.winner) for lb in j81] == [("ba", "b"), ("ab", "b")]
    h = next(lb for lb in labels if lb.rater == "author_0")
    assert (h.model_a, h.model_b, h.winner, h.response_b) == ("alpaca", "vicuna", "b", "V1")
    err = [lb for lb in labels if lb.item.startswith("mtbench-q82")]
    assert err[0].winner is None and err[0].error and err[1].winner == "b"  # model_1 = gpt-4 = b after sorting


def test_convert_alpaca_eval_and_arena(tmp_path):
    ann = tmp_path / "annotations.json"
    ann.write_text(json.dumps([
        {"instruction": "hi", "output_1": "aaa", "output_2": "zzz", "generator_1": "g1", "generator_2": "g2",
         "annotator": "weighted_gpt4", "preference": 1.2},
        {"instruction": "hi", "output_1": "zzz", "output_2": "aaa", "annotator": "human", "preference": 2},
        {"instruction": "yo", "output_1": "x", "output_2": "y", "annotator": "human", "preference": 1.5},
        {"instruction": "yo", "output_1": "x", "output_2": "y", "annotator": "human", "preference": None},
    ]))
    labels = convert("auto", [ann])
    first, second = labels[0], labels[1]
    assert first.item == second.item  # same pair, outputs in the other order
    assert first.winner == "a" and first.p_a == pytest.approx(0.8) and first.model_a == "g1"
    assert second.winner == "a" and second.response_a == "aaa"  # output_2 ("aaa") won and is a after sorting
    assert labels[2].winner == "tie" and labels[3].winner is None

    arena = write_jsonl(tmp_path / "battles.jsonl", [
        {"model_a": "m1", "model_b": "m2", "winner": "model_a", "question_id": "q1"},
        {"model_a": "m2", "model_b": "m1", "winner": "tie (bothbad)", "question_id": "q2"},
    ])
    a = convert("arena", [arena])
    assert [(lb.item, lb.winner, lb.order) for lb in a] == [("q1", "a", "ab"), ("q2", "tie", "ab")]


def _labels_with_evil_text(tmp_path: Path) -> Path:
    rows = []
    for i in range(12):
        for rater, pick_first in (("judge-x", True), ("judge-y", False)):
            for order in ("ab", "ba"):
                w = ("a" if order == "ab" else "b") if pick_first else ("a" if i % 3 else "b")
                rows.append({"item": f"it{i}", "rater": rater, "winner": w, "order": order,
                             "model_a": "m1", "model_b": "m2" if i % 2 else "m3", "prompt": f"prompt {EVIL}",
                             "response_a": f"{EVIL} a" + "x" * (40 * (i % 2)), "response_b": f"b {EVIL}",
                             "raw": EVIL, "p_a": 0.7 if w == "a" else 0.2})
        rows.append({"item": f"it{i}", "rater": "human", "winner": "a" if i % 3 else "b"})
    return write_jsonl(tmp_path / "labels.jsonl", rows)


def test_audit_cli_writes_outputs_and_escapes(tmp_path):
    labels = _labels_with_evil_text(tmp_path)
    out = tmp_path / "out"
    r = run("audit", labels, "--gold", "human", "--bootstrap", "100", "-o", out)
    assert r.returncode == 0, r.stderr
    result = json.loads((out / "audit.json").read_text())
    assert set(result["raters"]) == {"judge-x", "judge-y"}
    assert result["raters"]["judge-x"]["position_consistency"]["value"] == 0.0
    assert result["raters"]["judge-y"]["accuracy"]["value"] == 1.0
    html = (out / "audit.html").read_text()
    assert "<script" not in html.lower() and "&lt;script&gt;" in html
    assert "flipped" in html and "judge-x: 12 pairs with different verdicts" in html
    md = (out / "audit.md").read_text()
    assert "| judge-x |" in md

    gold = write_jsonl(tmp_path / "gold.jsonl", [{"item": f"it{i}", "winner": "a" if i % 3 else "b"}
                                                 for i in range(12)])
    r = run("audit", labels, "--gold", gold, "--bootstrap", "0", "-o", tmp_path / "out2")
    assert r.returncode == 0, r.stderr
    res2 = json.loads((tmp_path / "out2" / "audit.json").read_text())
    assert res2["gold"]["source"].startswith("file:") and "human" in res2["raters"]
    assert res2["raters"]["human"]["accuracy"]["value"] == 1.0


def test_bad_input_exits_2_with_path_and_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"item": "x", "rater": "r", "winner": "a"}) + "\n" +
                   json.dumps({"item": "y", "rater": "r", "winner": "left"}) + "\n")
    out = tmp_path / "out"
    r = run("audit", bad, "-o", out)
    assert r.returncode == 2 and f"{bad}:2:" in r.stderr and "Fix:" in r.stderr
    assert not out.exists()  # nothing half-written

    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"model_a": "m1", "model_b": "m2", "winner": "model_a"}\n{not json\n')
    r = run("elo", broken, "-o", out)
    assert r.returncode == 2 and f"{broken}:2:" in r.stderr

    r = run("audit", write_jsonl(tmp_path / "ok.jsonl", [{"item": "x", "rater": "r", "winner": "a"}]),
            "--gold", "nobody", "-o", out)
    assert r.returncode == 2 and "nobody" in r.stderr

    r = run("convert", write_jsonl(tmp_path / "weird.jsonl", [{"foo": 1}]), "-o", tmp_path / "c.jsonl")
    assert r.returncode == 2 and "weird.jsonl:1:" in r.stderr and "name the format with -f, e.g. rlaif convert -f " \
        "pandalm" in r.stderr


def test_elo_cli_on_arena_battles(tmp_path):
    rows = []
    for i in range(60):
        rows.append({"model_a": "strong", "model_b": "weak", "winner": "model_a" if i % 6 else "model_b",
                     "conversation_a": [{"role": "assistant", "content": "s" * (50 + i)}],
                     "conversation_b": [{"role": "assistant", "content": "w" * 40}]})
        rows.append({"model_a": "mid", "model_b": "weak", "winner": "tie" if i % 2 else "model_a",
                     "conversation_a": [{"role": "assistant", "content": "m" * 45}],
                     "conversation_b": [{"role": "assistant", "content": "w" * 60}]})
    battles = tmp_path / "battles.json"
    battles.write_text(json.dumps(rows))
    out = tmp_path / "elo"
    r = run("elo", battles, "--bootstrap", "200", "--anchor", "weak=800", "-o", out)
    assert r.returncode == 0, r.stderr
    board = json.loads((out / "leaderboard.json").read_text())
    ratings = {x["model"]: x for x in board["ratings"]}
    assert ratings["weak"]["rating"] == pytest.approx(800)
    assert [x["model"] for x in board["ratings"]] == ["strong", "mid", "weak"]
    for x in board["ratings"]:
        assert set(x) == {"model", "rating", "ci_low", "ci_high", "rank", "n_battles", "win_rate"}
        assert x["ci_low"] <= x["rating"] <= x["ci_high"]
    assert ratings["strong"]["n_battles"] == 60 and ratings["strong"]["win_rate"] == pytest.approx(50 / 60)
    rows_csv = list(csv.DictReader((out / "leaderboard.csv").open()))
    assert rows_csv[0]["model"] == "strong"
    assert (out / "leaderboard.svg").read_text().lstrip().startswith("<?xml")
    assert "<script" not in (out / "leaderboard.html").read_text().lower()

    r = run("elo", battles, "--bootstrap", "5", "--style-control", "length", "-o", tmp_path / "sc")
    assert r.returncode == 0, r.stderr
    assert "length_coefficient" in json.loads((tmp_path / "sc" / "leaderboard.json").read_text())["style_control"]
    r = run("elo", battles, "--bootstrap", "5", "--online", "-o", tmp_path / "online")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "online" / "leaderboard.json").read_text())["method"] == "online-elo"


def test_elo_from_labels_combines_orders(tmp_path):
    rows = []
    for i in range(5):  # both orders agree -> one win per pair; a flipped pair counts as a tie
        rows += [{"item": f"p{i}", "rater": "j", "winner": "a", "order": o, "model_a": "x", "model_b": "y"}
                 for o in ("ab", "ba")]
    rows += [{"item": "p9", "rater": "j", "winner": w, "order": o, "model_a": "x", "model_b": "y"}
             for w, o in (("a", "ab"), ("b", "ba"))]
    r = run("elo", write_jsonl(tmp_path / "l.jsonl", rows), "--bootstrap", "0", "-o", tmp_path / "e")
    assert r.returncode == 0, r.stderr
    board = json.loads((tmp_path / "e" / "leaderboard.json").read_text())
    assert board["n_battles"] == 6
    x = next(b for b in board["ratings"] if b["model"] == "x")
    assert x["win_rate"] == pytest.approx(5.5 / 6)


def _shown_either_way(tmp_path: Path) -> Path:
    """Two annotators who agree that x beats y on i1 and i2, but the second kept each pair as shown to them
    (model_a = y): compared letter by letter they never agree. On i3 they disagree."""
    rows = []
    for item in ("i1", "i2"):
        rows.append({"item": item, "rater": "ann1", "model_a": "x", "model_b": "y", "winner": "a", "p_a": 0.9,
                     "order": "ab", "response_a": "X", "response_b": "Y"})
        rows.append({"item": item, "rater": "ann2", "model_a": "y", "model_b": "x", "winner": "b", "p_a": 0.2,
                     "order": "ab", "response_a": "Y", "response_b": "X"})
    rows.append({"item": "i3", "rater": "ann1", "model_a": "x", "model_b": "y", "winner": "a"})
    rows.append({"item": "i3", "rater": "ann2", "model_a": "x", "model_b": "y", "winner": "b"})
    return write_jsonl(tmp_path / "shown.jsonl", rows)


def test_audit_refuses_swapped_models_and_reorient_fixes_it(tmp_path):
    from rlaif.audit import audit_labels
    from rlaif.convert import reorient
    from rlaif.records import Label

    shown = _shown_either_way(tmp_path)
    r = run("audit", shown, "-o", tmp_path / "refused")
    assert r.returncode == 2 and f"{shown}:2:" in r.stderr and "swapped relative to line 1" in r.stderr
    assert "Fix:" in r.stderr and "rlaif convert -f reorient" in r.stderr
    assert not (tmp_path / "refused").exists()

    fixed = tmp_path / "reoriented.jsonl"
    r = run("convert", shown, "-f", "reorient", "-o", fixed)
    assert r.returncode == 0, r.stderr
    back = [json.loads(line) for line in fixed.read_text().splitlines()]
    turned = back[1]  # ann2 on i1, now in ann1's orientation: same verdict (x wins), shown second
    assert (turned["model_a"], turned["model_b"], turned["winner"], turned["order"]) == ("x", "y", "a", "ba")
    assert (turned["response_a"], turned["response_b"]) == ("X", "Y") and abs(turned["p_a"] - 0.8) < 1e-12
    given = [Label.model_validate(json.loads(line)) for line in shown.read_text().splitlines()]
    assert [Label.model_validate(b) for b in back][4:] == given[4:]  # i3 unchanged

    r = run("audit", fixed, "--bootstrap", "0", "-o", tmp_path / "out")
    assert r.returncode == 0, r.stderr
    agreement = json.loads((tmp_path / "out" / "audit.json").read_text())["agreement"]
    assert agreement["percent_agreement"]["value"] == pytest.approx(2 / 3)
    # what the letters said before: no agreement at all
    letters = audit_labels(given, rounds=0)
    assert letters["agreement"]["percent_agreement"]["value"] == 0.0
    assert reorient(reorient([Label.model_validate(b) for b in back])) == [Label.model_validate(b) for b in back]


def _one_rater_swapped(tmp_path: Path) -> Path:
    """One rater's two orders of each pair; on i1 and i2 the second label was written as shown (model_a = y):
    both orders say x wins. On i3, in one orientation, y wins."""
    rows = []
    for item in ("i1", "i2"):
        rows.append({"item": item, "rater": "j", "model_a": "x", "model_b": "y", "winner": "a", "order": "ab",
                     "response_a": "X", "response_b": "YY", "prompt_id": item})
        rows.append({"item": item, "rater": "j", "model_a": "y", "model_b": "x", "winner": "b", "order": "ab",
                     "response_a": "YY", "response_b": "X", "prompt_id": item})
    for order, winner in (("ab", "b"), ("ba", "b")):
        rows.append({"item": "i3", "rater": "j", "model_a": "x", "model_b": "y", "winner": winner, "order": order,
                     "response_a": "X", "response_b": "YY", "prompt_id": "i3"})
    return write_jsonl(tmp_path / "swapped.jsonl", rows)


def _reoriented(tmp_path: Path, labels: Path) -> Path:
    fixed = tmp_path / "reoriented.jsonl"
    r = run("convert", labels, "-f", "reorient", "-o", fixed)
    assert r.returncode == 0, r.stderr
    return fixed


def test_elo_refuses_swapped_models_as_the_audit_does_and_reorient_fixes_it(tmp_path):
    # elo combines a rater's labels of one item letter by letter: i1's {a, b} would be a tie, not x's win
    swapped = _one_rater_swapped(tmp_path)
    r = run("elo", swapped, "--bootstrap", "0", "-o", tmp_path / "refused")
    assert r.returncode == 2 and f"{swapped}:2:" in r.stderr and "swapped relative to line 1" in r.stderr
    assert "Fix:" in r.stderr and "rlaif convert -f reorient" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "refused").exists()
    audit = run("audit", swapped, "-o", tmp_path / "audit")  # the same check, the same message
    assert audit.returncode == 2 and audit.stderr.strip() == r.stderr.strip()

    r = run("elo", _reoriented(tmp_path, swapped), "--bootstrap", "0", "-o", tmp_path / "e")
    assert r.returncode == 0, r.stderr
    board = json.loads((tmp_path / "e" / "leaderboard.json").read_text())
    assert board["n_battles"] == 3  # one per item and rater
    x = next(b for b in board["ratings"] if b["model"] == "x")
    assert x["win_rate"] == pytest.approx(2 / 3)  # letter by letter: two ties and a loss, 1/3


def test_winrate_maps_labels_by_model_name_so_a_swapped_file_gives_the_reoriented_result(tmp_path):
    swapped = _one_rater_swapped(tmp_path)
    runs = {}
    for name, labels in (("swapped", swapped), ("reoriented", _reoriented(tmp_path, swapped))):
        r = run("winrate", "--labels", labels, "--policy", "x", "--baseline", "y", "--bootstrap", "200",
                "-o", tmp_path / name)
        assert r.returncode == 0, r.stderr
        runs[name] = (r.stdout.splitlines()[0], json.loads((tmp_path / name / "winrate.json").read_text()))
    assert runs["swapped"] == runs["reoriented"]
    line, d = runs["swapped"]
    assert (d["wins"], d["losses"], d["ties"]) == (2, 1, 0) and line.startswith("x vs y: win rate 0.667 [")
