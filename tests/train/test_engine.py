"""The training engine and its step-source protocol, with a toy source: the order it calls a source in, which rows
it writes, the NaN stop, and a resume that restores the source's own state; `MetricSums`."""
from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from rlaif.train.config import TrainConfig
from rlaif.train.engine import MetricSums, NonFiniteError, run_steps
from rlaif.train.runtime import Runtime

RT = Runtime(torch.device("cpu"), 0, 1, 0, None, False, False)


class ToySource:
    """Minimizes (w - 3)^2; counts its steps in its own checkpointed state; logs what the engine asked of it."""

    label = "toy"
    optimizer_steps = 4
    stops_on_nonfinite = True

    def __init__(self, total: int = 4, nan_at: int | None = None):
        self.total, self.nan_at, self.calls, self.taken = total, nan_at, [], 0

    def step(self, engine) -> dict:
        self.calls.append(("step", engine.step))
        loss = ((engine.module.weight - 3.0) ** 2).sum()
        loss.backward()
        grad_norm = engine.optimizer_step(stop_on_nonfinite=True)
        self.taken += 1
        value = math.nan if self.nan_at == engine.step + 1 else float(loss.detach())
        return {"split": "train", "step": engine.step + 1, "loss": value, "grad_norm": grad_norm}

    def after_step(self, engine, timed_out: bool) -> dict | None:
        self.calls.append(("after_step", engine.step))
        return {"split": "eval", "step": engine.step} if engine.step == 2 else None

    def finish(self, engine) -> dict | None:
        self.calls.append(("finish", engine.step))
        return {"split": "eval", "step": engine.step, "final": True}

    def info(self, row: dict) -> str:
        return f"loss {row['loss']:.3f}"

    def state_dict(self) -> dict:
        return {"taken": self.taken}

    def load_state_dict(self, state: dict) -> None:
        self.taken = state["taken"]


def _run(tmp_path, source: ToySource, **cfg):
    module = nn.Linear(1, 1, bias=False)
    config = TrainConfig(out=str(tmp_path), lr=0.1, **cfg)
    return run_steps(config, RT, module, tmp_path, source)


def _rows(tmp_path) -> list[dict]:
    return [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]


def test_the_engine_calls_a_source_step_then_after_step_then_finish(tmp_path):
    source = ToySource()
    result = _run(tmp_path, source, log_every=2, save_every=3)
    assert source.calls == [("step", 0), ("after_step", 1), ("step", 1), ("after_step", 2), ("step", 2),
                            ("after_step", 3), ("step", 3), ("after_step", 4), ("finish", 4)]
    # rows every log_every steps and the last; the source's extra rows and its final one
    assert [(r["split"], r["step"]) for r in _rows(tmp_path)] == [("train", 2), ("eval", 2), ("train", 4), ("eval", 4)]
    assert (result.steps, result.stopped_by, result.train["step"], result.eval["final"]) == (4, "epochs", 4, True)
    losses = [r["loss"] for r in _rows(tmp_path) if r["split"] == "train"]
    assert losses[1] < losses[0]  # the optimizer steps moved w toward 3


def test_a_resumed_run_restores_the_source_state_and_rewrites_the_rows_after_the_checkpoint(tmp_path):
    first = ToySource(total=3)
    _run(tmp_path, first, save_every=2)  # checkpoints at steps 2 and 3 (the last)
    again = ToySource(total=5)
    result = _run(tmp_path, again, save_every=2, max_steps=5)
    assert again.taken == 5 and again.calls[0] == ("step", 3)  # 3 taken before, restored from the checkpoint
    train = [r["step"] for r in _rows(tmp_path) if r["split"] == "train"]
    assert train == [1, 2, 3, 4, 5] and result.steps == 5


def test_a_finished_run_resumed_gives_the_saved_last_row(tmp_path):
    _run(tmp_path, ToySource(total=2))
    source = ToySource(total=2)
    result = _run(tmp_path, source)
    assert [c[0] for c in source.calls] == ["finish"] and result.train["step"] == 2
    # the final evaluation is run again (its old row, and the evaluation at that step, were forgotten)
    assert [(r["split"], r["step"]) for r in _rows(tmp_path)] == [("train", 1), ("train", 2), ("eval", 2)]


def test_a_non_finite_row_stops_the_run(tmp_path):
    with pytest.raises(NonFiniteError, match="step 2: loss became non-finite"):
        _run(tmp_path, ToySource(nan_at=2))
    assert [r["step"] for r in _rows(tmp_path)] == [1]


def test_metric_sums_divide_after_reducing_and_turn_squares_into_std():
    a, b = MetricSums(), MetricSums()
    a.add("x", torch.tensor(3.0), 2)
    a.add("x|sq", 5.0, 2)
    b.add("x", 1.0, 2)
    b.add("empty", 0.0, 0)
    out = MetricSums.joined(a, b).reduce(RT)
    assert out == {"empty": None, "x": 1.0, "x_std": pytest.approx(math.sqrt(2.5 - 1.0))}
    assert MetricSums().reduce(RT) == {}


def test_the_optimizer_is_fused_adamw_on_the_cpu_and_its_first_step_is_lr_times_the_gradient_sign():
    from rlaif.train.engine import make_optimizer

    module = nn.Linear(3, 1, bias=False)
    with torch.no_grad():
        module.weight.copy_(torch.tensor([[1.0, -2.0, 0.5]]))
    cfg = TrainConfig(out="unused", lr=0.1, weight_decay=0.01, warmup_steps=0, lr_scheduler="constant")
    opt, _ = make_optimizer(module, cfg, total_steps=1, device=torch.device("cpu"))
    assert opt.defaults["fused"] is True  # about 5x foreach's speed here (benchmarks/bench_local.py)
    module.weight.grad = torch.tensor([[0.3, -4.0, 0.0]])
    opt.step()
    # step 1: m_hat = g, v_hat = g^2, so the update is lr * g / (|g| + eps) = lr * sign(g); decay lr * wd * w first
    expected = [1.0 * (1 - 0.001) - 0.1, -2.0 * (1 - 0.001) + 0.1, 0.5 * (1 - 0.001)]
    assert module.weight.detach().flatten().tolist() == pytest.approx(expected, abs=1e-6)
