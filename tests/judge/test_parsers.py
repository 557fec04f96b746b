"""Verdict parsers, judge YAML loading and templates (no model calls)."""
from __future__ import annotations

import math

import pytest

from rlaif import catalog
from rlaif.errors import ConfigError, InputError
from rlaif.judge.labeling import verdict_to_ab
from rlaif.judge.parsers import Verdict, ab_probability, aspects, binary, logprob_ab, score, verdict_text
from rlaif.judge.spec import load_judge, load_judges
from rlaif.judge.templates import load_template, render_prompt


@pytest.mark.parametrize("text,choice,p", [
    ("[[A]]", "first", 1.0),
    ("The second is right. [[B]]", "second", 0.0),
    ("Both equally good: [[C]]", "tie", 0.5),
    ("[[tie]]", "tie", 0.5),
    # a rationale that quotes the format before the verdict: the last one counts
    ("I must answer [[A]] or [[B]]. Answer B has the right number.\n[[B]]", "second", 0.0),
    ("  A.", "first", 1.0),
    ("b", "second", 0.0),
])
def test_verdict_text(text, choice, p):
    v = verdict_text(text)
    assert (v.choice, v.p_first, v.error) == (choice, p, None)


@pytest.mark.parametrize("text", ["", "I think Answer A is better", "[[D]]", "A or B"])
def test_verdict_text_invalid_is_data(text):
    v = verdict_text(text)
    assert v.choice is None and v.p_first is None and "no verdict" in v.error


def test_logprob_softmax_over_variants():
    # P(A) = e^-1 + e^-2 (two variants), P(B) = e^-0.5; p_first = P(A) / (P(A) + P(B))
    pos = {"A": -1.0, " A": -2.0, " B": -0.5, "The": -0.1}
    pa, pb = math.exp(-1) + math.exp(-2), math.exp(-0.5)
    assert ab_probability(pos) == pytest.approx(pa / (pa + pb), rel=1e-12)
    v = logprob_ab("B", [pos])
    assert v.method == "logprob" and v.p_first == pytest.approx(pa / (pa + pb))
    assert v.choice == "second"  # 0.488 < 0.5
    # the two probabilities over {A, B} sum to 1 whichever side is asked
    assert ab_probability(pos) + ab_probability(pos, "B", "A") == pytest.approx(1.0)


def test_logprob_one_side_missing_and_spacemarks():
    assert ab_probability({"\u2581A": -3.0, "x": -0.1}) == 1.0
    assert ab_probability({"\u0120B": -3.0}) == 0.0
    assert ab_probability({"x": -0.1}) is None


def test_logprob_scans_positions_then_falls_back_to_text():
    # first position has no A/B (e.g. "[["), the second has them
    v = logprob_ab("[[A]]", [{"[[": -0.01}, {"A": -0.2, "B": -1.2}])
    assert v.method == "logprob" and v.p_first == pytest.approx(1 / (1 + math.exp(-1.0)))
    # no log-probs at all (a backend without them): the text decides
    v = logprob_ab("A", None)
    assert (v.method, v.choice, v.p_first) == ("text", "first", 1.0)
    v = logprob_ab("B) because", [])
    assert (v.choice, v.p_first) == ("second", 0.0)
    v = logprob_ab("Hmm", [{"Hmm": -0.1}])
    assert v.error and "top log-probabilities" in v.error


def test_verdict_maps_back_to_original_order():
    v = Verdict("first", 0.8)
    assert verdict_to_ab(v, "ab") == ("a", 0.8)
    w, p = verdict_to_ab(v, "ba")  # shown first was b
    assert w == "b" and p == pytest.approx(0.2)
    assert verdict_to_ab(Verdict("tie", 0.5), "ba") == ("tie", 0.5)
    assert verdict_to_ab(Verdict(error="x"), "ab") == (None, None)


def test_score_aspects_binary():
    assert score("Clear and right.\nRating: [[8]]", score_range=(1, 10)).value == 8
    assert score("Score: 7", score_range=(1, 10)).value == 7
    assert "outside" in score("Rating: [[11]]", score_range=(1, 10)).error
    assert score("great answer").error
    names = ["instruction_following", "truthfulness", "honesty", "helpfulness"]
    s = aspects("instruction_following: 4\ntruthfulness: 5\nHonesty: 3\nhelpfulness: [[4]]", aspects=names,
                score_range=(1, 5))
    assert s.value == pytest.approx(4.0) and s.aspects["honesty"] == 3
    s = aspects("instruction following: 4\ntruthfulness: 5", aspects=names, score_range=(1, 5))
    assert "honesty, helpfulness" in s.error and s.value is None
    assert binary("[[GOOD]]").value == 1.0 and binary("Bad").value == 0.0 and binary("fine").error


