"""Plain supervised training of one model — the no-distillation baseline of every paper."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from distill.distillers.base import Distiller
from distill.distillers.head_groups import split_head_groups
from distill.registry import DISTILLERS, LOSSES


@DISTILLERS.register("supervised")
class Supervised(Distiller):
    """One model trained on its task loss alone (baseline / scratch / oracle rows).

    ``head_groups``: the student's last-layer weight and bias train as groups of their own
    (:mod:`~distill.distillers.head_groups`; CQD's baselines).
    """

    roles = ("student",)

    def __init__(self, models: dict[str, nn.Module], loss: str = "mse", head_groups: bool = False) -> None:
        super().__init__(models)
        self.loss_fn = LOSSES.get(loss)
        self.head_groups = bool(head_groups)
        if self.head_groups:
            self.param_groups()  # a model without a last layer fails here, at build time

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        groups = super().param_groups()
        return split_head_groups(groups, self.models["student"], "student") if self.head_groups else groups

    def training_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        return {"task": self.loss_fn(self.models["student"](batch["input"]), batch["target"])}
