"""bf16 or not: a timed matrix product decides, with a margin, once per process."""
from __future__ import annotations

import math

import pytest

from rlaif import hardware


@pytest.fixture
def measured(monkeypatch):
    """Set what the timing says (and forget the process's cached answer before and after)."""
    hardware.bf16_is_faster.cache_clear()

    def set_speedup(value: float) -> None:
        monkeypatch.setattr(hardware, "bf16_speedup", lambda: value)

    yield set_speedup
    hardware.bf16_is_faster.cache_clear()


@pytest.mark.parametrize(("speedup", "faster"), [(1.8, True), (1.3, True), (1.29, False), (0.6, False)])
def test_bf16_only_where_it_measures_clearly_faster(measured, speedup, faster):
    measured(speedup)
    assert hardware.bf16_is_faster() is faster


def test_measured_once_per_process(measured, monkeypatch):
    calls = []
    monkeypatch.setattr(hardware, "bf16_speedup", lambda: calls.append(1) or 2.0)
    assert hardware.bf16_is_faster() and hardware.bf16_is_faster()
    assert calls == [1]


def test_the_measurement_is_a_positive_ratio(monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    assert 0 < hardware.bf16_speedup() < 100


def test_cuda_needs_no_measurement(monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    assert math.isinf(hardware.bf16_speedup())
