"""`rlaif serve` as a real uvicorn process on loopback, called over real HTTP (httpx): the OpenRLHF contract,
/v1/score and /v1/compare on a judge behind tests/support/fakeserver.py, the token, each limit, malformed bodies,
many clients at once, upstream faults as per-item errors, and no key or token in any output or the cache."""
from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from fakeserver import FakeServer, Fault
from serve_helpers import KEY, TOKEN, Served, judge_reply

LOWER = [{"family": "casing", "type": "lowercase"}]
THREE_WORDS = [{"family": "length", "type": "words", "n": 3, "relation": "at least"}]


@pytest.fixture(scope="module")
def upstream():
    with FakeServer(reply=judge_reply) as srv:
        yield srv


@pytest.fixture(scope="module")
def svc(upstream, tmp_path_factory):
    """rubric (pointwise) and pairwise judges on the fake server, a token, small limits."""
    args = ["-j", "rubric", "-j", "pairwise", "--judge-model", "openai:judge", "--base-url", upstream.openai_url,
            "--api-key-env", "JUDGE_KEY", "-c", "64", "--max-items", "40", "--max-text-chars", "3000",
            "--max-body-bytes", "100000", "--reward-scorer", "rubric"]
    with Served(args, cache=tmp_path_factory.mktemp("serve") / "cache", env={"JUDGE_KEY": KEY},
                token=TOKEN) as s:
        yield s


def chatml(prompt: str, response: str = "") -> str:
    return (f"<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\n{prompt}<|im_end|>\n"
            f"<|im_start|>assistant\n{response}")


# ---- the OpenRLHF contract -----------------------------------------------------------------------------------

