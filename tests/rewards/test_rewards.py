"""`--reward` specs -> one reward function: each kind on hand-computed numbers, loopback servers for the
judges (OpenAI-compatible) and for OpenRLHF's /get_reward, weights, bad specs, and failures as None + why."""
from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import reward_helpers
from fakeserver import FakeServer, Fault

from rlaif.errors import BackendError, ConfigError
from rlaif.rewards import build_reward_fn, parse_reward_spec
from rlaif.scoring import RewardBatch, RewardResult

KEY = "sk-test-reward-key-0123456789"


def batch(responses, metadata=None, prompts=None) -> RewardBatch:
    n = len(responses)
    prompts = prompts or [[{"role": "user", "content": f"Tell me about rivers, take {i}."}] for i in range(n)]
    metadata = metadata or [{"prompt_id": f"p{i}"} for i in range(n)]
    return RewardBatch(prompts=prompts, responses=list(responses), metadata=metadata)


# ---- specs ------------------------------------------------------------------------------------------

def test_specs_parse_with_weights_and_names():
    cases = {"rule": ("rule", "share", 1.0, "rule"), "rule:all@2": ("rule", "all", 2.0, "rule:all"),
             "rm:runs/rm@0.5": ("rm", "runs/rm", 0.5, "rm:runs/rm"),
             "judge:rubric@-1e-1": ("judge", "rubric", -0.1, "judge:rubric"),
             "pairwise:pairwise": ("pairwise", "pairwise", 1.0, "pairwise:pairwise"),
             "http://127.0.0.1:5000/get_reward@3": ("http", "http://127.0.0.1:5000/get_reward", 3.0,
                                                    "http://127.0.0.1:5000/get_reward"),
             "https://u:secret@rm.example/get_reward": ("http", "https://u:secret@rm.example/get_reward", 1.0,
                                                        "https://***@rm.example/get_reward"),
             "python:pkg.mod:fn@0": ("python", "pkg.mod:fn", 0.0, "python:pkg.mod:fn")}
    for spec, (kind, arg, weight, name) in cases.items():
        src = parse_reward_spec(spec)
        assert (src.kind, src.arg, src.weight, src.name) == (kind, arg, weight, name), spec


@pytest.mark.parametrize("spec, says", [
    ("bleu", "unknown reward kind 'bleu'"), ("rule:any", "unknown rule mode 'any'"), ("rm", "needs an argument"),
    ("judge:", "needs an argument"), ("python:nocolon", "is not MODULE:FUNCTION"),
    ("rule@heavy", "the weight 'heavy' is not a number"), ("", "empty reward spec"),
    ("http:///get_reward", "names no host"), ("http", "unknown reward kind 'http'")])
def test_bad_specs_name_the_spec_and_how_to_fix_it(spec, says):
    with pytest.raises(ConfigError) as e:
        parse_reward_spec(spec)
    assert f"--reward '{spec}'" in str(e.value) and says in str(e.value) and "Fix:" in str(e.value)
    if "kind" in says or "argument" in says:
        assert "rule, rule:all, rm:PATH, judge:NAME, pairwise:NAME, group:NAME[,pairs=M], http://" in str(e.value)


def test_bad_combinations_and_unloadable_sources_are_config_errors(tmp_path):
    cases = [([], "no reward given"), (["rule", "rule@2"], "the reward rule is given twice"),
             (["rule@0"], "every --reward has weight 0"),
             (["judge:no-such-judge"], "--reward 'judge:no-such-judge'"),
             (["judge:pairwise"], "is pairwise. Fix: use pairwise:pairwise"),
             (["pairwise:rubric"], "is pointwise, not pairwise"),
             ([f"rm:{tmp_path}"], "holds no saved model"),
             (["python:no_such_module_xyz:f"], "cannot import module 'no_such_module_xyz'"),
             (["python:reward_helpers:missing"], "has no function 'missing'"),
             (["python:reward_helpers:NOT_A_FUNCTION"], "has no function 'NOT_A_FUNCTION'")]
    for specs, says in cases:
        with pytest.raises(ConfigError, match=re.escape(says)):
            build_reward_fn(specs)
    with pytest.raises(ConfigError, match="apply to judge: and pairwise: rewards"):
        build_reward_fn(["rule"], base_urls=["http://127.0.0.1:1/v1"])


# ---- rule ---------------------------------------------------------------------------------------------

