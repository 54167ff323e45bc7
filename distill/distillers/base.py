"""The distiller contract: which models exist, which train, and the named loss terms of one step.

A distiller never loops, never steps an optimizer and never moves data between devices — the engine does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import nn

from distill.errors import check_names


class Distiller(nn.Module):
    """Base class of every distillation method.

    Subclasses set :attr:`roles` (the model names they need), :attr:`frozen_roles` (teachers that never train),
    :attr:`student_role` (the deployable model) and implement :meth:`training_step`.
    Frozen models are put in eval mode, have ``requires_grad`` off and stay in eval mode whatever
    :meth:`train` is called with.
    """

    roles: ClassVar[tuple[str, ...]] = ("student",)
    frozen_roles: ClassVar[tuple[str, ...]] = ()
    student_role: ClassVar[str] = "student"
    #: True when a step may leave some trainable parameters without a gradient (randomly chosen paths or
    #: branches); multi-process training then tells DistributedDataParallel to look for unused parameters.
    has_stochastic_paths: ClassVar[bool] = False

    def __init__(self, models: Mapping[str, nn.Module]) -> None:
        super().__init__()
        check_names(f"distiller '{type(self).__name__}' needs models", self.roles, models)
        self.models = nn.ModuleDict({r: models[r] for r in self.roles})
        for role in self.frozen_roles:
            self.models[role].requires_grad_(False)
            self.models[role].eval()

    # ------------------------------------------------------------------------------------------------ the contract
    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """Trainable parameters by group name; each group gets its own optimizer and schedule.

        Default: one group per non-frozen role. Methods with helper modules add groups for them.
        """
        return {
            role: [p for p in self.models[role].parameters() if p.requires_grad]
            for role in self.roles
            if role not in self.frozen_roles
        }

    def training_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Named, already weighted scalar loss terms of one step; the engine sums and back-propagates them."""
        raise NotImplementedError

    def eval_roles(self) -> tuple[str, ...]:
        """The models whose predictions are evaluated and reported (default: the student)."""
        return (self.student_role,)

    @torch.no_grad()
    def eval_outputs(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Predictions of each evaluated model on ``batch["input"]``."""
        return {role: self.models[role](batch["input"]) for role in self.eval_roles()}

    def deployable(self) -> nn.Module:
        """The model users ship: the student, without any helper module."""
        return self.models[self.student_role]

    def predict(self, inputs: torch.Tensor) -> torch.Tensor:
        """The deployable model's output."""
        return self.deployable()(inputs)

    # ------------------------------------------------------------------------------------------------- utilities
    def train(self, mode: bool = True) -> Distiller:
        super().train(mode)
        for role in self.frozen_roles:
            self.models[role].eval()
        return self

    def frozen_forward(self, role: str, *args: Any, **kwargs: Any) -> Any:
        """Forward a frozen model under ``no_grad``."""
        with torch.no_grad():
            return self.models[role](*args, **kwargs)