def test_builtin_judges_load_and_rater_identity():
    names = catalog.builtin_names("judges")
    for required in ("pairwise", "pairwise-logprob", "pairwise-cot", "rubric", "binary", "rule", "reward-model"):
        assert required in names
    j = load_judge("pairwise-logprob")
    assert j.rater == "pairwise-logprob@v1:local" and j.spec.backend == "local"
    assert j.spec.sampling.top_logprobs > 0 and j.spec.sampling.max_tokens == 1
    j = load_judge("pairwise", model="openai:gpt-4o-mini")
    assert j.rater == "pairwise@v1:openai:gpt-4o-mini"
    with pytest.raises(ConfigError, match="--judge-model"):
        load_judge("reward-model")
    assert load_judge("reward-model", model="runs/rm").rater == "reward-model@v1:runs/rm"
    for n in names:
        if n != "reward-model":
            assert load_judge(n).spec.backend == "local"


def test_load_judges_models_and_duplicates():
    js = load_judges(["pairwise", "rule"], ["openai:m"])
    assert js[0].model == "openai:m" and js[1].model == "rlaif.constraints:check"
    js = load_judges(["pairwise", "pairwise"], ["openai:m1", "openai:m2"])
    assert [j.model for j in js] == ["openai:m1", "openai:m2"]
    with pytest.raises(ConfigError, match="twice"):
        load_judges(["pairwise", "pairwise"])
    with pytest.raises(ConfigError, match="once per --judge"):
        load_judges(["pairwise", "rubric", "binary"], ["a", "b"])


def test_user_judge_file_and_errors(tmp_path):
    good = tmp_path / "mine.yaml"
    good.write_text("name: mine\nmode: pairwise\ntemplate: pairwise_v1\nparser: verdict_text\n"
                    "backend: openai:gpt-4o-mini\nsampling: {max_tokens: 4}\n")
    j = load_judge(str(good))
    assert j.rater == "mine@v1:openai:gpt-4o-mini" and j.spec.sampling.max_tokens == 4
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nmode: pairwise\ntemplate: pairwise_v1\nparser: verdict_text\nsampling: {max_tokns: 4}\n")
    with pytest.raises(InputError, match=r"bad.yaml.*max_tokns.*Fix:"):
        load_judge(str(bad))
    wrong_mode = tmp_path / "wm.yaml"
    wrong_mode.write_text("name: wm\nmode: pointwise\ntemplate: rubric_v1\nparser: verdict_text\n")
    with pytest.raises(InputError, match="is for mode 'pairwise'"):
        load_judge(str(wrong_mode))
    with pytest.raises(ConfigError, match="no file 'nope'"):
        load_judge("nope")


def test_templates_render_sections_and_fields(tmp_path):
    t = load_template("pairwise_v1")
    msgs = t.render(prompt="Q?", answer_a="first answer", answer_b="second answer")
    assert [m["role"] for m in msgs] == ["system", "user"]
    assert msgs[1]["content"].index("first answer") < msgs[1]["content"].index("second answer")
    msgs = load_template("rubric_aspects_v1").render(prompt="Q", response="R", aspects=["honesty", "helpfulness"])
    assert "honesty: N" in msgs[-1]["content"] and "helpfulness: N" in msgs[-1]["content"]
    p = tmp_path / "t_v1.txt"
    p.write_text("[user]\n{{ prompt }} {{ nonsense }}\n")
    with pytest.raises(InputError, match="unknown field"):
        load_template(str(p)).render(prompt="x")
    p.write_text("no sections here {{ prompt }}")
    with pytest.raises(InputError, match=r"\[user\]"):
        load_template(str(p))


def test_render_prompt_chat():
    assert render_prompt("hi") == "hi"
    assert render_prompt([{"role": "user", "content": "hi"}]) == "hi"
    chat = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]
    assert render_prompt(chat) == "User: a\n\nAssistant: b\n\nUser: c"
