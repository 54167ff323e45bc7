"""Plain supervised training of one model — the no-distillation baseline of every paper."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from distill.distillers.base import Distiller
from distill.registry import DISTILLERS, LOSSES


@DISTILLERS.register("supervised")
class Supervised(Distiller):
    """One model trained on its task loss alone (baseline / scratch / oracle rows)."""

    roles = ("student",)

    def __init__(self, models: dict[str, nn.Module], loss: str = "mse") -> None:
        super().__init__(models)
        self.loss_fn = LOSSES.get(loss)

    def training_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        return {"task": self.loss_fn(self.models["student"](batch["input"]), batch["target"])}