CONSTRAINTS = [{"family": "casing", "type": "lowercase"},
               {"family": "keywords", "type": "include", "words": ["river"]},
               {"family": "length", "type": "words", "n": 5, "relation": "at most"}]


def test_rule_gives_the_share_of_constraints_met_and_rule_all_gives_all_or_nothing():
    responses = ["the river is calm", "The river flows", "Stones lie everywhere in the Valley", "", "any text",
                 "the river"]
    meta = [{"constraints": CONSTRAINTS}] * 4 + [{"prompt_id": "free"},
                                                 {"constraints": [{"family": "casing", "type": "sideways"}]}]
    with build_reward_fn(["rule", "rule:all@0"]) as fn:
        res = fn(batch(responses, meta))
    assert isinstance(res, RewardResult)
    # by hand: 3/3; capital T fails lowercase -> 2/3; capitals, no 'river', 6 words -> 0; empty fails all
    assert res.by_source["rule"][:4] == [1.0, pytest.approx(2 / 3), 0.0, 0.0]
    assert res.by_source["rule:all"][:4] == [1.0, 0.0, 0.0, 0.0]
    assert res.rewards[:4] == res.by_source["rule"][:4]  # rule:all has weight 0: reported, not summed
    assert res.rewards[4] is None and "carries no constraints" in res.errors[4]
    assert res.rewards[5] is None and "constraint check failed" in res.errors[5] and "casing/sideways" in res.errors[5]
    assert res.errors[:4] == [None] * 4
    with build_reward_fn(["judge:rule"]) as fn:  # the catalog's rule judge: the same checker via the judge code
        assert fn(batch(responses, meta)).rewards[:5] == res.rewards[:4] + [None]


# ---- python function, weights -----------------------------------------------------------------------------

def test_python_function_is_called_the_trl_way_and_weights_sum():
    reward_helpers.SEEN.clear()
    responses = ["OK! the river is calm", "The river flows", "   "]
    meta = [{"constraints": CONSTRAINTS, "prompt_id": f"p{i}", "prompt": f"Tell me about rivers, take {i}."}
            for i in range(3)]
    b = batch(responses, meta)
    with build_reward_fn(["rule@2", "python:reward_helpers:marker@-0.5"]) as fn:
        res = fn(b)
    seen, = reward_helpers.SEEN
    # TRL's keyword arguments: the prompt file's prompts (strings here), completions, and each field as a list
    assert seen == {"prompts": [m["prompt"] for m in meta], "completions": responses,
                    "constraints": [CONSTRAINTS] * 3, "prompt_id": ["p0", "p1", "p2"]}
    assert res.by_source == {"rule": [pytest.approx(2 / 3), pytest.approx(2 / 3), 0.0],
                             "python:reward_helpers:marker": [1.0, 0.0, None]}
    assert res.rewards[0] == pytest.approx(2 * 2 / 3 - 0.5) and res.rewards[1] == pytest.approx(4 / 3)
    # one source with a non-zero weight gave None: the item is None, never a silent 0
    assert res.rewards[2] is None and res.errors[2].startswith("python:reward_helpers:marker: ")
    assert res.errors[:2] == [None, None]


def test_python_function_async_conversational_ids_and_named_fields_only():
    reward_helpers.SEEN.clear()
    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Rivers?"}]
    meta = [{"prompt": chat, "prompt_id": "p0", "constraints": [{"n": 2}]},
            {"prompt": chat, "prompt_id": "p1", "constraints": None}]
    b = RewardBatch([chat, chat], ["OK! wide river", "no"], meta, completion_ids=[[5, 6, 2], [7, 2]])
    with build_reward_fn(["python:reward_helpers:marker_async"]) as fn:
        assert fn(b).rewards == [1.0, 0.0]  # an async def, awaited
    seen, = reward_helpers.SEEN
    # message-list prompts: TRL's conversational format, completions as assistant messages; the sampled ids
    assert seen["prompts"] == [chat, chat] and seen["completion_ids"] == [[5, 6, 2], [7, 2]]
    assert seen["completions"] == [[{"role": "assistant", "content": "OK! wide river"}],
                                   [{"role": "assistant", "content": "no"}]]
    with build_reward_fn(["python:reward_helpers:constrained_length"]) as fn:  # no **kwargs: its two names only
        res = fn(RewardBatch([chat, chat], ["a b c", "x"], meta))
    assert res.rewards == [1.5, None] and "None" in res.errors[1]