def test_get_reward_answers_openrlhf_requests(svc, upstream):
    prompts = [chatml("Grade me."), chatml("Grade me too.")]
    query = [prompts[0] + "a grade 10 answer<|im_end|>", prompts[1] + "a grade 4 answer<|im_end|>\n"]
    r = svc.post("/get_reward", {"query": query, "prompts": prompts, "labels": ["x", None]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert {"rewards", "scores", "extra_logs"} <= set(body)
    assert body["rewards"] == [1.0, pytest.approx(3 / 9)] == body["scores"]  # rubric 1..10 scaled to 0..1
    assert body["extra_logs"] == {"scored": 2, "unscored": 0}
    shown = [c.prompt for c in upstream.calls[-2:]]
    assert any("a grade 10 answer\n>>>" in p and "Grade me." in p for p in shown)  # end token cut, prompt kept
    # no prompts: cut at the chat template's last assistant header; OpenRLHF's one-sample requests too
    r = svc.post("/get_reward", {"query": [chatml("Grade me.", "a grade 10 answer<|im_end|>")]})
    assert r.json()["rewards"] == [1.0]


def test_get_reward_gives_null_and_the_reason_never_zero(svc):
    r = svc.post("/get_reward", {"query": ["no template here, grade 7", chatml("Q", "ungraded answer")]})
    body = r.json()
    assert r.status_code == 200 and body["rewards"] == [None, None]
    assert "assistant header" in body["errors"][0]
    assert "no grade found" in body["errors"][1] and body["extra_logs"]["unscored"] == 2
    r = svc.post("/get_reward?scorer=rule", {"query": [chatml("Q", "all lowercase here")],
                                             "labels": [json.dumps(LOWER)]})
    assert r.json()["rewards"] == [1.0]  # a label that is a JSON list is the item's constraints
    r = svc.post("/get_reward?scorer=nope", {"query": ["x"]})
    assert r.status_code == 422 and r.json()["error"]["field"] == "scorer"


def test_rlaif_remote_reward_reads_the_service(svc, smol_tokenizer, monkeypatch):
    """rlaif's own `--reward http://.../get_reward` client against the service: same rewards as in-process."""
    from rlaif.rewards import build_reward_fn
    from rlaif.scoring import RewardBatch

    monkeypatch.setenv("RLAIF_SERVE_TOKEN", TOKEN)  # rlaif's client sends it as the bearer token
    prompts = [[{"role": "user", "content": "Write in lowercase."}], [{"role": "user", "content": "Three words?"}]]
    responses = ["all lowercase words", "Two Words"]
    meta = [{"label": json.dumps(LOWER)}, {"label": json.dumps(THREE_WORDS)}]
    batch = RewardBatch(prompts, responses, meta)
    with build_reward_fn([f"{svc.url}/get_reward?scorer=rule"], tokenizer=smol_tokenizer) as fn:
        res = fn(batch)
    with build_reward_fn(["rule"]) as local:
        want = local(RewardBatch(prompts, responses, [{"constraints": LOWER}, {"constraints": THREE_WORDS}]))
    assert res.rewards == want.rewards == [1.0, 0.0]
    with build_reward_fn([f"{svc.url}/get_reward"]) as fn:  # rubric: ungradable -> None with the service's reason
        res = fn(RewardBatch(prompts[:1], ["no grade in it"], [{}]))
    assert res.rewards == [None] and "no grade found" in res.errors[0]


# ---- /v1/score, /v1/compare, /v1/judges ------------------------------------------------------------------------

def test_score_gives_score_raw_and_error_per_item_and_scorer(svc):
    items = [{"prompt": "Answer in lowercase.", "response": "a grade 8 answer", "constraints": LOWER, "id": "x1"},
             {"prompt": [{"role": "user", "content": "Hi"}], "response": "Not Graded"}]
    r = svc.post("/v1/score", {"items": items})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["scorers"] == ["rubric", "rule"]  # rule joins when an item carries constraints
    first, second = body["results"]
    assert first["id"] == "x1" and first["scores"] == {"rubric": pytest.approx(7 / 9), "rule": 1.0}
    assert "Rating: [[8]]" in first["raw"]["rubric"] and first["errors"] == {"rubric": None, "rule": None}
    assert second["scores"] == {"rubric": None, "rule": None}
    assert "no grade found" in second["errors"]["rubric"] and "no constraints" in second["errors"]["rule"]
    only = svc.post("/v1/score", {"items": items[:1], "scorers": ["rule"]}).json()
    assert only["scorers"] == ["rule"] and only["results"][0]["scores"] == {"rule": 1.0}


def test_compare_asks_both_orders_and_maps_them_back(svc, upstream):
    n0 = upstream.count
    items = [{"prompt": "Which?", "response_a": "a good one", "response_b": "a plain one", "id": "p1"},
             {"prompt": "Which?", "response_a": "plain", "response_b": "good stuff"},
             {"prompt": "Which?", "response_a": "biased a", "response_b": "biased b"}]
    r = svc.post("/v1/compare", {"items": items})
    assert r.status_code == 200, r.text
    body = r.json()
    assert upstream.count - n0 == 6 and body["rater"] == "pairwise@v1:openai:judge"
    a_wins, b_wins, biased = body["results"]
    assert a_wins["id"] == "p1" and a_wins["p_a"] == 1.0 and a_wins["winner"] == "a" and a_wins["flipped"] is False
    assert a_wins["orders"]["ab"]["winner"] == a_wins["orders"]["ba"]["winner"] == "a"
    assert a_wins["orders"]["ba"]["raw"] == "[[B]]"  # shown b-first, the judge picked the second: a
    assert b_wins["p_a"] == 0.0 and b_wins["winner"] == "b"
    assert biased["p_a"] == 0.5 and biased["flipped"] is True and biased["winner"] == "tie"


def test_judges_health_and_metrics(svc):
    body = svc.get("/v1/judges").json()
    names = {s["name"]: s for s in body["scorers"]}
    assert set(names) == {"rubric", "pairwise", "rule"} and body["reward"] == "rubric"
    assert names["rubric"]["rater"] == "rubric@v1:openai:judge" and names["pairwise"]["endpoint"] == "/v1/compare"
    assert body["limits"] == {"max_body_bytes": 100000, "max_items": 40, "max_text_chars": 3000}
    assert svc.get("/healthz", token="").json() == {"status": "ok"}  # no token needed for health checks
    text = svc.get("/metrics").text
    for name in ("rlaif_serve_requests_total", "rlaif_serve_request_seconds_bucket", "rlaif_serve_queue_depth",
                 "rlaif_serve_batch_size_bucket", "rlaif_serve_cache_hits", "rlaif_serve_model_calls",
                 "rlaif_serve_backend_errors_total"):
        assert name in text, name


# ---- safety: token, limits, malformed bodies ------------------------------------------------------------------

def test_the_token_is_required_and_compared(svc):
    body = {"items": [{"prompt": "p", "response": "r"}], "scorers": ["rule"]}
    missing = svc.client.post(svc.url + "/v1/score", json=body)
    wrong = svc.post("/v1/score", body, token=TOKEN[:-1] + "x")
    right = svc.post("/v1/score", body)
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert wrong.status_code == 401 and TOKEN not in wrong.text
    assert right.status_code == 200
    assert svc.client.get(svc.url + "/metrics").status_code == 401
    assert "access-control-allow-origin" not in right.headers  # CORS off


@pytest.mark.parametrize("body,status,limit,flag", [
    ({"items": [{"prompt": "p", "response": "r"}] * 41}, 422, "max_items", "--max-items"),
    ({"items": [{"prompt": "p", "response": "r" * 3001}]}, 422, "max_text_chars", "--max-text-chars"),
    ({"query": ["q" * 3001]}, 422, "max_text_chars", "--max-text-chars"),
    ({"items": [{"prompt": "p" * 2999, "response": "r"}] * 40}, 413, "max_body_bytes", "--max-body-bytes"),
])
def test_each_limit_names_itself_and_the_flag_that_raises_it(svc, body, status, limit, flag):
    path = "/get_reward" if "query" in body else "/v1/score"
    r = svc.post(path, body)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["limit"] == limit and flag in err["fix"] and err["code"] == "limit_exceeded"


def test_a_chunked_body_over_the_limit_is_refused_too(svc):
    def chunks():
        for _ in range(30):
            yield b" " * 10_000

    r = svc.client.post(svc.url + "/v1/score", content=chunks(), headers=svc.headers())
    assert r.status_code == 413 and r.json()["error"]["limit"] == "max_body_bytes"


@pytest.mark.parametrize("path,body,status,field", [
    ("/v1/score", b'{"items": [', 400, None),
    ("/v1/score", b"\xff\xfe", 400, None),
    ("/v1/score", {"items": [{"prompt": "p"}]}, 422, "items.0.response"),
    ("/v1/score", {"items": [{"prompt": "p", "response": 3}]}, 422, "items.0.response"),
    ("/v1/score", {"items": [{"prompt": "p", "response": "r", "extra": 1}]}, 422, "items.0.extra"),
    ("/v1/score", {"items": []}, 422, "items"),
    ("/v1/score", {"items": [{"prompt": "p", "response": "r"}], "scorers": ["nope"]}, 422, "scorers"),
    ("/v1/compare", {"items": [{"prompt": "p", "response_a": "a"}]}, 422, "items.0.response_b"),
    ("/v1/compare", {"items": [{"prompt": "p", "response_a": "a", "response_b": "b"}], "judge": "x"}, 422,
     "judge"),
    ("/get_reward", {"prompts": ["p"]}, 422, "query"),
    ("/get_reward", {"query": ["a", "b"], "prompts": ["p"]}, 422, "prompts"),
    ("/get_reward", [1, 2], 422, "body"),
])
def test_malformed_bodies_name_the_field(svc, path, body, status, field):
    r = svc.post(path, body)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["message"]
    if field is not None:
        assert err["field"] == field


def test_a_body_nested_50000_deep_is_a_400_logged_once_never_a_500(svc):  # 49,990: under --max-body-bytes
    """Python's JSON parser recurses: 50,000 levels were a RecursionError and a 500."""
    deep = b'{"query": ' + b"[" * 49_990 + b"]" * 49_990 + b"}"
    just_deep = {"query": ["q"], "labels": [json.loads("[" * 70 + "]" * 70)]}  # parses, but past the limit
    fine = {"query": [chatml("Q", "a")], "labels": [json.loads("[" * 50 + "]" * 50)]}
    as_text = {"query": ["q"], "labels": ["[" * 40_000 + "]" * 40_000]}  # a label string is parsed as JSON too
    cases = ((deep, "/get_reward"), (deep, "/v1/score"), (just_deep, "/get_reward"), (as_text, "/get_reward"))
    for body, path in cases:
        r = svc.post(path, body)
        assert r.status_code == 400, r.text
        assert r.json()["error"]["code"] == "too_deep" and "64 levels deep" in r.json()["error"]["message"]
    assert svc.post("/get_reward", fine).status_code == 200
    log = svc.stderr
    assert len(re.findall(r"(nests|nested) more than 64 levels deep", log)) == 4  # one line per refused request
    assert "Traceback" not in log and "RecursionError" not in log


# ---- load: many clients at once --------------------------------------------------------------------------------

def test_many_clients_at_once_each_get_their_own_answers(svc, upstream):
    """64 clients x 4 requests of 2 items: every answer is its request's (the grade is in the response), none
    lost or repeated; identical items in flight are one model call; requests share batches."""
    import httpx

    n0 = upstream.count

    def one(i: int) -> tuple[int, list]:
        grades = [1 + i % 10, 1 + (i * 7) % 10]
        items = [{"prompt": f"load {i // 2}", "response": f"answer grade {g} for {i // 2}", "id": f"{i}-{k}"}
                 for k, g in enumerate(grades)]
        with httpx.Client(timeout=60, headers=svc.headers()) as c:
            r = c.post(svc.url + "/v1/score", json={"items": items, "scorers": ["rubric"]})
        assert r.status_code == 200, r.text
        return i, [(x["id"], x["scores"]["rubric"]) for x in r.json()["results"]], grades

    with ThreadPoolExecutor(64) as pool:
        results = list(pool.map(one, range(256)))
    for i, got, grades in results:
        assert got == [(f"{i}-{k}", pytest.approx((g - 1) / 9)) for k, g in enumerate(grades)]
    distinct = {(i // 2, g) for i, _, grades in results for g in grades}
    assert upstream.count - n0 == len(distinct)  # each distinct item judged once (duplicates shared or cached)
    sizes = [line for line in svc.get("/metrics").text.splitlines()
             if line.startswith('rlaif_serve_batch_size_count{scorer="rubric"}')]
    batches = float(sizes[0].split()[-1])
    assert batches < 256  # coalesced: fewer batches than requests


# ---- faults: per-item errors, never a silent 0; no secret anywhere ---------------------------------------------

def test_upstream_faults_come_back_per_item_and_no_secret_leaks(svc, upstream):
    upstream.fail_next(Fault.http(400, "the request was malformed"))
    r = svc.post("/v1/score", {"items": [{"prompt": "fault", "response": "grade 9 fault one"}], "scorers": ["rubric"]})
    res = r.json()["results"][0]
    assert r.status_code == 200 and res["scores"]["rubric"] is None and "call failed" in res["errors"]["rubric"]
    # a proxy that echoes the key back, then a bad key that fails every call: masked wherever it goes
    upstream.fail_next(Fault.auth_echo(400))
    r1 = svc.post("/get_reward", {"query": [chatml("leak", "grade 5 leak one")]})
    upstream.fail_next(Fault.http(401, f"Incorrect API key provided: {KEY}"))
    r2 = svc.post("/v1/score", {"items": [{"prompt": "leak", "response": "grade 5 leak two"}], "scorers": ["rubric"]})
    assert r1.json()["rewards"] == [None] and r2.json()["results"][0]["scores"]["rubric"] is None
    assert "[redacted]" in r2.text or "redacted" in r2.text
    metrics = svc.get("/metrics").text
    assert 'rlaif_serve_backend_errors_total{kind="upstream",scorer="rubric"}' in metrics
    assert 'kind="backend"' in metrics
    for text in (r1.text, r2.text, metrics, svc.stdout, svc.stderr):
        assert KEY not in text and TOKEN not in text
    for f in svc.cache.glob("calls.sqlite*"):
        data = f.read_bytes()
        assert KEY.encode() not in data and TOKEN.encode() not in data
    assert any(c.headers.get("authorization") == f"Bearer {KEY}" for c in upstream.calls)  # the key was used


def test_non_loopback_without_a_token_refuses_to_start(tmp_path):
    import subprocess
    import sys

    from serve_helpers import ROOT

    env = {k: v for k, v in __import__("os").environ.items() if k != "RLAIF_SERVE_TOKEN"}
    env["PYTHONPATH"] = str(ROOT)
    r = subprocess.run([sys.executable, "-m", "rlaif.cli", "serve", "--host", "0.0.0.0", "--port", "0"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2 and "RLAIF_SERVE_TOKEN" in r.stderr and "Fix:" in r.stderr
    assert "clients send 'Authorization: Bearer $RLAIF_SERVE_TOKEN'" in r.stderr  # the example, not "[redacted]"
    assert "rlaif serve: http" not in r.stdout


def test_a_bad_reward_model_refuses_to_start_naming_the_flag(tmp_path):
    import subprocess
    import sys

    empty = tmp_path / "not-a-model"
    empty.mkdir()
    proc = subprocess.run([sys.executable, "-m", "rlaif.cli", "serve", "--reward-model", str(empty), "--port", "0"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"--reward-model {empty}: {empty} holds no saved model" in proc.stderr and "Fix:" in proc.stderr


def test_a_causal_lm_folder_as_reward_model_refuses_to_start(tiny_model_dir):
    """As met: `--reward-model` with a causal LM's folder served random scores (a fresh head each load)."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "rlaif.cli", "serve", "--reward-model", str(tiny_model_dir),
                           "--port", "0"], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert f"--reward-model {tiny_model_dir}: {tiny_model_dir} holds no trained reward model" in proc.stderr
    assert "Fix: train a reward model on it, `rlaif train rm" in proc.stderr
    assert "rlaif serve: http" not in proc.stdout and "Loading weights" not in proc.stderr
