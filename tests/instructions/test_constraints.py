"""Rule checkers for verifiable constraints, and the shipped instruction-following prompt sets."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from rlaif.errors import ConfigError, InputError
from rlaif.instructions import constraints as C
from rlaif.records import read_prompts

ROOT = Path(__file__).resolve().parents[2]

# (constraint, compliant response, violating response) for every registered (family, type)
CASES = [
    ({"family": "format", "type": "bullet_list", "n": 3, "relation": "exactly"},
     "Here you go:\n- apples\n- pears\n* plums", "- apples\n- pears"),
    ({"family": "format", "type": "numbered_list", "n": 2, "relation": "exactly"},
     "1. Wake up\n2) Drink water", "1. Wake up\n2. Drink water\n3. Stretch"),
    ({"family": "format", "type": "json"}, '```json\n{"answer": "bees make honey"}\n```', "answer: bees make honey"),
    ({"family": "format", "type": "title"}, "<<Why Bees Matter>>\nBees pollinate crops.", "Why Bees Matter\nBees..."),
    ({"family": "length", "type": "words", "n": 5, "relation": "at most"}, "Bees make sweet honey - daily!",
     "Bees make a lot of sweet honey every day."),
    ({"family": "length", "type": "words", "n": 5, "relation": "at least"}, "one two three four five",
     "one two three - four"),
    ({"family": "length", "type": "sentences", "n": 2, "relation": "exactly"},
     "It weighs 3.5 kg. That is heavy!", "It weighs 3.5 kg. That is heavy! Really? Yes."),
    ({"family": "length", "type": "characters", "n": 20, "relation": "at most"}, "  Short and sweet.  ",
     "This answer is far longer than twenty characters."),
    ({"family": "keywords", "type": "include", "words": ["Hive", "pollen"]}, "The hive stores POLLEN.",
     "The hives store pollen."),
    ({"family": "keywords", "type": "exclude", "words": ["very"]}, "Everything went smoothly.",
     "It was Very good."),
    ({"family": "keywords", "type": "frequency", "word": "rain", "n": 2, "relation": "at least"},
     "Rain falls. Then rain stops.", "Rain falls; the rainbow follows."),
    ({"family": "casing", "type": "lowercase"}, "all lowercase here, 123 ok.", "Mostly lowercase here."),
    ({"family": "casing", "type": "uppercase"}, "ALL CAPS, 42 TIMES!", "ALL CAPS bUT ONE"),
    ({"family": "casing", "type": "capital_words", "n": 2, "relation": "at least"},
     "This is VERY important and URGENT.", "I think A few words are Caps."),
    ({"family": "structure", "type": "paragraphs", "n": 2, "relation": "exactly"},
     "First part.\n\n  \nSecond part.", "One paragraph\nwith a line break."),
    ({"family": "structure", "type": "start_phrase", "phrase": "Here is my answer"},
     "  here is my answer: bees.", "My answer: here is my answer"),
    ({"family": "structure", "type": "end_phrase", "phrase": "Any other questions?"},
     "Bees make honey. Any other questions?\n", "Any other questions? Bees make honey."),
    ({"family": "structure", "type": "no_commas"}, "No commas here at all.", "One, two."),
    ({"family": "structure", "type": "quotation"}, '"Bees make honey."', 'Bees make "honey".'),
    ({"family": "structure", "type": "postscript", "marker": "P.S."},
     "Bees are great.\n\nP.S. Wear a veil.", "Bees are great. P.S. is at the end."),
]


def test_every_registered_checker_has_a_case():
    assert {(c["family"], c["type"]) for c, _, _ in CASES} == set(C.registered())
    assert {f for f, _ in C.registered()} == set(C.FAMILIES)


@pytest.mark.parametrize("constraint,good,bad", CASES, ids=[f"{c['family']}-{c['type']}" for c, _, _ in CASES])
def test_checker_accepts_compliant_and_rejects_violation(constraint, good, bad):
    ok = C.check([constraint], good)
    assert ok.all_pass, ok.results[0].detail
    no = C.check([constraint], bad)
    assert not no.all_pass, no.results[0].detail
    text = C.describe(constraint)
    assert text.endswith(".") and len(text) > 15


def test_counting_rules_by_hand():
    # words: tokens with a letter or digit; a lone dash is not a word
    assert C.words("Bees - make 2 jars!") == ["Bees", "make", "2", "jars!"]
    # sentences: decimals and list markers do not split; line breaks do
    assert len(C.sentences("It is 3.5 m. Wow!\n1. First item")) == 3
    assert len(C.paragraphs("a\n\nb\n \n\nc")) == 3
    # keywords are whole words, case-insensitive
    assert C.keyword_count("Art, party, ART.", "art") == 2


def test_check_result_summaries():
    cons = [{"family": "casing", "type": "lowercase"}, {"family": "structure", "type": "no_commas"},
            {"family": "length", "type": "words", "n": 3, "relation": "at most"}]
    r = C.check(cons, "hello there, friend")
    assert [x.passed for x in r.results] == [True, False, True]
    assert not r.all_pass and r.share_passed == pytest.approx(2 / 3)
    d = r.to_dict()
    assert d["all_pass"] is False and d["results"][1]["detail"] == "1 commas"
    assert C.check([], "anything").all_pass


def test_empty_response_complies_with_nothing():
    cons = [{"family": "keywords", "type": "exclude", "words": ["very"]}, {"family": "structure", "type": "no_commas"}]
    r = C.check(cons, "   \n")
    assert r.share_passed == 0 and not r.all_pass


def test_casing_and_phrases_combine():
    cons = [{"family": "casing", "type": "lowercase"},
            {"family": "structure", "type": "end_phrase", "phrase": "Any other questions?"}]
    assert C.check(cons, "bees make honey. any other questions?").all_pass


@pytest.mark.parametrize("bad", [
    {"family": "format", "type": "yaml"}, {"family": "length", "type": "words"},
    {"family": "length", "type": "words", "n": 3, "relation": "roughly"}, "lowercase"])
def test_unknown_or_incomplete_constraints_fail_clearly(bad):
    with pytest.raises(ConfigError, match="Fix:"):
        C.check([bad], "text")


# ---- the shipped prompt sets --------------------------------------------------------------------

SETS = {"ifeval_id": ("id", {"format", "length", "keywords"}), "ifeval_ood": ("ood", {"casing", "structure"})}


@pytest.mark.parametrize("name", sorted(SETS))
def test_ifeval_sets_load_and_every_constraint_has_a_checker(name):
    split, families = SETS[name]
    prompts = read_prompts(ROOT / "prompts" / f"{name}.jsonl")
    assert len(prompts) >= (200 if split == "id" else 100)
    seen_types = set()
    for p in prompts:
        assert p.constraints and p.split == split
        fams = [c["family"] for c in p.constraints]
        assert len(fams) == len(set(fams)), "at most one constraint per family"
        assert set(fams) <= families
        assert p.category == "+".join(fams)
        for c in p.constraints:
            C.validate(c)
            assert C.describe(c) in p.prompt  # the instruction text comes from the checker's module
            seen_types.add((c["family"], c["type"]))
    assert seen_types == {k for k in C.registered() if k[0] in families}


def test_assistant_set_loads_with_categories():
    prompts = read_prompts(ROOT / "prompts" / "assistant.jsonl")
    assert len(prompts) >= 200
    cats = {p.category for p in prompts}
    assert {"explain", "advice", "summarize", "brainstorm", "rewrite", "math", "reasoning"} <= cats
    assert len({p.prompt for p in prompts}) == len(prompts)
    math = [p for p in prompts if p.category == "math"]
    assert all(p.reference for p in math)


def test_prompt_sets_are_catalog_builtins():
    from rlaif.catalog import builtin_names, find

    assert {"ifeval_id", "ifeval_ood", "assistant"} <= set(builtin_names("prompts"))
    assert find("prompts", "ifeval_ood").name == "ifeval_ood.jsonl"


def test_prompt_sets_are_reproducible(tmp_path):
    from rlaif.instructions.promptsets.__main__ import write_all

    for path in write_all(tmp_path):
        committed = ROOT / "prompts" / path.name
        assert path.read_bytes() == committed.read_bytes(), (
            f"{path.name} differs: run python -m rlaif.instructions.promptsets")
        json.loads(path.read_text().splitlines()[0])


# ---- a constraint's fields are checked when the file is read -------------------------------------------

WRONG_FIELDS = [  # (constraint, the field named, what was expected)
    ({"family": "keywords", "type": "include", "words": "notalist"}, "field 'words' is \"notalist\"",
     "expected a non-empty list of words"),
    ({"type": "words", "words": "notalist"}, "field 'family' is missing", "expected one of length"),
    ({"family": "length", "type": "words", "n": "50"}, "field 'n' is \"50\"", "expected a whole number"),
    ({"family": "length", "type": "words", "n": True}, "field 'n' is true", "expected a whole number"),
    ({"family": "keywords", "type": "exclude", "words": ["ok", 3]}, "field 'words' is [\"ok\", 3]", "list of words"),
    ({"family": "structure", "type": "end_phrase", "phrase": ""}, "field 'phrase' is \"\"", "a non-empty string"),
    ({"family": "length", "type": "words", "n": 5, "relation": 5}, "field 'relation' is 5", "at most, at least"),
]


@pytest.mark.parametrize("constraint,field,expected", WRONG_FIELDS)
def test_a_wrong_field_is_refused_with_file_line_field_and_fix(tmp_path, constraint, field, expected):
    path = tmp_path / "prompts.jsonl"
    good = {"prompt": "Say hi.", "constraints": [{"family": "casing", "type": "lowercase"}]}
    path.write_text(json.dumps(good) + "\n" + json.dumps({"prompt": "Describe a pear.",
                                                          "constraints": [good["constraints"][0], constraint]}) + "\n")
    with pytest.raises(InputError) as e:
        read_prompts(path)
    msg = str(e.value)
    assert msg.startswith(f"{path}:2: constraints[1]: ") and field in msg and expected in msg and "Fix: e.g. " in msg


def test_the_rule_judge_no_longer_scores_a_wrong_field_silently(tmp_path):
    """As met: `"words": "notalist"` was checked letter by letter and every response scored 0."""
    from cli_helpers import rlaif_inproc

    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"prompt_id": "p0", "prompt": "Name a fruit.", "constraints": [
        {"family": "keywords", "type": "include", "words": "notalist"}]}) + "\n")
    responses = tmp_path / "responses.jsonl"
    responses.write_text("".join(json.dumps({"prompt_id": "p0", "prompt": "Name a fruit.", "policy": p, "sample": 0,
                                             "response": "notalist"}) + "\n" for p in ("a", "b")))
    r = rlaif_inproc("label", responses, "-j", "rule", "--prompts", prompts, "-o", tmp_path / "out")
    assert r.code == 2 and "Traceback" not in r.stderr, r.stderr
    assert f"{prompts}:1: constraints[0]: constraint keywords/include: field 'words' is \"notalist\", expected a " \
           "non-empty list of words. Fix: e.g. \"words\": [\"apple\", \"pear\"]" in r.stderr
    assert not (tmp_path / "out").exists()


def test_constraints_for_a_checker_of_ones_own_are_left_to_it(tmp_path):
    path = tmp_path / "prompts.jsonl"
    own = [{"type": "max_words", "n": 3}, {"type": "contains", "text": "hi"}, {"family": "mine", "type": "words",
                                                                               "words": "free-form"}]
    path.write_text(json.dumps({"prompt": "Say hi.", "constraints": own}) + "\n")
    assert read_prompts(path)[0].constraints == own
