"""The demo's precision: bf16 where it measures clearly faster on a fresh run, the started one on a resumed run."""
from __future__ import annotations

import json

import pytest

from rlaif.pipelines import demo


@pytest.mark.parametrize(("faster", "expected"), [(True, "bf16"), (False, "fp32")])
def test_a_fresh_run_follows_the_measurement(tmp_path, monkeypatch, faster, expected):
    monkeypatch.setattr(demo, "bf16_is_faster", lambda: faster)
    assert demo.demo_precision(tmp_path) == expected


@pytest.mark.parametrize("started", ["bf16", "fp32"])
def test_a_resumed_run_keeps_the_precision_it_started_with(tmp_path, monkeypatch, started):
    # a re-measurement that came out the other way must not restart the run under another plan
    monkeypatch.setattr(demo, "bf16_is_faster", lambda: started == "fp32")
    (tmp_path / "state.json").write_text(json.dumps({"plan": {"precision": started}, "done": {"generate": 1.0}}))
    assert demo.demo_precision(tmp_path) == started


def test_a_state_without_a_precision_is_measured(tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "bf16_is_faster", lambda: True)
    (tmp_path / "state.json").write_text(json.dumps({"plan": {"seed": 0}, "done": {}}))
    assert demo.demo_precision(tmp_path) == "bf16"
