"""What a task (IQA, SR, recognition …) owns: its name (= its registry key), default metrics, its checks before
training, its printed report, what the report page keeps and shows of it, and what ``distill predict`` writes.

A task is a class registered in :data:`~distill.registry.TASKS`. A model names its task when it is registered
(``@MODELS.register("edsr", task="sr")``); :func:`task_of` reads that one fact for a deployable model (and
:mod:`distill.recipe.check` for a recipe's student). The run report (:meth:`distill.build.Run.report`), the checks
before step 1, the report page, ``distill predict``, ``eval`` and ``export`` go through it (the lower layers by the
registry, never by import), so a new task is one module that registers a :class:`Task` subclass, and its models name
it (a plugin module works the same way).
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn
from tqdm import tqdm

from distill.data.images import load_rgb
from distill.errors import DataError, DistillError, RecipeError
from distill.recipe.check import RecipeChecker
from distill.recipe.config import EvalConfig, Recipe
from distill.registry import MODELS, TASKS
from distill.report.groups import group_label, hardest_and_easiest, plot_per_distortion
from distill.report.tables import group_table, overall_table
from distill.report.view import RunView
from distill.run.atomic import write_text
from distill.run.paths import check_output_file

if TYPE_CHECKING:
    from distill.report.html import RunFiles
    from distill.run.folder import RunResult

__all__ = ["PredictOptions", "Task", "batched_outputs", "resolve_metrics", "task_of", "write_csv"]


class PredictOptions:
    """How ``distill predict`` and ``distill eval`` run a model: batch size, device, SR self-ensemble and tiles,
    progress bar."""

    def __init__(
        self,
        batch_size: int = 16,
        device: str = "cpu",
        self_ensemble: bool = False,
        progress: bool = True,
        tile: int | None = None,
        tile_overlap: int = 32,
    ) -> None:
        self.batch_size, self.device, self.self_ensemble, self.progress = batch_size, device, self_ensemble, progress
        self.tile, self.tile_overlap = tile, tile_overlap


class Task:
    """A task's behaviour around training; the base reports overall and per-group tables and predicts nothing."""

    #: the task's registry key (``TASKS.get(name)``; report/data.json records it); "generic" for this base
    name: ClassVar[str] = "generic"
    #: metrics a recipe of this task evaluates unless it names its own (``eval.metrics``)
    default_metrics: ClassVar[tuple[str, ...]] = ()
    #: what :meth:`predict` writes, for the CLI's "wrote …" line
    writes: ClassVar[str] = "nothing"
    #: what ``distill predict`` appends to its input's name when no ``--out`` is given
    output_suffix: ClassVar[str] = "_predictions.csv"
    #: readers ``distill eval MODEL FOLDER`` tries on a bare folder, each with its view arguments
    folder_readers: ClassVar[tuple[tuple[str, dict[str, Any]], ...]] = ()
    #: the outputs are images: ``distill eval --tile`` and ``--save-images`` apply (:meth:`eval_forward`,
    #: :meth:`save_outputs`)
    image_outputs: ClassVar[bool] = False

    def score_evaluation(self, model: nn.Module) -> EvalConfig:
        """What ``distill eval`` scores ``model`` with on a dataset from outside any recipe (default: the default
        metrics)."""
        return EvalConfig(metrics=list(self.default_metrics))

    def eval_batch_size(self, batch_size: int) -> int:
        """The batch size ``distill eval`` scores a dataset from outside any recipe with (given: ``--batch-size``)."""
        return batch_size

    def check_eval_options(self, model: nn.Module, opts: PredictOptions) -> None:
        """Refuse, before any data is read, options ``distill eval`` cannot run ``model`` with (one-line
        :class:`~distill.errors.DistillError`); tiles and saved outputs are refused before, unless
        :attr:`image_outputs`."""

    def eval_forward(self, model: nn.Module, inputs: torch.Tensor, opts: PredictOptions) -> torch.Tensor:
        """The outputs ``distill eval`` scores for a batch of inputs (default: one forward pass)."""
        return model(inputs)

    def save_outputs(self, outputs: torch.Tensor, batch: Mapping[str, Any], folder: Path) -> None:
        """Write one batch's outputs into ``folder`` (``distill eval --save-images``; tasks with
        :attr:`image_outputs`)."""
        raise DistillError(f"the {self.name} task's outputs are not images; nothing to save")

    def output_names(self, paths: Sequence[Path]) -> list[str] | None:
        """The files :meth:`predict` writes inside its output folder for ``paths``; None: the output is one file."""
        return None

    def default_output(self, model: nn.Module, source: Path) -> Path:
        """Where ``distill predict`` writes without ``--out``: beside ``source``, named after it (``photos/`` →
        ``photos_scores.csv``; ``a.png`` → ``a_scores.csv``), never silently into the current folder."""
        stem = source.name if source.is_dir() else source.stem
        return source.parent / f"{stem}{self.output_suffix}"

    # ------------------------------------------------------------------------------------------------- reporting
    def report(self, run: RunView, result: RunResult) -> str:
        """The printed report of a run: one table per split, then per-group tables when ``eval.group_by`` is set."""
        lines = []
        for split, res in result.results.items():
            res = {run.role_label(role): v for role, v in res.items()}
            lines.append(overall_table(res, split, run.caption(split)))
            if run.recipe.eval.group_by:
                lines.append("")
                lines.extend(self.group_report(run, split, res))
            lines.append("")
        return "\n".join(lines)

    def group_report(self, run: RunView, split: str, res: dict) -> list[str]:
        """The per-group lines of one split: a table per group, then each model's hardest and easiest groups."""
        names = run.eval_sets[split].group_names
        metrics = self.group_metrics(run.recipe.eval.metrics)
        headline = run.trainer.selection.metric
        by = headline if headline in metrics else metrics[0]
        lines = [group_table(res, metrics, names, f"per {run.recipe.eval.group_by} ({split})")]
        for role, role_res in res.items():
            hard, easy = hardest_and_easiest(role_res.get("groups", {}), by)
            lines.append(
                f"{role}: hardest {', '.join(group_label(k, names) for k in hard)}; "
                f"easiest {', '.join(group_label(k, names) for k in easy)} (by {by})"
            )
        return lines

    def group_metrics(self, metrics: Sequence[str]) -> list[str]:
        """The metrics shown per group."""
        return list(metrics)

    def plots(self, run: RunView, result: RunResult) -> list[Path]:
        """Per-group violin plots (MRKD Fig. 1 style) of each grouped split, when matplotlib is installed."""
        group_by = run.recipe.eval.group_by
        if not group_by:
            return []
        written = []
        for split in result.results:
            names = run.eval_sets[split].group_names
            metric = run.trainer.selection.metric  # the headline metric
            path = plot_per_distortion(
                result.history, split, run.out_dir / f"per_{group_by}_{split}.png", metric, names
            )
            if path is not None:
                written.append(path)
        return written

    # ---------------------------------------------------------------------------------------------------- checks
    def check_recipe(self, recipe: Recipe, checker: RecipeChecker) -> None:
        """This task's rules across a recipe's keys, called by :mod:`distill.recipe.check` (through the registry)
        for a recipe whose student model is registered with this task. ``checker.fail(key, message)`` refuses the
        recipe naming the file and key."""

    def check_run(self, run: RunView) -> None:
        """This task's checks of a built run before training step 1 (called by :mod:`distill.engine.preflight`
        after the image-size checks, before the dry pass); raise a one-line :class:`~distill.errors.DistillError`."""

    # ----------------------------------------------------------------------------------------------- report page
    def report_entry(self, run: RunView, split: str, folder: Path) -> dict[str, Any]:
        """What ``report/data.json`` keeps of ``split`` for :meth:`html_sections` (``folder``: where files beside it
        go); by default the last evaluation's per-sample predictions (scores or class indices, targets, groups)."""
        predictions = run.trainer.predictions.get(split, {})
        return {"predictions": predictions} if predictions.get("outputs") else {}

    def data_report(self, data: Mapping[str, Any]) -> str:
        """What ``distill run`` prints from ``report/data.json`` after the tables ("": nothing)."""
        return ""

    def html_sections(self, run: RunFiles, split: str, entry: Mapping[str, Any]) -> list[str]:
        """This task's HTML sections of ``split`` on the report page (``entry``: what :meth:`report_entry` kept)."""
        return []

    # ---------------------------------------------------------------------------------------------- deployment
    def predict(self, model: nn.Module, paths: Sequence[Path], out: str | Path | None, opts: PredictOptions) -> Path:
        """Run ``model`` on image files and write its predictions; returns the file or folder written."""
        raise DistillError(
            f"distill predict does not know what a {type(model).__name__} predicts (IQA, SR, classifier)"
        )


