"""The master-key verdict travels: `rlaif probe` (real CLI, real openai SDK against the loopback server) stores
it, `rlaif audit` flags a failed judge in its output and reports, `rlaif serve --judge` warns at start-up;
a judge that passed, or was never probed, is not flagged."""
from __future__ import annotations

import json
import re

from fakeserver import FakeServer
from serve_helpers import Served

from rlaif.judge.master_keys import load_master_keys
from rlaif.judge.probe_store import probe_of
from tests.support.cli_helpers import rlaif_inproc

KEYS = {k.key for k in load_master_keys()}
_SHOWN = re.compile(r"Answer A:\n<<<\n(.*?)\n>>>", re.S)


def reply(call) -> str:
    """`openai:fooled` calls a master key as good as the reference (a tie); `openai:sound` prefers the reference."""
    if "Answer A:" not in call.prompt:
        return "an answer"
    if call.body["model"] == "fooled":
        return "[[C]]"
    return "[[B]]" if _SHOWN.search(call.prompt).group(1) in KEYS else "[[A]]"


def _labels(path, rater):
    rows = [{"item": f"p{i}:x~y", "rater": rater, "winner": "a", "order": o, "model_a": "x", "model_b": "y",
             "prompt": f"q{i}", "response_a": "aaa", "response_b": "b", "prompt_id": f"p{i}"}
            for i in range(4) for o in ("ab", "ba")]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_probe_then_audit_and_serve_flag_the_fooled_judge(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("RLAIF_CACHE", str(cache))
    with FakeServer(reply=reply) as srv:
        for model in ("fooled", "sound"):
            r = rlaif_inproc("probe", "-j", "pairwise", "--judge-model", f"openai:{model}", "--base-url",
                             srv.openai_url, "--probes", "master-key", "--retest", "2", "-o", tmp_path / model)
            assert r.code == 0, r.stderr
            assert "flip rate 0.00" in r.stdout  # a deterministic server: the same verdict on every repeat
        assert "FAILED" in rlaif_inproc("probe", "-j", "pairwise", "--judge-model", "openai:fooled", "--base-url",
                                        srv.openai_url, "--probes", "master-key", "-o", tmp_path / "again").stdout
        assert probe_of("pairwise@v1:openai:fooled")["master_key"]["failed"]
        sound = probe_of("pairwise@v1:openai:sound")["master_key"]
        assert not sound["failed"] and sound["overall"]["fpr"] == 0.0

        labels = _labels(tmp_path / "labels.jsonl", "pairwise@v1:openai:fooled")
        r = rlaif_inproc("audit", labels, "-o", tmp_path / "audit")
        assert r.code == 0 and "failed the master-key probe" in r.stderr
        audit = json.loads((tmp_path / "audit" / "audit.json").read_text())
        assert [f["rater"] for f in audit["probe_flags"]] == ["pairwise@v1:openai:fooled"]
        assert "failed the master-key probe" in (tmp_path / "audit" / "audit.md").read_text()
        assert "failed the master-key probe" in (tmp_path / "audit" / "audit.html").read_text()
        r = rlaif_inproc("audit", _labels(tmp_path / "l2.jsonl", "pairwise@v1:openai:sound"), "-o", tmp_path / "a2")
        assert r.code == 0 and "master-key" not in r.stderr
        assert json.loads((tmp_path / "a2" / "audit.json").read_text())["probe_flags"] == []

        for model, flagged in (("fooled", True), ("sound", False), ("never-probed", False)):
            with Served(["-j", "pairwise", "--judge-model", f"openai:{model}", "--base-url", srv.openai_url],
                        cache=cache) as svc:
                assert svc.get("/healthz").status_code == 200
                err = svc.stderr
            assert ("warning: pairwise@v1:openai:fooled failed the master-key probe" in err) == flagged, err