def test_the_old_python_convention_is_refused_with_how_to_move():
    with pytest.raises(ConfigError) as e:
        build_reward_fn(["python:reward_helpers:old_convention"])
    text = str(e.value)
    assert "--reward 'python:reward_helpers:old_convention'" in text and "(prompts, responses, metadata)" in text
    assert "Fix: write def FUNCTION(prompts, completions, **kwargs)" in text


def test_python_function_failures_are_none_with_the_reason():
    b = batch(["a", "b", "c"])
    with build_reward_fn(["python:reward_helpers:broken"]) as fn:
        res = fn(b)
    assert res.rewards == [None] * 3 and all("raised RuntimeError: the reward service is down" in e for e in res.errors)
    with build_reward_fn(["python:reward_helpers:too_few"]) as fn:
        res = fn(b)
    assert res.rewards == [None] * 3 and "returned 1 rewards for 3 items" in res.errors[0]
    with build_reward_fn(["python:reward_helpers:odd_values"]) as fn:
        res = fn(b)
    assert res.rewards == [None, None, 2.0]
    assert "not a finite number" in res.errors[0] and "not a number: 'high'" in res.errors[1] and res.errors[2] is None
    with pytest.raises(ValueError, match="one prompt, response and metadata per item"):
        RewardBatch(prompts=b.prompts, responses=b.responses, metadata=b.metadata[:2])


# ---- rm: a reward model -------------------------------------------------------------------------------------

def test_rm_scores_equal_the_reward_scorer_in_any_batch_order(tiny_rm_dir):
    from rlaif.train.reward_model import RewardScorer

    responses = ["OK! river stone", "cloud", "a much longer answer about green windows and paper", "north"]
    b = batch(responses)
    with build_reward_fn([f"rm:{tiny_rm_dir}"], device="cpu", cache=False) as fn:
        res = fn(b)
        again = fn(batch(responses[::-1], prompts=b.prompts[::-1]))
    want = RewardScorer(tiny_rm_dir, device="cpu", batch_size=1).score(b.prompts, responses)
    assert res.rewards == pytest.approx(want, abs=1e-5) and res.errors == [None] * 4
    assert again.rewards == pytest.approx(want[::-1], abs=1e-5)
    assert len(set(res.rewards)) == 4  # a real model, not a constant


def test_rm_scores_are_cached_by_weights_and_reread_by_another_process(tiny_rm_dir, tmp_path):
    """Each score is a call-cache row: a repeat costs no forward, in this process or a later one; other weights
    (another fingerprint) are a miss."""
    import shutil
    import subprocess
    import sys

    responses = ["OK! river stone", "cloud", "north"]
    with build_reward_fn([f"rm:{tiny_rm_dir}"], device="cpu") as fn:
        first = fn(batch(responses))
        again = fn(batch([*responses, "a new one"]))
        st = fn.scorers[0].stats
        assert (st.calls, st.cache_hits) == (4, 3)

        def out_of_memory(prompts, responses):
            raise RuntimeError("out of memory")

        fn.scorers[0].scorer.score = out_of_memory  # the model fails: the cached items are still answered
        broken = fn(batch([*responses, "never seen"]))
        assert broken.rewards[:3] == first.rewards and broken.rewards[3] is None
        assert broken.errors[:3] == [None] * 3 and "failed: RuntimeError: out of memory" in broken.errors[3]
    assert again.rewards[:3] == first.rewards and again.errors == [None] * 4
    b = batch(responses)
    script = ("import json, sys\nfrom rlaif.rewards import build_reward_fn\n"
              "from rlaif.scoring import RewardBatch\n"
              "prompts, responses, path = json.loads(sys.argv[1])\n"
              "fn = build_reward_fn([f'rm:{path}'], device='cpu')\n"
              "r = fn(RewardBatch(prompts, responses, [{}] * len(responses)))\n"
              "st = fn.scorers[0].stats; fn.close(); print(json.dumps([r.rewards, st.calls, st.cache_hits]))")
    out = subprocess.run([sys.executable, "-c", script, json.dumps([b.prompts, responses, str(tiny_rm_dir)])],
                         capture_output=True, text=True, check=True)
    rewards, calls, hits = json.loads(out.stdout.strip().splitlines()[-1])
    assert rewards == first.rewards and (calls, hits) == (0, 3)
    other = tmp_path / "rm-copy"
    shutil.copytree(tiny_rm_dir, other)
    (other / "config.json").write_text((other / "config.json").read_text() + " ")  # other bytes: other weights
    with build_reward_fn([f"rm:{other}"], device="cpu") as fn:
        fn(batch(responses))
        assert (fn.scorers[0].stats.calls, fn.scorers[0].stats.cache_hits) == (3, 0)


