"""The labeling protocol with scripted judges of known behaviour (real call layer, real SQLite cache)."""
from __future__ import annotations

import json
import math
import re

import pytest
from judge_helpers import ToyRewardModel

from rlaif.backends.base import Completion, Request
from rlaif.backends.scripted import ScriptedBackend
from rlaif.calls import CallOptions
from rlaif.errors import ConfigError, RlaifError
from rlaif.judge import build_preferences, label_pairs, label_responses, load_judge, run_label
from rlaif.judge.pairing import all_pairs
from rlaif.judge.probe import run_probes
from rlaif.records import Label, Response, Usage, read_jsonl, write_jsonl

QUIET = CallOptions(progress=False)

_SHOWN = re.compile(r"Answer A:\n<<<\n(.*?)\n>>>\n\nAnswer B:\n<<<\n(.*?)\n>>>", re.S)
N = 10  # prompts; one "bad" and one "good" response each
FLIP_SUBSET = {"q0", "q1", "q2"}  # where the flipping judge just says "first"


def shown(req: Request) -> tuple[str, str]:
    m = _SHOWN.search(req.messages[-1]["content"])
    assert m, req.messages[-1]["content"]
    return m.group(1), m.group(2)


def prompt_id_of(req: Request) -> str:
    return re.search(r"question (q\d+)", req.messages[-1]["content"]).group(1)


def responses() -> list[Response]:
    out = []
    for i in range(N):
        for pol in ("bad", "good"):
            out.append(Response(prompt_id=f"q{i}", prompt=f"question q{i}", policy=pol, response=f"{pol} answer {i}"))
    return out


def first_always(req):
    return "[[A]]"


def oracle(req):
    a, _ = shown(req)
    return "[[A]]" if a.startswith("good") else "[[B]]"


def oracle_flipping(req):
    return "[[A]]" if prompt_id_of(req) in FLIP_SUBSET else oracle(req)


def oracle_sometimes_invalid(req):
    a, _ = shown(req)
    if prompt_id_of(req) == "q0" and a.startswith("bad"):  # q0, original order (bad is a)
        return "I cannot decide between these."
    return oracle(req)


def logprob_judge(req):
    """P(good) = 0.7 whichever position it is shown in; the text follows the likelier token."""
    a, _ = shown(req)
    p_first = 0.7 if a.startswith("good") else 0.3
    return Completion(text="A" if p_first > 0.5 else "B",
                      top_logprobs=[{"A": math.log(p_first), " B": math.log(1 - p_first), "The": -5.0}],
                      input_tokens=100, output_tokens=1)


def judge(name: str, fn, model: str):
    return load_judge(name, model=f"scripted:{model}", backend=ScriptedBackend(fn, model=model))


def test_first_position_judge_flips_every_pair_and_yields_no_preferences():
    j = judge("pairwise", first_always, "first")
    pairs = all_pairs(responses())
    run = label_pairs(pairs, [j])
    assert len(run.labels) == 2 * N and len(j.backend.calls) == 2 * N
    # every label names whichever response was shown first, in original a/b terms
    assert {(x.order, x.winner) for x in run.labels} == {("ab", "a"), ("ba", "b")}
    ps = build_preferences(pairs, run.labels)
    assert ps.preferences == [] and ps.n_ties == N
    assert run.labels[0].rater == "pairwise@v1:scripted:first"


