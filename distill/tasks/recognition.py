"""Recognition: top-1 accuracy, ``path,label,probability`` predictions."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn

from distill.registry import TASKS
from distill.tasks.base import PredictOptions, Task, batched_outputs, write_csv


@TASKS.register("recognition")
class RecognitionTask(Task):
    """Recognition: a classifier (a model with ``num_classes``) labels each image."""

    name: ClassVar[str] = "classify"
    default_metrics: ClassVar[tuple[str, ...]] = ("top1",)
    writes: ClassVar[str] = "path,label,probability"
    output_suffix: ClassVar[str] = "_classes.csv"

    def claims(self, model: nn.Module) -> bool:
        return getattr(model, "num_classes", None) is not None

    def predict(self, model: nn.Module, paths: Sequence[Path], out: str | Path | None, opts: PredictOptions) -> Path:
        labels, probs = classify_images(model, paths, opts.batch_size, opts.device, opts.progress)
        names = getattr(model, "class_names", None)
        rows = [[str(p), names[k] if names else str(k), f"{q:.6f}"] for p, k, q in zip(paths, labels, probs)]
        return write_csv(Path(out), ["path", "label", "probability"], rows)


def classify_images(
    model: nn.Module, paths: Sequence[Path], batch_size: int = 16, device: str = "cpu", progress: bool = True
) -> tuple[list[int], list[float]]:
    """Top-1 class index and its softmax probability per image."""
    top = [torch.softmax(o, dim=0).max(dim=0) for o in batched_outputs(model, paths, batch_size, device, progress)]
    return [int(t.indices) for t in top], [float(t.values) for t in top]
