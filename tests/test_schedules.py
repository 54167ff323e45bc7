"""Closed-form schedules: values at chosen steps against the formulas written out by hand."""

from __future__ import annotations

import math

import pytest

from distill.engine.schedules import Schedule
from distill.recipe.config import ScheduleConfig


def sched(total: int = 100, per_epoch: int = 10, lr: float = 0.1, **cfg) -> Schedule:
    return Schedule(lr, ScheduleConfig(**cfg), total, per_epoch)


def test_constant():
    assert [sched(name="constant").lr(s) for s in (0, 50, 99)] == [0.1, 0.1, 0.1]


def test_cosine_defaults_to_the_whole_run_and_reaches_eta_min():
    s = sched(name="cosine", eta_min=0.001)
    assert s.lr(0) == pytest.approx(0.1)
    assert s.lr(50) == pytest.approx(0.001 + 0.5 * 0.099 * (1 + math.cos(math.pi * 0.5)))
    assert s.lr(100) == pytest.approx(0.001) and s.lr(150) == pytest.approx(0.001)


def test_cosine_in_epoch_units():
    s = sched(name="cosine", unit="epoch", t_max=4)  # 40 iterations
    assert s.lr(20) == pytest.approx(0.05) and s.lr(40) == pytest.approx(0.0)


def test_step_and_multistep():
    s = sched(name="step", step_size=30, gamma=0.5)
    assert [s.lr(t) for t in (0, 29, 30, 59, 60)] == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025])
    m = sched(name="multistep", unit="epoch", milestones=[2, 5], gamma=0.1)  # iterations 20 and 50
    assert [m.lr(t) for t in (19, 20, 49, 50)] == pytest.approx([0.1, 0.01, 0.01, 0.001])


def test_linear_warmup_then_schedule_counts_from_the_end_of_warmup():
    s = sched(name="cosine", warmup=10, warmup_start=0.1)
    assert s.lr(0) == pytest.approx(0.01)
    assert s.lr(5) == pytest.approx(0.01 + 0.09 * 0.5)
    assert s.lr(10) == pytest.approx(0.1)
    assert s.lr(55) == pytest.approx(0.5 * 0.1 * (1 + math.cos(math.pi * 45 / 90)))


def test_piecewise_in_epochs_is_the_official_cqd_learning_rate_vector():
    """run_CQD.m: [0.0005*ones(1,5), 0.0005:-0.00005:0.0001, 0.0001*ones(1,10), 0.00005*ones(1,10)], 30 epochs."""
    official = [5e-4] * 5 + [5e-4 - 5e-5 * k for k in range(9)] + [1e-4] * 10 + [5e-5] * 10
    s = sched(
        total=300,
        per_epoch=10,
        lr=5e-4,
        name="piecewise",
        unit="epoch",
        points=[[0, 1.0], [5, 1.0], [13, 0.2], [23, 0.2], [24, 0.1]],
    )
    for epoch in range(30):  # constant within each epoch, the vector's entry for that epoch
        assert [s.lr(epoch * 10 + i) for i in (0, 9)] == pytest.approx([official[epoch]] * 2, rel=1e-12), epoch


def test_piecewise_in_iterations_interpolates_and_holds_the_ends():
    s = sched(name="piecewise", points=[[10, 1.0], [20, 0.5], [20, 0.25], [40, 0.0]])
    assert [s.lr(t) for t in (0, 10, 15, 20, 30, 40, 99)] == pytest.approx([0.1, 0.1, 0.075, 0.025, 0.0125, 0, 0])
