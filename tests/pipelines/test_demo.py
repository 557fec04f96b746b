"""The demo's precision choice: measured on a fresh run, kept on a resumed one."""
from __future__ import annotations

import json

import pytest

from rlaif.pipelines import demo


@pytest.fixture
def cpu_only(monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)


@pytest.mark.parametrize(("speedup", "expected"), [(1.8, "bf16"), (1.3, "bf16"), (1.29, "fp32"), (0.6, "fp32")])
def test_a_fresh_run_takes_bf16_only_where_it_measures_clearly_faster(tmp_path, monkeypatch, cpu_only, speedup,
                                                                      expected):
    monkeypatch.setattr(demo, "bf16_speedup", lambda: speedup)
    assert demo.demo_precision(tmp_path) == expected


@pytest.mark.parametrize("started", ["bf16", "fp32"])
def test_a_resumed_run_keeps_the_precision_it_started_with(tmp_path, monkeypatch, cpu_only, started):
    # a re-measurement that came out the other way must not restart the run under another plan
    monkeypatch.setattr(demo, "bf16_speedup", lambda: 0.5 if started == "bf16" else 2.0)
    (tmp_path / "state.json").write_text(json.dumps({"plan": {"precision": started}, "done": {"generate": 1.0}}))
    assert demo.demo_precision(tmp_path) == started


def test_a_state_without_a_precision_is_measured(tmp_path, monkeypatch, cpu_only):
    monkeypatch.setattr(demo, "bf16_speedup", lambda: 2.0)
    (tmp_path / "state.json").write_text(json.dumps({"plan": {"seed": 0}, "done": {}}))
    assert demo.demo_precision(tmp_path) == "bf16"


def test_cuda_is_bf16_without_a_measurement(tmp_path, monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    monkeypatch.setattr(demo, "bf16_speedup", lambda: pytest.fail("measured on CUDA"))
    assert demo.demo_precision(tmp_path) == "bf16"


def test_the_measurement_is_a_positive_ratio():
    assert 0 < demo.bf16_speedup() < 100
