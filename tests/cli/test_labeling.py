"""`rlaif generate`, `label`, `synth` on a few prompts, as a new user tries the loop (issue 23, items 9 and 10):
`--limit`/`--offset` with `rlaif eval`'s meaning, and the built-in prompt sets accepted by every command that
takes prompts. Real HTTP to tests/support/fakeserver.py; the rule judge needs no model."""
from __future__ import annotations

import json
from pathlib import Path

from fakeserver import FakeServer

from rlaif.catalog import prompt_set
from rlaif.records import read_prompts, read_responses
from tests.support.cli_helpers import rlaif_inproc


def _ids(path: Path) -> list[str]:
    return list(dict.fromkeys(r.prompt_id for r in read_responses(path)))


def test_generate_reads_only_the_prompts_asked_for(tmp_path):
    every = [p.prompt_id for p in read_prompts(prompt_set("demo"))]
    with FakeServer() as srv:
        r = rlaif_inproc("generate", "demo", "--policy", "openai:m", "--base-url", srv.openai_url, "-n", "2",
                         "--limit", "3", "--offset", "2", "-o", tmp_path / "r.jsonl")
        assert r.code == 0, r.stderr
        assert srv.count == 6  # 3 prompts x 2 samples: not the 20 of the set
    assert sorted(_ids(tmp_path / "r.jsonl")) == sorted(every[2:5])
    # --limit alone: the first N, as `rlaif eval --limit`
    with FakeServer() as srv:
        assert rlaif_inproc("generate", "demo", "--policy", "openai:m", "--base-url", srv.openai_url, "--limit", "1",
                            "-o", tmp_path / "one.jsonl").code == 0
    assert _ids(tmp_path / "one.jsonl") == every[:1]


def _responses(path: Path, ids: list[str]) -> Path:
    rows = [{"prompt_id": i, "prompt": f"q {i}", "policy": pol, "sample": 0, "response": text}
            for i in ids for pol, text in (("a", "all lowercase words here"), ("b", "Some Capitals Here"))]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_label_takes_a_built_in_prompt_set_and_a_limit(tmp_path):
    """`rlaif label --prompts ifeval_id` failed as "no such file" while `generate ifeval_id` worked."""
    ids = [p.prompt_id for p in read_prompts(prompt_set("ifeval_id"))][:4]
    responses = _responses(tmp_path / "responses.jsonl", ids)
    r = rlaif_inproc("label", responses, "-j", "rule", "--prompts", "ifeval_id", "--offset", "1", "--limit", "2",
                     "-o", tmp_path / "l")
    assert r.code == 0, r.stderr
    labels = [json.loads(line) for line in (tmp_path / "l" / "labels.jsonl").read_text().splitlines()]
    assert sorted({x["prompt_id"] for x in labels}) == sorted(ids[1:3])
    by_path = rlaif_inproc("label", responses, "-j", "rule", "--prompts", prompt_set("ifeval_id"), "--offset", "1",
                           "--limit", "2", "-o", tmp_path / "l2")
    assert by_path.code == 0, by_path.stderr
    assert (tmp_path / "l2" / "labels.jsonl").read_text() == (tmp_path / "l" / "labels.jsonl").read_text()


def test_every_prompts_parameter_takes_the_built_in_names_and_lists_them():
    """One resolver: each PROMPTS / --prompts uses the same check and says the names in its help."""
    import typer.main

    from rlaif.catalog import prompt_set_names
    from rlaif.cli import app
    from rlaif.cli import paths as cli_paths

    names = prompt_set_names()
    assert {"demo", "ifeval_id", "ifeval_ood", "assistant"} <= set(names) and "probes_v1" not in names
    root = typer.main.get_command(app)
    found = []
    for name, cmd in root.commands.items():
        for p in getattr(cmd, "params", []):
            if p.name == "prompts":
                found.append(name)
                assert getattr(p.callback, "__wrapped__", p.callback) is cli_paths.prompt_set, name
                assert all(n in p.help for n in names), (name, p.help)
    assert sorted(found) == ["generate", "label", "synth", "train", "winrate"]


def test_an_unknown_prompt_set_names_the_option_and_the_choices(tmp_path):
    r = rlaif_inproc("label", _responses(tmp_path / "r.jsonl", ["x"]), "-j", "rule", "--prompts", "ifeval",
                     "-o", tmp_path / "l")
    assert r.code == 2 and "Traceback" not in r.stderr
    assert "--prompts 'ifeval': no such file, and no built-in prompt set of that name. Fix: pass a prompt JSONL " \
           "file, or one of: assistant, demo, ifeval_id, ifeval_ood" in r.stderr
    assert not (tmp_path / "l").exists()


def test_synth_limit_and_offset(tmp_path):
    every = [p.prompt_id for p in read_prompts(prompt_set("demo"))]
    with FakeServer() as srv:
        r = rlaif_inproc("synth", "demo", "--policy", "openai:a", "--policy", "openai:b", "-j", "rule",
                         "--base-url", srv.openai_url, "--offset", "5", "--limit", "2", "-o", tmp_path / "s")
        assert r.code == 0, r.stderr
        assert srv.count == 4  # 2 prompts x 2 policies
    assert sorted(_ids(tmp_path / "s" / "responses.jsonl")) == sorted(every[5:7])


def test_generate_precision_reaches_local_models_and_is_refused_elsewhere(tmp_path, tiny_model_dir):
    out = tmp_path / "bf16.jsonl"
    r = rlaif_inproc("generate", "demo", "--policy", f"hf:{tiny_model_dir}", "--limit", "2", "--max-tokens", "4",
                     "--precision", "bf16", "-o", out)
    assert r.code == 0, r.stderr
    assert len(read_responses(out)) == 2
    from rlaif.calls.cache import cache_info

    assert [m.model.endswith("+bf16") for m in cache_info().models] == [True]  # cached apart from fp32 answers
    bad = rlaif_inproc("generate", "demo", "--policy", "openai:m", "--precision", "bf16", "-o", tmp_path / "x.jsonl")
    assert bad.code == 2 and "--precision applies to hf: and local models, not 'openai:m'" in bad.stderr
    assert "Traceback" not in bad.stderr and not (tmp_path / "x.jsonl").exists()
    typo = rlaif_inproc("eval", "ifeval", "--policy", "local", "--precision", "fp16", "-o", tmp_path / "ev")
    assert typo.code == 2 and "--precision 'fp16' is not one of auto, fp32, bf16" in typo.stderr