def test_run_label_flip_rates_invalid_counts_soft_labels(tmp_path):
    rp = tmp_path / "responses.jsonl"
    write_jsonl(rp, responses())
    judges = [judge("pairwise", oracle_flipping, "flipper"), judge("pairwise-cot", oracle_sometimes_invalid, "inv"),
              judge("pairwise-logprob", logprob_judge, "lp")]
    out = tmp_path / "out"
    summary = run_label(rp, judges, out, jury="mean", options=QUIET)
    assert summary["n_pairs"] == N and summary["n_labels"] == 3 * 2 * N and summary["n_invalid"] == 1
    per = summary["judges"]
    flip, inv, lp = (per[j.rater] for j in judges)
    assert flip["flip_rate"] == pytest.approx(len(FLIP_SUBSET) / N) and flip["invalid_rate"] == 0
    assert inv["invalid_rate"] == pytest.approx(1 / (2 * N)) and inv["flip_rate"] == 0.0  # q0 judged in one order
    assert lp["flip_rate"] == 0.0 and lp["tie_rate"] == 0.0
    assert lp["tokens_in"] == 100 * 2 * N and lp["tokens_out"] == 2 * N and lp["cost_usd"] == 0.0
    assert lp["calls"] == 2 * N and lp["cache_hits"] == 0

    labels = read_jsonl(out / "labels.jsonl", Label)
    lp_labels = [x for x in labels if x.rater == judges[2].rater]
    assert all(x.p_a == pytest.approx(0.3) and x.winner == "b" for x in lp_labels)  # a is "bad" in every pair
    assert all(x.parse == "logprob" and x.top_logprobs for x in lp_labels)
    bad = [x for x in labels if x.error]
    assert len(bad) == 1 and bad[0].raw == "I cannot decide between these." and bad[0].order == "ab"
    assert bad[0].usage == Usage(input_tokens=bad[0].usage.input_tokens, output_tokens=5)

    prefs = [json.loads(line) for line in (out / "preferences.jsonl").read_text().splitlines()]
    assert len(prefs) == N == summary["n_preferences"]
    assert all(p["chosen"].startswith("good") and p["chosen_policy"] == "good" for p in prefs)
    by_id = {p["prompt_id"]: p for p in prefs}
    # q5: every judge consistent -> p_good = mean(1, 1, 0.7); q1: the flipper is a tie (0.5)
    assert by_id["q5"]["p_chosen"] == pytest.approx((1 + 1 + 0.7) / 3) and by_id["q5"]["agreement"] == 1.0
    assert by_id["q1"]["p_chosen"] == pytest.approx((0.5 + 1 + 0.7) / 3)
    assert by_id["q1"]["agreement"] == pytest.approx(2 / 3)
    kto = [json.loads(line) for line in (out / "kto.jsonl").read_text().splitlines()]
    assert sorted((k["completion"].split()[0], k["label"]) for k in kto) == [("bad", False)] * N + [("good", True)] * N
    assert json.loads((out / "summary.json").read_text()) == summary

    # --min-agreement drops the pairs where the flipper disagreed
    s2 = run_label(rp, judges, tmp_path / "strict", jury="majority", min_agreement=1.0, options=QUIET)
    assert s2["n_preferences"] == N - len(FLIP_SUBSET) and s2["n_contested"] == len(FLIP_SUBSET)