def _tiny_rm(folder, tok, seed: int) -> None:
    """A tiny reward model saved into `folder` (replacing what is there), as `rlaif train rm` saves one."""
    import torch
    from transformers import LlamaConfig, LlamaForSequenceClassification

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=512, num_labels=1,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    LlamaForSequenceClassification(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)


def test_a_causal_lm_folder_is_refused_as_a_reward_model(tiny_model_dir):
    """As met: a causal LM's folder loaded with a random score head, scored differently on every load, exit 0."""
    with pytest.raises(ConfigError) as e:
        build_reward_fn([f"rm:{tiny_model_dir}"], device="cpu")
    msg = str(e.value)
    assert msg.startswith(f"--reward 'rm:{tiny_model_dir}': {tiny_model_dir} holds no trained reward model: the "
                          "checkpoint lacks score.weight")
    assert "Fix: train a reward model on it, `rlaif train rm --data prefs.jsonl --model" in msg


def test_a_model_retrained_into_the_same_folder_is_scored_anew_not_from_the_cache(tmp_path, smol_tokenizer):
    """As met: the cache keyed a reward model by its folder (and file sizes and times), so a model retrained in
    place, same architecture and sizes, times kept (`cp -p`, `rsync -t`, a restored backup), got the old scores."""
    import os

    from rlaif.train.reward_model import RewardScorer

    folder = tmp_path / "rm"
    responses = ["OK! river stone", "cloud", "north"]
    _tiny_rm(folder, smol_tokenizer, seed=1)
    with build_reward_fn([f"rm:{folder}"], device="cpu") as fn:
        old = fn(batch(responses)).rewards
    times = {f.name: (f.stat().st_atime_ns, f.stat().st_mtime_ns) for f in folder.iterdir()}
    sizes = {f.name: f.stat().st_size for f in folder.iterdir()}
    _tiny_rm(folder, smol_tokenizer, seed=2)  # retrained into the same folder
    for f in folder.iterdir():
        os.utime(f, ns=times[f.name])
    assert {f.name: f.stat().st_size for f in folder.iterdir()} == sizes  # only the bytes differ
    with build_reward_fn([f"rm:{folder}"], device="cpu") as fn:
        new = fn(batch(responses)).rewards
        st = fn.scorers[0].stats
    assert (st.calls, st.cache_hits) == (3, 0)
    want = RewardScorer(folder, device="cpu").score(batch(responses).prompts, responses)
    assert new == pytest.approx(want, abs=1e-5) and new != pytest.approx(old, abs=1e-3)


# ---- judge: a pointwise judge through the call layer ------------------------------------------------------------

def _grade(call):
    answer = call.prompt.split("Answer:\n<<<\n")[1].split("\n>>>")[0]
    if "great" in answer:
        return "Clear and correct.\nRating: [[10]]"
    if "okay" in answer:
        return "Rating: [[4]]"
    if "weird" in answer:
        return "I cannot grade this."
    return "Rating: [[1]]"


@pytest.fixture
def judge_env(monkeypatch):
    monkeypatch.setenv("JUDGE_KEY", KEY)
    return dict(judge_model="openai:judge", api_key_env="JUDGE_KEY")


def test_judge_scores_scaled_by_the_judges_range_and_cached_on_repeat(judge_env):
    responses = ["a great answer", "an okay answer", "a poor answer", "a weird answer"]
    with FakeServer(reply=_grade) as srv, build_reward_fn(["judge:rubric"], base_urls=[srv.openai_url],
                                                          timeout=7.5, **judge_env) as fn:
        assert fn.scorers[0].judge.backend.timeout_s == 7.5
        res = fn(batch(responses))
        assert srv.count == 4
        assert srv.calls[0].headers["authorization"] == f"Bearer {KEY}"
        # rubric declares score_range [1, 10]: (score - 1) / 9
        assert res.rewards[:3] == [1.0, pytest.approx(3 / 9), 0.0]
        assert res.rewards[3] is None and "no grade found" in res.errors[3]
        assert res.errors[3].startswith("judge:rubric: rubric@v1:openai:judge")
        again = fn(batch(responses))
        assert srv.count == 4  # every call answered from the cache: no new server calls
        assert again.rewards[:3] == res.rewards[:3]
        assert fn.stats()["judge:rubric"].cache_hits == 4 and fn.stats()["judge:rubric"].calls == 4


