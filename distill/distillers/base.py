"""The distiller contract: which models exist, which train, and the named loss terms of one step.

A distiller never loops, never steps an optimizer and never moves data between devices — the engine does. Before
each :meth:`Distiller.training_step` the engine sets :attr:`Distiller.context` (the step, epoch and run length, all
restored on resume), so a loss-weight warm-up or schedule is a function of ``self.context`` inside the method.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypedDict

import torch
from torch import nn

from distill.errors import RecipeError, check_names
from distill.models.lr_ratio import LRRatios


class Batch(TypedDict, total=False):
    """One batch as the engine hands it to a distiller (collated items; a dataset may add keys of its own)."""

    input: torch.Tensor  # what the student sees
    target: torch.Tensor  # label, MOS or HR image
    meta: dict[str, Any]  # per-item fields: name, the ``eval.group_by`` field …
    index: torch.Tensor  # the items' dataset indices (teacher-output cache keys)
    input_clean: torch.Tensor  # CQD: the clean view the teacher sees
    quality: torch.Tensor  # CQD router: which expert an item belongs to
    cached: dict[str, torch.Tensor]  # frozen roles' outputs the engine computed once (``cacheable_inputs``)


@dataclass(frozen=True)
class StepContext:
    """Where the run is when :meth:`Distiller.training_step` is called (set by the engine before each step).

    ``step`` is the 0-based index of the step being taken (the number of steps already done), ``epoch`` the 0-based
    epoch it belongs to. Both come from the checkpoint on resume, so a schedule over them resumes exactly.
    """

    step: int = 0
    epoch: int = 0
    total_steps: int = 0
    steps_per_epoch: int = 0

    @property
    def progress(self) -> float:
        """Fraction of the run done before this step, in [0, 1)."""
        return self.step / self.total_steps if self.total_steps else 0.0


class Distiller(nn.Module, ABC):
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
    #: frozen roles whose outputs depend on one batch key only, ``{role: batch_key}``: the engine may compute them
    #: once per training item and pass them as ``batch["cached"][role]`` (:mod:`distill.engine.teacher_cache`).
    cacheable_inputs: ClassVar[Mapping[str, str]] = {}
    #: the step being trained (set by the engine before each :meth:`training_step`)
    context: StepContext = StepContext()

    def __init__(self, models: Mapping[str, nn.Module]) -> None:
        super().__init__()
        what = f"distiller '{type(self).__name__}'"
        if not isinstance(models, Mapping):
            raise RecipeError(
                f"{what}: models must be a mapping of role name to nn.Module (roles: {', '.join(self.roles)}); "
                f"got a {type(models).__name__}"
            )
        check_names(f"{what} needs models", self.roles, models)
        for role in self.roles:
            if not isinstance(models[role], nn.Module):
                raise RecipeError(f"{what}: models['{role}'] is a {type(models[role]).__name__}, not an nn.Module")
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

    def lr_ratios(self) -> dict[nn.Parameter, float]:
        """Learning-rate multipliers of single parameters within their group (:mod:`distill.models.lr_ratio`):
        those the trainable models declare."""
        out: dict[nn.Parameter, float] = {}
        for role in self.roles:
            if role not in self.frozen_roles:
                for module in self.models[role].modules():
                    if isinstance(module, LRRatios):
                        out.update(module.lr_ratios())
        return out

    @abstractmethod
    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Named, already weighted scalar loss terms of one step; the engine sums and back-propagates them."""

    def eval_roles(self) -> tuple[str, ...]:
        """The models whose predictions are evaluated and reported (default: the student)."""
        return (self.student_role,)

    @torch.no_grad()
    def eval_outputs(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Predictions of each evaluated model on ``batch["input"]``."""
        return {role: self.models[role](batch["input"]) for role in self.eval_roles()}

    def deployable(self) -> nn.Module:
        """The model users ship: the student, without any helper module."""
        return self.models[self.student_role]

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
