"""MRKD — Multi-Rate Knowledge Distillation (Yuan, "Balancing easy and hard distortions", eq. 3, 5, 6).

Two copies of one IQA network train online on the same batches. The teacher (w1) has a large learning rate, the
student (w2) a small one; each has its own optimizer and cosine schedule (the recipe's ``optim.teacher`` and
``optim.student``). Per step::

    L = MSE(q_T, y) + MSE(q_S, y) + alpha * MSE(q_S, q_T)

With ``detach_teacher: false`` (default, symmetric eq. 5) the mutual term's gradient reaches both models; with
``detach_teacher: true`` only the student receives it. URKD is the same distiller with equal learning rates.
The student is the deployed model; both models are evaluated.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from distill.distillers.base import Distiller
from distill.registry import DISTILLERS, LOSSES


@DISTILLERS.register("mrkd")
class MRKD(Distiller):
    """Multi-rate online distillation between two IQA models (MRKD; URKD when learning rates are equal)."""

    roles = ("teacher", "student")

    def __init__(
        self,
        models: dict[str, nn.Module],
        alpha: float = 1.0,
        detach_teacher: bool = False,
        loss: str = "mse",
    ) -> None:
        super().__init__(models)
        self.alpha = float(alpha)
        self.detach_teacher = bool(detach_teacher)
        self.loss_fn = LOSSES.get(loss)

    def training_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        x, y = batch["input"], batch["target"]
        q_t = self.models["teacher"](x)
        q_s = self.models["student"](x)
        peer = q_t.detach() if self.detach_teacher else q_t
        return {
            "teacher": self.loss_fn(q_t, y),
            "student": self.loss_fn(q_s, y),
            "mutual": self.alpha * self.loss_fn(q_s, peer),
        }

    def eval_roles(self) -> tuple[str, ...]:
        return ("teacher", "student")