def test_judge_call_failures_are_none_and_a_bad_key_stops_without_showing_it(judge_env):
    with FakeServer(reply=_grade) as srv, build_reward_fn(["judge:rubric"], base_urls=[srv.openai_url],
                                                          **judge_env) as fn:
        srv.fail_next(Fault.http(400, "the request was malformed"))
        res = fn(batch(["a great answer", "a poor answer"]))
        assert res.rewards.count(None) == 1  # the one call that failed (either item: calls run concurrently)
        i = res.rewards.index(None)
        assert res.rewards[1 - i] == [1.0, 0.0][1 - i]
        assert "call failed" in res.errors[i] and "malformed" in res.errors[i]
        assert fn(batch(["a great answer", "a poor answer"])).rewards == [1.0, 0.0]  # a failed call is not cached
        srv.fail_next(Fault.http(401, f"Incorrect API key provided: {KEY}"))
        with pytest.raises(BackendError) as e:
            fn(batch(["a fresh answer"]))
        assert KEY not in str(e.value) and "[redacted]" in str(e.value)


# ---- pairwise: against the reference, both orders ---------------------------------------------------------------

_SHOWN = re.compile(r"Answer A:\n<<<\n(.*?)\n>>>\n\nAnswer B:\n<<<\n(.*?)\n>>>", re.S)


def _prefers_good(call):
    a, b = _SHOWN.search(call.prompt).groups()
    if "garbled" in a + b and a.startswith("garbled"):
        return "no verdict here"  # unreadable in one order only
    return "[[A]]" if "good" in a and "good" not in b else "[[B]]" if "good" in b and "good" not in a else "[[C]]"


def test_pairwise_asks_both_orders_and_gives_p_win(judge_env):
    responses = ["a good answer", "a plain answer", "a good one too", "a plain answer", "garbled text"]
    refs = ["a plain reference", "a good reference", "a good reference", None, "a plain reference"]
    meta = [{"prompt_id": f"p{i}", **({"reference": r} if r else {})} for i, r in enumerate(refs)]
    with FakeServer(reply=_prefers_good) as srv, build_reward_fn(["pairwise:pairwise"], base_urls=[srv.openai_url],
                                                                 **judge_env) as fn:
        res = fn(batch(responses, meta))
        shown = sorted(_SHOWN.search(c.prompt).groups() for c in srv.calls)
    assert srv.count == 8  # 4 items with a reference x 2 orders
    for i in (0, 1, 2, 4):
        assert sorted([(responses[i], refs[i]), (refs[i], responses[i])]) == [s for s in shown if responses[i] in s]
    assert res.rewards[:3] == [1.0, 0.0, 0.5]  # wins both orders; loses both; a tie is 0.5
    assert res.rewards[3] is None and "no reference answer" in res.errors[3]
    assert res.rewards[4] is None and "order" in res.errors[4] and "pairwise@v1:openai:judge" in res.errors[4]


def test_a_position_biased_pairwise_judge_gives_one_half(judge_env):
    responses = ["a good answer", "a plain answer"]
    meta = [{"reference": "a plain reference"}, {"reference": "a good reference"}]
    with FakeServer(reply=lambda call: "[[A]]") as srv, build_reward_fn(
            ["pairwise:pairwise"], base_urls=[srv.openai_url], **judge_env) as fn:
        res = fn(batch(responses, meta))
    assert srv.count == 4 and res.rewards == [0.5, 0.5]


# ---- http: OpenRLHF's /get_reward ---------------------------------------------------------------------------------

