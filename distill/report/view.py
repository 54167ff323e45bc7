"""The one view of a built run that reports and tasks read (:class:`distill.build.Run` is the one implementation)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from distill.data.base import DistillDataset
    from distill.engine.trainer import Trainer
    from distill.recipe.config import Recipe


class RunView(Protocol):
    """A built run: its recipe, datasets, folder and trainer, its task, and how its numbers are captioned."""

    recipe: Recipe
    train_set: DistillDataset
    eval_sets: dict[str, DistillDataset]
    out_dir: Path
    trainer: Trainer

    @property
    def task(self) -> Any:  # the student's task (distill.tasks.base.Task, a layer above)
        ...

    def caption(self, split: str) -> str:
        """Dataset (real or synthetic), split, seed and selection policy of the numbers of ``split``."""
        ...

    def role_label(self, role: str) -> str:
        """How tables name a role ("model" in a single-model run)."""
        ...
