"""Closed-form schedules: values at chosen steps against the formulas written out by hand."""

from __future__ import annotations

import math

import pytest

from distill.config import ScheduleConfig
from distill.engine.schedules import Schedule


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