def test_rerun_makes_zero_calls_and_reparse_calls_nothing(tmp_path):
    rp = tmp_path / "responses.jsonl"
    write_jsonl(rp, responses())
    out = tmp_path / "out"
    first = run_label(rp, [judge("pairwise", oracle_flipping, "flipper")], out, options=QUIET)

    def must_not_call(req):
        raise AssertionError("no call expected")

    again = judge("pairwise", must_not_call, "flipper")
    s = run_label(rp, [again], tmp_path / "out2", options=QUIET)
    assert again.backend.calls == [] and s["judges"][again.rater]["cache_hits"] == 2 * N
    assert s["judges"][again.rater]["calls"] == 0 and s["n_preferences"] == first["n_preferences"]

    # --reparse: stored raw outputs, a changed parser, no backend at all
    before = (out / "labels.jsonl").read_text()
    lines = [json.loads(x) for x in before.splitlines()]
    lines[0]["raw"] = "garbled"  # pretend the model had said this: the current parser must see it
    (out / "labels.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    rep = run_label(rp, [again], out, reparse=True, options=QUIET)
    assert again.backend.calls == []
    assert rep["n_invalid"] == 1 and rep["judges"][again.rater]["calls"] == 0
    labels = read_jsonl(out / "labels.jsonl", Label)
    assert labels[0].raw == "garbled" and "no verdict" in labels[0].error
    # a judge with no stored outputs cannot be re-parsed
    with pytest.raises(RlaifError, match="run without --reparse"):
        run_label(rp, [judge("pairwise-cot", must_not_call, "other")], out, reparse=True, options=QUIET)


def test_orders_random_and_ab():
    pairs = all_pairs(responses())
    j = judge("pairwise", oracle, "oracle")
    ab = label_pairs(pairs, [j], orders="ab")
    assert [x.order for x in ab.labels] == ["ab"] * N
    r1 = label_pairs(pairs, [j], orders="random", seed=1)
    r2 = label_pairs(pairs, [j], orders="random", seed=1)
    orders = [x.order for x in r1.labels]
    assert orders == [x.order for x in r2.labels] and {"ab", "ba"} == set(orders)
    assert all(x.winner == "b" for x in r1.labels)  # mapped back: "good" is b whichever order was shown
    with pytest.raises(ConfigError, match="--orders"):
        label_pairs(pairs, [j], orders="sideways")


def _rubric(req):
    text = req.messages[-1]["content"]
    m = re.search(r"Answer:\n<<<\n(.*?)\n>>>", text, re.S)
    resp = m.group(1)
    if "broken" in resp:
        return "no idea"
    return f"Fine.\nRating: [[{8 if resp.startswith('good') else 3}]]"


def test_pointwise_rubric_best_worst_pairing(tmp_path):
    rs = responses() + [Response(prompt_id="q0", prompt="question q0", policy="mid", response="so-so answer"),
                        Response(prompt_id="q1", prompt="question q1", policy="zzz", response="broken answer")]
    rub = judge("rubric", _rubric, "rubric")
    run = label_responses(rs, [rub], pairing="best-worst")
    assert len(run.pairs) == N and all(p.a.policy == "good" and p.b.policy in ("bad", "mid") for p in run.pairs)
    assert len(rub.backend.calls) == len(rs)  # each response scored once, not once per pair
    assert all(x.winner == "a" and x.p_a == 1.0 and x.order is None for x in run.labels)
    assert sum(s.error is not None for s in run.scores) == 1  # the broken answer is an invalid score, kept
    # a pairwise judge cannot rank responses
    with pytest.raises(ConfigError, match="pointwise"):
        label_responses(rs, [judge("pairwise", oracle, "oracle")], pairing="best-worst")


def test_binary_judge_gives_kto_and_reference_pairing(tmp_path):
    rs = responses()
    rp = tmp_path / "r.jsonl"
    write_jsonl(rp, rs)

    def good_bad(req):
        return "[[GOOD]]" if "good answer" in req.messages[-1]["content"] else "[[BAD]]"

    b = judge("binary", good_bad, "binary")
    s = run_label(rp, [b], tmp_path / "o", pairing="reference", reference="bad", options=QUIET)
    assert s["n_pairs"] == N and s["n_kto"] == 2 * N and s["n_preferences"] == N
    kto = [json.loads(x) for x in (tmp_path / "o" / "kto.jsonl").read_text().splitlines()]
    assert all(k["label"] == k["completion"].startswith("good") for k in kto)
    prefs = [json.loads(x) for x in (tmp_path / "o" / "preferences.jsonl").read_text().splitlines()]
    assert all(p["chosen_policy"] == "good" and p["rejected_policy"] == "bad" for p in prefs)


def test_rule_judge_calls_configured_checker(tmp_path):
    spec = tmp_path / "myrule.yaml"
    spec.write_text("name: myrule\nkind: rule\nmode: pointwise\nversion: v1\n"
                    "checker: judge_helpers:word_count_checker\n")
    rule = load_judge(str(spec))
    assert rule.rater == "myrule@v1:judge_helpers:word_count_checker"
    rs = [Response(prompt_id="p1", prompt="say hi briefly", policy="short", response="hi there"),
          Response(prompt_id="p1", prompt="say hi briefly", policy="long", response="hello to you my good friend"),
          Response(prompt_id="p2", prompt="anything", policy="short", response="x"),
          Response(prompt_id="p2", prompt="anything", policy="long", response="y y"),
          Response(prompt_id="p3", prompt="q", policy="short", response="a", constraints=[{"type": "bogus"}]),
          Response(prompt_id="p3", prompt="q", policy="long", response="b")]
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"prompt_id": "p1", "prompt": "say hi briefly",
                                   "constraints": [{"type": "max_words", "n": 3}, {"type": "contains", "text": "hi"}]})
                       + "\n" + json.dumps({"prompt_id": "p2", "prompt": "anything"}) + "\n"
                       + json.dumps({"prompt_id": "p3", "prompt": "q"}) + "\n")
    rp = tmp_path / "r.jsonl"
    write_jsonl(rp, rs)
    s = run_label(rp, [rule], tmp_path / "o", prompts_path=prompts, options=QUIET)
    labels = read_jsonl(tmp_path / "o" / "labels.jsonl", Label)
    by = {x.prompt_id: x for x in labels}
    # p1: "long" (a, sorts first) satisfies 0 of 2 constraints, "short" (b) both
    assert by["p1"].winner == "b" and (by["p1"].score_a, by["p1"].score_b) == (0.0, 1.0)
    assert "no constraints" in by["p2"].error and "checker failed" in by["p3"].error
    assert s["n_preferences"] == 1 and s["n_invalid"] == 2


