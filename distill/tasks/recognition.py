"""Recognition: top-1 accuracy, labels checked against ``num_classes`` before training, per-class accuracy and the
most confused classes on the report page, ``path,label,probability`` predictions."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from distill.errors import RecipeError
from distill.registry import TASKS
from distill.report.html import RunFiles, embed_figure, pyplot
from distill.report.view import RunView
from distill.tasks.base import PredictOptions, Task, batched_outputs, write_csv


@runtime_checkable
class Classifier(Protocol):
    """A model that predicts one of ``num_classes`` classes (its labels are checked before training)."""

    num_classes: int


@TASKS.register("recognition")
class RecognitionTask(Task):
    """Recognition: a classifier (registered with ``task="recognition"``) labels each image."""

    name: ClassVar[str] = "recognition"
    default_metrics: ClassVar[tuple[str, ...]] = ("top1",)
    writes: ClassVar[str] = "path,label,probability"
    output_suffix: ClassVar[str] = "_classes.csv"
    folder_readers: ClassVar[tuple[tuple[str, dict[str, Any]], ...]] = (("cub200", {"split": "test"}),)

    def check_run(self, run: RunView) -> None:
        """Every class label of every split is below the ``num_classes`` of every classifier."""
        sets = {"data.train": run.train_set, **{f"data.eval.{k}": v for k, v in run.eval_sets.items()}}
        for role, model in run.trainer.distiller.models.items():
            if not isinstance(model, Classifier):
                continue
            for key, ds in sets.items():
                n = ds.num_classes
                if n is not None and n > model.num_classes:
                    raise RecipeError(
                        f"models.{role}.args.num_classes: {model.num_classes}, but {key} has labels 0..{n - 1} "
                        f"({n} classes); set num_classes to {n} or select fewer classes in {key}.args"
                    )

    def report_entry(self, run: RunView, split: str, folder: Path) -> dict[str, Any]:
        entry = super().report_entry(run, split, folder)
        names = getattr(run.eval_sets[split], "class_names", None)
        return {**entry, "class_names": [str(c) for c in names]} if names else entry

    def html_sections(self, run: RunFiles, split: str, entry: Mapping[str, Any]) -> list[str]:
        predictions = entry.get("predictions", {})
        if not predictions.get("outputs") or entry.get("class_names") is None:
            return []
        return [f"<h3>classes: {html.escape(split)}</h3>", *classification_figures(run, split, predictions)]

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


def classification_figures(run: RunFiles, split: str, predictions: Mapping[str, Any], k: int = 8) -> list[str]:
    """Per-class accuracy of each model, and the confusion matrix of the ``k`` most confused classes."""
    plt = pyplot()
    target = np.asarray(predictions["target"], dtype=int)
    outputs = {role: np.asarray(p, dtype=int) for role, p in predictions["outputs"].items()}
    names = run.data.get("splits", {}).get(split, {}).get("class_names") or []
    n_classes = int(max([target.max(initial=0), *(p.max(initial=0) for p in outputs.values())]) + 1)
    label = [names[c] if c < len(names) else str(c) for c in range(n_classes)]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.35 * n_classes * len(outputs)), 3.2))
    width = 0.8 / max(1, len(outputs))
    classes = range(n_classes)
    for j, (role, pred) in enumerate(outputs.items()):
        acc = [100.0 * float(np.mean(pred[target == c] == c)) if (target == c).any() else math.nan for c in classes]
        xs = [c + (j - (len(outputs) - 1) / 2) * width for c in range(n_classes)]
        ax.bar(xs, acc, width, label=run.label(role))
    ax.set_xticks(range(n_classes), label, rotation=60, ha="right", fontsize=7)
    ax.set(ylabel=f"top-1 % ({split})", ylim=(0, 100), title="per-class accuracy")
    ax.legend(fontsize=7)
    fig.tight_layout()
    images = [embed_figure(fig)]
    role = run.data.get("student_role") if run.data.get("student_role") in outputs else next(iter(outputs))
    pred = outputs[role]
    confusion = np.zeros((n_classes, n_classes), dtype=int)
    np.add.at(confusion, (target, pred), 1)
    off = confusion - np.diag(np.diag(confusion))
    chosen = sorted(np.argsort(-(off.sum(0) + off.sum(1)), kind="stable")[: min(k, n_classes)].tolist())
    sub = confusion[np.ix_(chosen, chosen)]
    fig, ax = plt.subplots(figsize=(max(4.5, 2.5 + 0.45 * len(chosen)), 1.8 + 0.45 * len(chosen)))
    ax.imshow(sub, cmap="Blues")
    for (i, j), v in np.ndenumerate(sub):
        ax.text(j, i, str(v), ha="center", va="center", fontsize=7, color="white" if v > sub.max() / 2 else "black")
    ticks = [label[c] for c in chosen]
    ax.set_xticks(range(len(chosen)), ticks, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(len(chosen)), ticks, fontsize=7)
    ax.set(xlabel="predicted", ylabel="true")
    ax.set_title(f"{run.label(role)}: most confused classes", fontsize=9)
    fig.tight_layout()
    images.append(embed_figure(fig))
    return images
