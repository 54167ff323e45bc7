"""Logits knowledge distillation from a frozen teacher (Hinton et al., 2015) — the classic baseline."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from distill.distillers.base import Distiller
from distill.registry import DISTILLERS, LOSSES


@DISTILLERS.register("logits_kd")
class LogitsKD(Distiller):
    """Frozen teacher, trainable student: ``L = task(s, y) + weight * kd(s, t)`` on the same input.

    ``kd_loss`` names any loss of the library taking ``(student_output, teacher_output)``: ``hinton_kd`` for
    classifiers, ``l1``/``mse`` for regression and super-resolution outputs.
    """

    roles = ("teacher", "student")
    frozen_roles = ("teacher",)

    def __init__(
        self,
        models: dict[str, nn.Module],
        task_loss: str = "mse",
        kd_loss: str = "mse",
        weight: float = 1.0,
        kd_args: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(models)
        self.task_loss = LOSSES.get(task_loss)
        self.kd_loss = LOSSES.get(kd_loss)
        self.weight = float(weight)
        self.kd_args = dict(kd_args or {})

    def training_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        x = batch["input"]
        t = self.frozen_forward("teacher", x)
        s = self.models["student"](x)
        return {"task": self.task_loss(s, batch["target"]), "kd": self.weight * self.kd_loss(s, t, **self.kd_args)}