class RewardServer:
    """A loopback /get_reward server: reward = number of 'good' in the query's response part."""

    def __init__(self, answer=None):
        self.bodies: list[dict] = []
        self.answer = answer  # body -> (status, object or bytes) to override the default
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                owner.bodies.append({"path": self.path, "content-type": self.headers["content-type"], **body})
                status, out = owner.answer(body) if owner.answer else (200, owner.rewards(body))
                data = out if isinstance(out, bytes) else json.dumps(out).encode()
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/get_reward"

    @staticmethod
    def rewards(body):
        r = [float(q.split("\n\n")[-1].count("good")) for q in body["query"]]
        return {"rewards": r, "scores": r, "extra_logs": {"n": [len(r)]}}

    def __enter__(self):
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_http_sends_openrlhf_requests_in_batches(smol_tokenizer):
    responses = ["good good", "good", "bad", "good bad good good", "meh"]
    meta = [{"label": "gold 0"}, {"reference": "ref 1"}, {}, {"label": "gold 3", "reference": "ignored"}, {}]
    b = batch(responses, meta)
    with RewardServer() as srv:
        with build_reward_fn([srv.url], tokenizer=smol_tokenizer, http_batch_size=2, concurrency=1) as fn:
            res = fn(b)
        bodies = srv.bodies
    assert [len(x["query"]) for x in bodies] == [2, 2, 1]  # many items per request, batch_size at most
    assert all(x["path"] == "/get_reward" and x["content-type"] == "application/json" for x in bodies)
    assert all(set(x) - {"path", "content-type"} == {"query", "prompts", "labels"} for x in bodies)
    prompts = [smol_tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True) for p in b.prompts]
    assert [p for x in bodies for p in x["prompts"]] == prompts
    assert [q for x in bodies for q in x["query"]] == [p + r for p, r in zip(prompts, responses, strict=True)]
    assert [v for x in bodies for v in x["labels"]] == ["gold 0", "ref 1", None, "gold 3", None]
    assert res.rewards == [2.0, 1.0, 0.0, 3.0, 0.0] and res.errors == [None] * 5


def test_http_without_a_tokenizer_sends_the_plain_prompt():
    with RewardServer() as srv, build_reward_fn([srv.url]) as fn:
        res = fn(batch(["good"], prompts=[[{"role": "user", "content": "Hi there"}]]))
        assert srv.bodies[0]["query"] == ["Hi there\n\ngood"] and srv.bodies[0]["prompts"] == ["Hi there\n\n"]
    assert res.rewards == [1.0]


def test_http_retries_transient_errors_and_reports_the_rest_per_batch():
    state = {"n": 0}

    def flaky(body):
        state["n"] += 1
        return (503, {"error": "warming up"}) if state["n"] == 1 else (200, RewardServer.rewards(body))

    with RewardServer(flaky) as srv, build_reward_fn([srv.url], http_backoff_s=0.01) as fn:
        assert fn(batch(["good", "x"])).rewards == [1.0, 0.0] and len(srv.bodies) == 2

    answers = {"400": (400, {"detail": "bad query"}), "short": (200, {"rewards": [1.0]}),
               "nokey": (200, {"scores": [1, 2]}), "html": (200, b"<html>oops</html>"),
               "null": (200, {"rewards": [None, 0.5]}), "list": (200, [0.25, 0.5]),
               "down": (500, {"error": "dead"})}
    says = {"400": "HTTP 400", "short": "returned 1 rewards for 2 items", "nokey": "has no 'rewards'",
            "html": "not JSON", "null": "no reward for this item", "down": "HTTP 500"}
    for case, answer in answers.items():
        with RewardServer(lambda body, a=answer: a) as srv, build_reward_fn([srv.url], http_backoff_s=0.01,
                                                                             http_retries=2) as fn:
            res = fn(batch(["good", "x"]))
        if case == "list":
            assert res.rewards == [0.25, 0.5]
            continue
        if case == "null":
            assert res.rewards == [None, 0.5] and says[case] in res.errors[0]
            continue
        assert res.rewards == [None, None] and all(says[case] in e for e in res.errors), (case, res.errors)
        assert len(srv.bodies) == (3 if case == "down" else 1), case  # only transient errors are retried
    assert "after 3 attempts" in res.errors[0]


def test_http_timeouts_and_refused_connections_are_none_with_the_reason():
    def slow(body):
        time.sleep(1.0)
        return 200, RewardServer.rewards(body)

    with RewardServer(slow) as srv, build_reward_fn([srv.url], timeout=0.2, http_retries=0) as fn:
        res = fn(batch(["good"]))
    assert res.rewards == [None] and "no answer within 0.2s" in res.errors[0]
    with build_reward_fn([srv.url + "@2"], http_retries=1, http_backoff_s=0.01) as fn:  # the server is gone
        res = fn(batch(["good"]))
    assert res.rewards == [None] and "connection failed" in res.errors[0] and "after 2 attempts" in res.errors[0]
