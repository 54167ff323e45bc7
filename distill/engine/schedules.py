"""Closed-form learning-rate schedules, one per trainable group.

The learning rate is a pure function of the iteration, so resuming needs no scheduler state and MRKD's eq. 6 holds
exactly at every step (no drift from recursive updates)::

    eta_t = eta_min + (eta_max - eta_min) * (1 + cos(pi * T / T_max)) / 2
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from distill.recipe.config import ScheduleConfig


@dataclass(frozen=True)
class Schedule:
    """``lr(step)`` for one group; ``step`` counts completed iterations (0 for the first update)."""

    base_lr: float
    config: ScheduleConfig
    total_steps: int
    steps_per_epoch: int

    def _steps(self, value: int) -> int:
        return value * self.steps_per_epoch if self.config.unit == "epoch" else value

    def lr(self, step: int) -> float:
        cfg = self.config
        warmup = self._steps(cfg.warmup)
        if step < warmup:
            start = cfg.warmup_start * self.base_lr
            return start + (self.base_lr - start) * step / warmup
        t = step - warmup
        if cfg.name == "constant":
            return self.base_lr
        if cfg.name == "cosine":
            t_max = self._steps(cfg.t_max) if cfg.t_max is not None else max(1, self.total_steps - warmup)
            t = min(t, t_max)
            return cfg.eta_min + 0.5 * (self.base_lr - cfg.eta_min) * (1.0 + math.cos(math.pi * t / t_max))
        if cfg.name == "step":
            return self.base_lr * cfg.gamma ** (t // max(1, self._steps(cfg.step_size)))
        if cfg.name == "multistep":
            passed = sum(1 for m in cfg.milestones if t >= self._steps(m))
            return self.base_lr * cfg.gamma**passed
        if cfg.name == "piecewise":
            at = t // max(1, self.steps_per_epoch) if cfg.unit == "epoch" else t
            return self.base_lr * _interpolate(cfg.points, at)
        raise ValueError(f"unknown schedule {cfg.name!r}")


def _interpolate(points: list[list[float]], at: float) -> float:
    """The factor at ``at`` on the polyline through ``points``, held constant outside them; a repeated ``at`` is a
    jump that takes effect at that position (like a milestone)."""
    if at < points[0][0]:
        return float(points[0][1])
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        if at < x1:
            return float(y0 + (y1 - y0) * (at - x0) / (x1 - x0))
    return float(points[-1][1])