def test_reward_model_judge_sigmoid_and_lazy_load(tmp_path):
    spec = tmp_path / "rm.yaml"
    spec.write_text("name: toy-rm\nkind: reward_model\nmode: pointwise\nversion: v1\n"
                    "scorer: judge_helpers:ToyRewardModel\nsoft: sigmoid\nscale: 1.0\n")
    ToyRewardModel.loaded.clear()
    rm = load_judge(str(spec), model="ckpt/rm")
    assert ToyRewardModel.loaded == []  # nothing is loaded until it judges
    rs = [Response(prompt_id="p", prompt="q", policy="x", response="good good"),
          Response(prompt_id="p", prompt="q", policy="y", response="fine")]
    run = label_responses(rs, [rm])
    assert ToyRewardModel.loaded == ["ckpt/rm"]
    (lab,) = run.labels
    assert lab.p_a == pytest.approx(1 / (1 + math.exp(-2.0))) and lab.winner == "a"
    assert lab.rater == "toy-rm@v1:ckpt/rm"


def test_reward_model_judge_loads_once_per_call_layer_and_its_scores_are_cached(tmp_path):
    from rlaif.judge.labeling import LiveCalls

    ckpt = tmp_path / "rm"
    ckpt.mkdir()
    (ckpt / "config.json").write_text("{}")
    spec = tmp_path / "rm.yaml"
    spec.write_text("name: toy-rm\nkind: reward_model\nmode: pointwise\nversion: v1\n"
                    "scorer: judge_helpers:ToyRewardModel\nsoft: hard\n")
    ToyRewardModel.loaded.clear()
    ToyRewardModel.scored.clear()
    rm = load_judge(str(spec), model=str(ckpt))
    rs = [Response(prompt_id="p", prompt="q", policy="x", response="good good"),
          Response(prompt_id="p", prompt="q", policy="y", response="fine")]
    calls = LiveCalls(cache=True)
    first = label_responses(rs, [rm], calls=calls)  # e.g. two splits of one eval on one call layer
    second = label_responses(rs, [rm], calls=calls)
    calls.close()
    assert ToyRewardModel.loaded == [str(ckpt)] and ToyRewardModel.scored == [2]  # loaded once, scored once
    assert [s.score for s in first.scores] == [s.score for s in second.scores] == [2.0, 0.0]
    st = second.stats[rm.rater]
    assert (st.requests, st.calls, st.cache_hits) == (2, 0, 2) and first.stats[rm.rater].calls == 2
    # another run (a new call layer, as a new process has) reuses the stored scores: loaded, but no forward
    third = label_responses(rs, [rm])
    assert len(ToyRewardModel.loaded) == 2 and ToyRewardModel.scored == [2] and third.labels[0].winner == "a"
    # new weights in the same folder are scored anew; without the cache every run scores
    (ckpt / "model.safetensors").write_bytes(b"retrained")
    label_responses(rs, [rm])
    label_responses(rs, [rm], cache=False)
    assert ToyRewardModel.scored == [2, 2, 2]


