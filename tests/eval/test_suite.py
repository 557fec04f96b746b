"""`rlaif eval SUITE` with known verdicts (policies and judge on a loopback OpenAI server), the suite
schema and its errors, policy refs."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from fakeserver import FakeServer

from rlaif.calls import CallOptions
from rlaif.errors import ConfigError
from rlaif.eval.suite import load_suite, parse_policy
from rlaif.records import Label, Response, read_jsonl, write_jsonl
from rlaif.stats.winrate import ClusteredScores, Outcome, compute_win_rate, generalization_gap

_SHOWN = re.compile(r"Answer A:\n<<<\n(.*?)\n>>>\n\nAnswer B:\n<<<\n(.*?)\n>>>", re.S)
_RANK = {"GOOD": 2, "OK": 1, "BAD": 0}
NO_COMMAS = {"family": "structure", "type": "no_commas"}


def reply(call):
    """Policies: `dpo` answers ID prompts well and odd OOD prompts badly (with a comma); `sft` answers
    everything "OK, ..." (with a comma). The judge ranks GOOD > OK > BAD and says [[C]] on a tie."""
    m = _SHOWN.search(call.prompt)
    if m is None:
        model, prompt = call.body["model"], call.prompt
        if model == "sft":
            return f"OK, an answer to {prompt}"
        k = int(prompt.split()[-1])
        if prompt.startswith("ood") and k % 2:
            return f"BAD, no answer to {prompt}"
        return f"GOOD <script>alert({k})</script> answer to {prompt}"
    a, b = (_RANK[x.split()[0].rstrip(",")] for x in m.groups())
    return "[[A]]" if a > b else "[[B]]" if b > a else "[[C]]"


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
    with FakeServer(reply=reply) as srv:
        yield srv


def _suite(tmp_path: Path, **overrides) -> Path:
    for split in ("id", "ood"):
        write_jsonl(tmp_path / f"{split}.jsonl",
                    [{"prompt_id": f"{split}-{k}", "prompt": f"{split} question {k}", "constraints": [NO_COMMAS],
                      "category": "even" if k % 2 == 0 else "odd"} for k in range(4)])
    data = {"name": "toy", "splits": {"id": {"prompts": "id.jsonl", "kind": "id"},
                                      "ood": {"prompts": "ood.jsonl", "kind": "ood"}},
            "judges": ["rule", "pairwise"], "baseline": "sft=openai:sft",
            "metrics": ["win_rate", "compliance", "diversity"],
            "generation": {"samples": 1, "max_tokens": 32, "temperature": 0.0}, "embedding": False,
            "n_boot": 2000} | overrides
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_eval_with_known_verdicts_gives_exact_rates_and_gap(tmp_path, server):
    from rlaif.eval.runner import run_eval

    out = tmp_path / "out"
    r = run_eval(str(_suite(tmp_path)), "dpo=openai:dpo", None, out, judge_model="openai:judge",
                 options=CallOptions(base_urls=[server.openai_url], progress=False, concurrency=4))
    assert {"suite", "policy", "baseline", "splits", "generalization_gap"} <= set(r.result)
    assert r.out == out and (r.result["suite"], r.result["policy"], r.result["baseline"]) == ("toy", "dpo", "sft")
    rule, llm = "rule@v1:rlaif.constraints:check", "pairwise@v1:openai:judge"
    ids, ood = r.result["splits"]["id"], r.result["splits"]["ood"]
    assert (ids["kind"], ood["kind"], ids["n_prompts"], ids["samples"]) == ("id", "ood", 4, 1)
    # the LLM judge: ID all wins; OOD wins on even prompts, losses on odd ones (both orders agree)
    w = ids["win_rate"][llm]
    assert (w["wins"], w["losses"], w["ties"], w["win_rate"]) == (4, 0, 0, 1.0)
    w = ood["win_rate"][llm]
    assert (w["wins"], w["losses"], w["ties"], w["win_rate"]) == (2, 2, 0, 0.5)
    assert w["per_category"]["even"]["win_rate"] == 1.0 and w["per_category"]["odd"]["win_rate"] == 0.0
    # the rule judge: sft always has a comma; dpo only on odd OOD prompts (then both fail: a tie)
    assert ids["win_rate"][rule]["win_rate"] == 1.0
    assert (ood["win_rate"][rule]["wins"], ood["win_rate"][rule]["ties"], ood["win_rate"][rule]["win_rate"]) == \
        (2, 2, 0.75)
    assert ids["compliance"]["dpo"]["all_pass_rate"] == 1.0 and ood["compliance"]["dpo"]["all_pass_rate"] == 0.5
    assert ids["compliance"]["sft"]["all_pass_rate"] == 0.0 and ood["compliance"]["sft"]["per_family"] == \
        {"structure": 0.0}
    assert set(ids["diversity"]) == {"dpo", "sft"} and ids["diversity"]["dpo"]["per_input"]["embedding"] is None
    # the interval is stats.winrate's on the same outcomes, in the same prompt order
    ref = compute_win_rate([Outcome(f"ood-{k}", "win" if k % 2 == 0 else "loss") for k in range(4)], n_boot=2000)
    assert (w["ci_low"], w["ci_high"]) == (ref.ci_low, ref.ci_high)
    # the gap: ID − OOD with generalization_gap's interval
    g = r.result["generalization_gap"]["win_rate"][llm]
    assert (g["id"], g["ood"], g["gap"]) == (1.0, 0.5, 0.5)
    ref_gap = generalization_gap(ClusteredScores.from_pairs([f"id-{k}" for k in range(4)], [1.0] * 4),
                                 ClusteredScores.from_pairs([f"ood-{k}" for k in range(4)], [1, 0, 1, 0]),
                                 n_boot=2000)
    assert (g["ci_low"], g["ci_high"]) == (ref_gap.ci_low, ref_gap.ci_high)
    assert r.result["generalization_gap"]["compliance"]["dpo"]["gap"] == 0.5
    assert r.result["generalization_gap"]["compliance"]["sft"]["gap"] == 0.0
    # per-split files, both orders of every pair, named policies
    labels = read_jsonl(out / "ood" / "labels.jsonl", Label)
    assert sorted(lab.order for lab in labels if lab.rater == llm) == ["ab", "ab", "ab", "ab", "ba", "ba", "ba", "ba"]
    assert {lab.model_a for lab in labels} == {"dpo"} and {lab.model_b for lab in labels} == {"sft"}
    assert {x.policy for x in read_jsonl(out / "id" / "responses_dpo.jsonl", Response)} == {"dpo"}
    # the pages: model text escaped, the pairs shown
    html = (out / "eval.html").read_text()
    assert "<script>alert" not in html and "&lt;script&gt;alert(0)&lt;/script&gt;" in html
    assert html.count("<details>") == 8 and "Generalization gap" in html
    md = (out / "eval.md").read_text()
    assert "## Generalization gap" in md and "| ood | pairwise@v1:openai:judge | 4 | 2-2-0 | 0.500 |" in md
    saved = json.loads((out / "eval.json").read_text())
    assert saved["splits"]["ood"]["win_rate"][llm]["win_rate"] == 0.5
    # a re-run makes zero calls and gives the same numbers
    before = server.count
    again = run_eval(str(_suite(tmp_path)), "dpo=openai:dpo", None, out, judge_model="openai:judge",
                     options=CallOptions(base_urls=[server.openai_url], progress=False))
    assert server.count == before and again.result["calls"]["made"] == 0
    assert again.result["calls"]["cache_hits"] == 16
    strip = lambda sp: {k: v for k, v in sp.items() if k != "calls"}
    assert all(strip(again.result["splits"][s]) == strip(r.result["splits"][s]) for s in ("id", "ood"))


def test_eval_command_with_limit_offset_and_kl_note(tmp_path, server):
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "rlaif.cli", "eval", str(_suite(tmp_path)), "--policy",
                           "dpo=openai:dpo", "--baseline", "sft=openai:sft", "-o", str(out), "--limit", "2",
                           "--offset", "1", "--judge-model", "openai:judge", "--base-url", server.openai_url, "--kl"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "ood (ood) pairwise@v1:openai:judge: win rate 0.500" in proc.stdout
    r = json.loads((out / "eval.json").read_text())
    assert {x.prompt_id for x in read_jsonl(out / "ood" / "responses_sft.jsonl", Response)} == {"ood-1", "ood-2"}
    kl = r["splits"]["id"]["reward"]
    assert kl["kl_estimate"] is None and "local or hf" in kl["kl"]["note"]
    assert r["prompts_offset"] == 1 and r["splits"]["id"]["n_prompts"] == 2


def test_eval_refuses_responses_of_other_settings_and_equal_names(tmp_path, server):
    from rlaif.eval.runner import run_eval

    suite = str(_suite(tmp_path, splits={"id": {"prompts": "id.jsonl", "kind": "id"}}))
    kw = dict(judge_model="openai:judge", options=CallOptions(base_urls=[server.openai_url], progress=False))
    run_eval(suite, "dpo=openai:dpo", None, tmp_path / "o", limit=1, **kw)
    with pytest.raises(ConfigError, match="max_tokens.*Fix: use another -o"):
        run_eval(suite, "dpo=openai:dpo", None, tmp_path / "o", limit=1, max_tokens=8, **kw)
    with pytest.raises(ConfigError, match="both named 'sft'"):
        run_eval(suite, "sft=openai:dpo", None, tmp_path / "o2", **kw)
    with pytest.raises(ConfigError, match="none left after skipping 9"):
        run_eval(suite, "dpo=openai:dpo", None, tmp_path / "o3", prompts_offset=9, **kw)


# ---- the schema ----------------------------------------------------------------------------------------

def test_builtin_suites_load():
    s = load_suite("ifeval")
    assert {k: v.kind for k, v in s.spec.splits.items()} == {"id": "id", "ood": "ood"}
    assert [Path(p).stem for p in s.judge_paths] == ["rule", "pairwise-logprob"]
    assert s.prompt_paths["ood"].name == "ifeval_ood.jsonl" and set(s.spec.metrics) == {"win_rate", "compliance",
                                                                                         "diversity"}
    a = load_suite("assistant")
    assert a.spec.judges == ["pairwise-logprob"] and a.prompt_paths["all"].name == "assistant.jsonl"


@pytest.mark.parametrize("change, key", [
    ({"judgs": ["rule"]}, "judgs"),
    ({"splits": {"id": {"prompts": "id.jsonl", "kind": "middle"}}}, "splits.id.kind"),
    ({"splits": {"id": {"prompts": "nope", "kind": "id"}}}, "splits.id.prompts"),
    ({"judges": ["rule", "no-such-judge"]}, "judges[1]"),
    ({"metrics": ["winrate"]}, "metrics[0]"),
    ({"generation": {"samples": 0}}, "generation.samples"),
    ({"judges": []}, "needs at least one judge"),
    ({"splits": {"a/b": {"prompts": "id.jsonl", "kind": "id"}}}, "split name 'a/b'"),
    ({"baseline": "sft=local,temp=1"}, "baseline: "),
])
def test_suite_errors_name_the_file_and_key(tmp_path, change, key):
    path = _suite(tmp_path, **change)
    with pytest.raises(ConfigError) as e:
        load_suite(str(path))
    assert str(path) in str(e.value) and key in str(e.value) and "Fix:" in str(e.value)


def test_suite_errors_exit_2_from_the_command(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nsplits:\n  id: {prompts: ifeval_id, kind: id\n")
    proc = subprocess.run([sys.executable, "-m", "rlaif.cli", "eval", str(bad), "--policy", "local", "-o",
                           str(tmp_path / "o")], capture_output=True, text=True)
    assert proc.returncode == 2 and f"{bad}:" in proc.stderr and "not valid YAML" in proc.stderr
    assert not (tmp_path / "o").exists()
    path = _suite(tmp_path, generation={"temperture": 0.5})
    proc = subprocess.run([sys.executable, "-m", "rlaif.cli", "eval", str(path), "--policy", "local", "-o",
                           str(tmp_path / "o")], capture_output=True, text=True)
    assert proc.returncode == 2 and "generation.temperture" in proc.stderr and str(path) in proc.stderr
    assert not (tmp_path / "o").exists()


def test_policy_refs():
    p = parse_policy("dpo=hf:runs/dpo/model")
    assert (p.name, p.spec, p.temperature) == ("dpo", "hf:runs/dpo/model", None)
    p = parse_policy("hot=hf:/m,temperature=1.3")
    assert (p.name, p.spec, p.temperature, p.is_local) == ("hot", "hf:/m", 1.3, True)
    assert parse_policy("openai:gpt-4o-mini").name == "openai:gpt-4o-mini"
    assert parse_policy("hf:/odd=dir").spec == "hf:/odd=dir"  # a path with '=' is not a name
    for bad, msg in (("x=", "names no backend"), ("x=local,top_k=3", "unknown option"),
                     ("x=local,temperature=hot", "not a number")):
        with pytest.raises(ConfigError, match=msg):
            parse_policy(bad)


def test_report_names_each_models_temperature_where_they_differ():
    from rlaif.report.eval_page import eval_markdown

    result = {"suite": "s", "policy": "hot", "baseline": "base", "splits": {}, "notes": [],
              "generation": {"samples": 2, "max_tokens": 64, "temperature": 0.7},
              "models": {"hot": {"temperature": 1.2}, "base": {"temperature": None}}}
    assert "temperature hot 1.2, base 0.7;" in eval_markdown(result)
    result["models"]["hot"]["temperature"] = None
    assert "temperature 0.7;" in eval_markdown(result)
