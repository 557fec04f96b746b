"""eval.html / eval.md as a new user reads them (issue #23): each summary card says what its number is (whose win
rate, over which baseline, by which judge), with its interval and n; a split is not named twice (`id (id)`); a
judge that told the responses apart on no pair (one that always picks the answer shown first: every pair's two
orders disagree, so every verdict is a tie) is marked "no signal" instead of showing an interval. The eval runs for
real: policies and judge on a loopback OpenAI server."""
from __future__ import annotations

import json
import re

import pytest
import yaml
from fakeserver import FakeServer

from rlaif.calls import CallOptions
from rlaif.records import write_jsonl
from tests.support.browser import needs_chromium, opened

_SHOWN = re.compile(r"Answer A:\n<<<\n(.*?)\n>>>\n\nAnswer B:\n<<<\n(.*?)\n>>>", re.S)
NO_COMMAS = {"family": "structure", "type": "no_commas"}


def reply(call):
    """Policies: `dpo` answers without commas, `sft` with one. The LLM judge always prefers the answer shown
    first: at chance, as an audit of it finds."""
    if _SHOWN.search(call.prompt) is None:
        return "fine answer" if call.body["model"] == "dpo" else "OK, an answer"
    return "[[A]]"


@pytest.fixture(scope="module")
def eval_dir(tmp_path_factory):
    from rlaif.eval.runner import run_eval

    d = tmp_path_factory.mktemp("eval-page")
    for split in ("id", "ood"):
        write_jsonl(d / f"{split}.jsonl", [{"prompt_id": f"{split}-{k}", "prompt": f"{split} question {k}",
                                            "constraints": [NO_COMMAS]} for k in range(6)])
    suite = {"name": "toy", "splits": {"id": {"prompts": "id.jsonl", "kind": "id"},
                                       "ood": {"prompts": "ood.jsonl", "kind": "ood"}},
             "judges": ["rule", "pairwise"], "baseline": "sft=openai:sft", "metrics": ["win_rate"],
             "generation": {"samples": 1, "max_tokens": 16, "temperature": 0.0}, "embedding": False, "n_boot": 500}
    (d / "toy.yaml").write_text(yaml.safe_dump(suite))
    with pytest.MonkeyPatch.context() as mp, FakeServer(reply=reply) as server:
        mp.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
        run_eval(str(d / "toy.yaml"), "dpo=openai:dpo", None, d / "out", judge_model="openai:judge",
                 options=CallOptions(base_urls=[server.openai_url], progress=False, concurrency=4))
    return d / "out"


def test_the_chance_judge_is_measured_as_cancelling_on_every_prompt(eval_dir):
    result = json.loads((eval_dir / "eval.json").read_text())
    w = result["splits"]["id"]["win_rate"]["pairwise@v1:openai:judge"]
    # 6 prompts x 2 orders: dpo wins when shown first, loses when shown second -> the two orders disagree on
    # every pair, so each pair's verdict is a tie (MT-Bench's rule): every prompt at 1/2
    assert (w["wins"], w["losses"], w["ties"], w["n"], w["n_prompts"]) == (0, 0, 6, 6, 6)
    assert w["win_rate"] == 0.5 and w["ci_low"] < 0.5 < w["ci_high"]  # an interval around ½ that measures nothing
    rule = result["splits"]["id"]["win_rate"]["rule@v1:rlaif.constraints:check"]
    assert (rule["win_rate"], rule["n"]) == (1.0, 6)


def test_markdown_names_each_split_once_and_marks_no_signal(eval_dir):
    md = (eval_dir / "eval.md").read_text()
    assert "(id)" not in md and "(ood)" not in md  # was "id 6 (id)" and a kind column repeating the split
    assert "prompts per split: id 6, ood 6." in md
    assert "| id | pairwise@v1:openai:judge | 6 | 0-0-6 | 0.500 | no signal (every verdict a tie) |" in md
    splits = json.loads((eval_dir / "eval.json").read_text())["splits"]
    rule = splits["id"]["win_rate"]["rule@v1:rlaif.constraints:check"]
    assert (f"| id | rule@v1:rlaif.constraints:check | 6 | 6-0-0 | 1.000 | \\[{rule['ci_low']:.3f}, 1.000\\] |"
            in md)


@needs_chromium
def test_summary_cards_in_chromium(eval_dir):
    with opened(eval_dir / "eval.html", width=1280, console=False) as (page, errors):
        assert errors == []
        cards = page.locator("section").first.locator(".card")
        texts = [t.replace("\n", " | ") for t in cards.all_inner_texts()]
        assert len(texts) == 4  # 2 splits x 2 judges
        by = {t.split(" | ")[1]: t for t in texts}
        chance = by["id: win rate of dpo over sft, judged by pairwise"]
        assert chance.startswith("0.500 no signal | ")
        assert chance.endswith("every verdict a tie (it said tie, or its two orders disagreed): "
                               "n = 6 comparisons on 6 prompts")
        assert "interval" not in chance  # no interval that looks like a measurement
        rule = by["ood: win rate of dpo over sft, judged by rule"]
        assert re.fullmatch(r"1\.000 \| ood: win rate of dpo over sft, judged by rule \| 95% interval "
                            r"\[0\.\d{3}, 1\.000\], n = 6 comparisons on 6 prompts", rule), rule
        flags = page.locator(".card .flag")
        assert flags.count() == 2 and all(f.is_visible() for f in flags.all())  # id and ood, the chance judge
        box = flags.first.bounding_box()
        assert box["width"] > 20 and box["height"] > 8
        assert "id (id)" not in page.locator("body").inner_text()