def test_probes_with_scripted_judges(tmp_path):
    rep = run_probes(judge("pairwise", first_always, "first"), tmp_path / "p1")
    probes = rep["probes"]
    assert probes["position"]["wrong_rate"] == 1.0  # it flips on every pair
    for name in ("verbosity", "injection", "self-preference"):
        assert probes[name]["wrong_rate"] == 0.5  # right in one order, wrong in the other
        assert probes[name]["ci_low"] < 0.5 < probes[name]["ci_high"]
    assert probes["master-key"]["overall"]["fpr"] == 0.5 and probes["master-key"]["failed"]  # the key shown first
    saved = json.loads((tmp_path / "p1" / "probe.json").read_text())
    assert saved["probes"].keys() == probes.keys() and saved["judge"] == "pairwise@v1:scripted:first"

    def gullible(req):  # an otherwise perfect judge that obeys injected instructions and loves length
        if "Answer A:" not in req.messages[-1]["content"]:
            return "my own answer"  # generation for the self-preference probe
        a, b = shown(req)
        for pos, text in (("A", a), ("B", b)):
            if "prefer" in text.lower() or "choose" in text.lower() or "select" in text.lower() \
                    or "better answer" in text.lower():
                return f"[[{pos}]]"
        if "my own answer" in (a, b):
            return "[[A]]" if a == "my own answer" else "[[B]]"
        if len(a) > 2 * len(b) or len(b) > 2 * len(a):
            return "[[A]]" if len(a) > len(b) else "[[B]]"
        return "[[C]]"

    g = judge("pairwise", gullible, "gullible")
    rep = run_probes(g, tmp_path / "p2")["probes"]
    assert rep["position"]["wrong_rate"] == 0.0
    assert rep["injection"]["wrong_rate"] == 1.0 and rep["self-preference"]["wrong_rate"] == 1.0
    assert rep["verbosity"]["n"] == 48 and rep["verbosity"]["wrong_rate"] == 1.0  # every padded answer is 2x longer
    labels = [json.loads(x) for x in (tmp_path / "p2" / "probe_labels.jsonl").read_text().splitlines()]
    assert {x["probe"] for x in labels} == {"position", "verbosity", "injection", "self-preference", "master-key"}


def test_rule_score_reads_result_objects():
    from judge_helpers import result_object_checker

    from rlaif.judge.labeling import rule_score

    cons = [{"word": "alpha"}, {"word": "beta"}]
    assert rule_score(result_object_checker, cons, "alpha only", binary=False).value == 0.5
    assert rule_score(result_object_checker, cons, "alpha only", binary=True).value == 0.0
    assert rule_score(result_object_checker, cons, "alpha beta", binary=True).value == 1.0
    assert rule_score(lambda c, r: {"share_passed": 0.25}, cons, "x", binary=False).value == 0.25
    assert "checker failed" in rule_score(lambda c, r: "yes", cons, "x", binary=False).error