@torch.no_grad()
def batched_outputs(
    model: nn.Module, paths: Sequence[Path], batch_size: int = 16, device: str = "cpu", progress: bool = True
) -> list[torch.Tensor]:
    """The model's float output for each image, on the CPU; images of equal size are batched, order is kept."""
    model = model.to(device)
    outputs: list[torch.Tensor] = [torch.empty(0)] * len(paths)
    batch: list[tuple[int, torch.Tensor]] = []

    def flush() -> None:
        images = torch.stack([t for _, t in batch]).to(device)
        try:
            out = model(images).float().cpu()
        except (RuntimeError, ValueError) as err:  # e.g. an image too small for the network's pooling
            first = paths[batch[0][0]]
            raise DataError(
                f"the model cannot process {first} ({images.shape[-2]}×{images.shape[-1]} px): "
                f"{str(err).splitlines()[0]}; give larger images"
            ) from None
        for (i, _), o in zip(batch, out):
            outputs[i] = o
        batch.clear()

    for i, path in enumerate(tqdm(paths, desc="predict", disable=not progress, delay=0.5)):
        img = load_rgb(path, exif_orientation=True)
        if batch and (len(batch) == batch_size or batch[0][1].shape != img.shape):
            flush()
        batch.append((i, img))
    if batch:
        flush()
    return outputs


