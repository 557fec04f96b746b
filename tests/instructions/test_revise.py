import json

import pytest

from rlaif.catalog import find
from rlaif.instructions.constraints import check
from rlaif.instructions.revise import revisable, revise
from rlaif.records import read_prompts

TEXT = "Bees live in hives, and they make honey. They pollinate flowers. Farmers need them."


@pytest.mark.parametrize("constraint,expected", [
    ({"family": "casing", "type": "lowercase"}, TEXT.lower()),
    ({"family": "structure", "type": "no_commas"}, TEXT.replace(",", "")),
    ({"family": "structure", "type": "end_phrase", "phrase": "Any other questions?"}, TEXT + " Any other questions?"),
    ({"family": "length", "type": "words", "n": 5, "relation": "at most"}, "Bees live in hives, and"),
    ({"family": "length", "type": "sentences", "n": 2, "relation": "at most"},
     "Bees live in hives, and they make honey. They pollinate flowers."),
    ({"family": "keywords", "type": "include", "words": ["pollen"]}, TEXT + " This is about pollen."),
    ({"family": "keywords", "type": "exclude", "words": ["honey"]},
     "Bees live in hives, and they make. They pollinate flowers. Farmers need them."),
    ({"family": "format", "type": "numbered_list", "n": 3, "relation": "exactly"},
     "1. Bees live in hives, and they make honey.\n2. They pollinate flowers.\n3. Farmers need them."),
    ({"family": "format", "type": "json"}, json.dumps({"answer": TEXT})),
    ({"family": "format", "type": "title"}, "<<Bees live in hives>>\n\n" + TEXT),
])
def test_single_revisions_are_exact_and_pass(constraint, expected):
    out = revise([constraint], TEXT)
    assert out == expected
    assert check([constraint], out).all_pass


def test_combined_revision_applies_casing_and_json_last():
    cs = [{"family": "format", "type": "json"}, {"family": "casing", "type": "lowercase"},
          {"family": "keywords", "type": "include", "words": ["Pollen"]}]
    out = revise(cs, TEXT)
    assert json.loads(out) == {"answer": (TEXT + " This is about Pollen.").lower()}
    assert check(cs, out).all_pass


def test_unrevisable_constraints_give_none():
    assert revise([{"family": "length", "type": "words", "n": 500, "relation": "at least"}], TEXT) is None
    assert not revisable({"family": "casing", "type": "capital_words", "n": 2})
    assert revise([{"family": "casing", "type": "lowercase"}], "   ") is None
    assert revise([], TEXT) is None


def test_every_revision_of_the_shipped_sets_passes_the_checker():
    # Whatever revise returns must pass: it re-checks, but the shipped sets exercise every type.
    n = 0
    for name in ("ifeval_id", "ifeval_ood"):
        for p in read_prompts(find("prompts", name)):
            out = revise(p.constraints, TEXT)
            if out is not None:
                n += 1
                assert check(p.constraints, out).all_pass
    assert n > 200
