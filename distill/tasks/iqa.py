"""Image quality assessment: SRCC/PLCC, correlation columns per distortion, ``path,score`` predictions."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from torch import nn

from distill.recipe.config import EvalConfig
from distill.registry import TASKS
from distill.tasks.base import PredictOptions, Task, batched_outputs, write_csv


@TASKS.register("iqa")
class IQATask(Task):
    """Image quality assessment: a model scores each image (models registered with ``task="iqa"``)."""

    name: ClassVar[str] = "iqa"
    default_metrics: ClassVar[tuple[str, ...]] = ("srcc", "plcc")
    folder_readers: ClassVar[tuple[tuple[str, dict[str, Any]], ...]] = (
        ("kadid10k", {"split": "all"}),
        ("tid2013", {"split": "all"}),
        ("livec", {"split": "all"}),
    )
    writes: ClassVar[str] = "path,score"
    output_suffix: ClassVar[str] = "_scores.csv"

    def score_evaluation(self, model: nn.Module) -> EvalConfig:
        """SRCC, PLCC and the logistic-fitted PLCCs of the IQA papers."""
        return EvalConfig(metrics=["srcc", "plcc", "plcc_logistic4", "plcc_logistic5"])

    def group_metrics(self, metrics: Sequence[str]) -> list[str]:
        """Per distortion, the correlation metrics only (the paper's per-type tables)."""
        return [m for m in metrics if m in ("srcc", "plcc")] or list(metrics)

    def predict(self, model: nn.Module, paths: Sequence[Path], out: str | Path | None, opts: PredictOptions) -> Path:
        scores = score_images(model, paths, opts.batch_size, opts.device, opts.progress)
        rows = [[str(p), f"{s:.6f}"] for p, s in zip(paths, scores)]
        return write_csv(Path(out), ["path", "score"], rows)


def score_images(
    model: nn.Module, paths: Sequence[Path], batch_size: int = 16, device: str = "cpu", progress: bool = True
) -> list[float]:
    """One quality score per image."""
    return [float(o.reshape(-1)[0]) for o in batched_outputs(model, paths, batch_size, device, progress)]