def write_csv(out: Path, header: Sequence[str], rows: Sequence[Sequence[str]]) -> Path:
    """A CSV file of predictions (its folder is created; a path that cannot be written is a one-line error)."""
    out = check_output_file(out)
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(header)
    writer.writerows(rows)
    return write_text(out, text.getvalue())


def task_of(model: nn.Module) -> Task:
    """The task of a deployable model: the one its registry entry names (``@MODELS.register(name, task=...)``),
    found through the spec it was built from or, for a model constructed by hand, its registered class. A model
    registered without a task, or of no registered class, gets the generic :class:`Task` (reports only)."""
    name = MODELS.name_of(model)
    task = MODELS.task(name) if name is not None and name in MODELS else None
    return TASKS.get(task)() if task is not None else Task()


def resolve_metrics(evaluation: EvalConfig, model: nn.Module) -> EvalConfig:
    """``evaluation`` with ``metrics: null`` replaced by the default metrics of ``model``'s task (``model`` is the
    deployable student); named metrics are kept. A model of no task with defaults, or ``metric_args`` for a metric
    the default does not compute, is a :class:`~distill.errors.RecipeError` naming the key."""
    if evaluation.metrics is not None:
        return evaluation
    task = task_of(model)
    metrics = list(task.default_metrics)
    if not metrics:
        raise RecipeError(
            f"eval.metrics: not set, and the student ({type(model).__name__}) is of no task with default metrics "
            "(its model registration names none); "
            "name them, e.g. eval.metrics: [srcc, plcc]"
        )
    for name in evaluation.metric_args:
        if name not in metrics:
            raise RecipeError(
                f"eval.metric_args.{name}: '{name}' is not evaluated: eval.metrics is not set, so it is the "
                f"{task.name} task's default {metrics}; add '{name}' to eval.metrics or remove its args"
            )
    return dataclasses.replace(evaluation, metrics=metrics)
