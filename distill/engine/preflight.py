"""Checks made when a run is built, so that a setting which cannot work fails before training step 1.

* each split's own size rules (``DistillDataset.check_sizes``: equal sizes when nothing crops them, at least the
  crop / the scale / the SR patch), read from the image headers only.
* the task's own checks (``Task.check_run``: e.g. recognition labels against ``num_classes``), reached through the
  run's task object, never by import.
* :func:`dry_run`: a small batch (:data:`DRY_BATCH` items) of the training split through ``training_step`` and
  of each evaluation split through ``eval_outputs``, the metrics, the grouping, the model selection and the
  exporter — with the global RNG, the models' buffers and the train/eval mode left exactly as they were.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset, default_collate

from distill.data.base import as_distill_dataset, batch_of_one
from distill.engine.batches import channels_last, move_to
from distill.errors import DataError, DistillError, RecipeError
from distill.run.checkpoint import preserved_rng

_MODEL_ERRORS = (RuntimeError, ValueError, IndexError)


#: Items in a dry-pass batch: enough for BatchNorm in train mode and for set metrics, cheap at any image size.
DRY_BATCH = 4


def _first_batch(ds: Dataset, batch_size: int, key: str, batch_key: str) -> dict[str, Any]:
    items = [ds[i] for i in range(min(batch_size, DRY_BATCH, len(ds)))]  # type: ignore[arg-type]
    try:
        return default_collate(items)
    except RuntimeError as err:
        names = [str((item.get("meta") or {}).get("name", i)) for i, item in enumerate(items)]
        raise DataError(
            f"{key}: the items {', '.join(names[:4])} cannot be stacked into one batch ({str(err).splitlines()[0]}); "
            f"make them one size (a crop) or {batch_of_one(batch_key)}"
        ) from None


def _shape_of(batch: Mapping[str, Any]) -> str:
    x = batch.get("input")
    return "×".join(map(str, x.shape[1:])) if isinstance(x, torch.Tensor) else "?"


def _model_error(key: str, batch: Mapping[str, Any], err: BaseException) -> DataError:
    return DataError(
        f"{key}: the models cannot process its inputs of shape {_shape_of(batch)}: {str(err).splitlines()[0]}. "
        f"Use inputs the models accept (a larger crop or size in {key}.args) or other models"
    )


class _FrozenState:
    """Restores the global RNG and every buffer (e.g. BatchNorm statistics) of ``module`` on exit."""

    def __init__(self, module: nn.Module) -> None:
        self.module, self.rng = module, preserved_rng()

    def __enter__(self) -> None:
        self.buffers = {n: b.detach().clone() for n, b in self.module.named_buffers()}
        self.training = self.module.training
        self.rng.__enter__()

    def __exit__(self, *exc: object) -> None:
        with torch.no_grad():
            for name, buf in self.module.named_buffers():
                if name in self.buffers:
                    buf.copy_(self.buffers[name])
        self.module.train(self.training)
        self.rng.__exit__(*exc)


def dry_run(trainer: Any, report: Callable[[dict[str, Any]], object] | None = None) -> None:
    """One batch of every split through everything training, evaluation, reporting and export will call."""
    distiller, cfg, ev = trainer.distiller, trainer.config, trainer.evaluation
    step_fn = distiller.training_step

    def prepare(batch: dict[str, Any]) -> dict[str, Any]:
        batch = move_to(batch, trainer.device)
        return channels_last(batch) if cfg.channels_last else batch

    with _FrozenState(distiller):
        batch = prepare(_first_batch(trainer.train_set, cfg.batch_size, "data.train", "train.batch_size"))
        distiller.train()
        try:
            with torch.no_grad(), trainer.autocast():
                step_fn(batch)
        except _MODEL_ERRORS as err:
            raise _model_error("data.train", batch, err) from None
        results: dict[str, Any] = {}
        eval_bs = cfg.eval_batch_size or cfg.batch_size
        for split, ds in trainer.eval_sets.items():
            key, batch_key = f"data.eval.{split}", "train.eval_batch_size"
            batch = prepare(_first_batch(ds, eval_bs, key, batch_key))
            _check_group_by(ev.group_by, batch, key)
            distiller.eval()
            try:
                with torch.no_grad(), trainer.autocast():
                    distiller.eval_outputs(batch)
            except _MODEL_ERRORS as err:
                raise _model_error(key, batch, err) from None
            try:
                results[split] = trainer.evaluator.evaluate(distiller, [batch], trainer.device, trainer.autocast())
            except (ValueError, RuntimeError, TypeError, KeyError, IndexError) as err:
                raise RecipeError(
                    f"eval.metrics: {ev.metrics} cannot be computed on split '{split}' "
                    f"({type(err).__name__}: {str(err).splitlines()[0]}); choose metrics for this task"
                ) from None
        _check_selection(trainer, results)
        distiller.deployable()  # the exporter's model
    if report is not None:
        report(results)


def check_scoring(
    scorer: nn.Module, dataset: Dataset, evaluator: Any, batch_size: int, key: str, batch_key: str, device: Any
) -> None:
    """What ``distill eval`` checks before scoring ``dataset`` (``key`` names it in errors): the dataset's own size
    rules, then a small first batch through ``scorer.eval_outputs`` and ``evaluator``'s metrics, with the RNG and
    buffers left as they were. A model or metric that cannot take the data is one DistillError."""
    ds = as_distill_dataset(dataset)
    ds.check_sizes(key, batch_size, batch_key)
    batch = move_to(_first_batch(ds, batch_size, key, batch_key), device)
    with _FrozenState(scorer):
        scorer.eval()
        try:
            with torch.no_grad():
                scorer.eval_outputs(batch)  # type: ignore[operator]
        except _MODEL_ERRORS as err:
            raise DataError(
                f"{key}: the model cannot process its inputs of shape {_shape_of(batch)}: {str(err).splitlines()[0]}"
            ) from None
        try:
            evaluator.evaluate(scorer, [batch], device)
        except (ValueError, RuntimeError, TypeError, KeyError, IndexError) as err:
            raise DistillError(
                f"{key}: the metrics {', '.join(evaluator.metrics) or '(none)'} cannot be computed on it "
                f"({type(err).__name__}: {str(err).splitlines()[0]}); is it a dataset of the model's task?"
            ) from None


def _check_group_by(group_by: str | None, batch: Mapping[str, Any], key: str) -> None:
    if group_by is None:
        return
    meta = batch.get("meta")
    fields = sorted(meta) if isinstance(meta, Mapping) else []
    if group_by not in fields:
        raise RecipeError(
            f"eval.group_by: '{group_by}' is not a field of the items of {key} (they have: "
            f"{', '.join(fields) or 'none'}); choose one of those or null"
        )


def _check_selection(trainer: Any, results: Mapping[str, Any]) -> None:
    ev = trainer.evaluation
    if ev.selection != "best_val" or ev.select_split not in results:
        return
    role = trainer.selection.role
    roles = list(results[ev.select_split])
    if role not in roles:
        raise RecipeError(f"eval.select_model: '{role}' is not evaluated (evaluated: {', '.join(roles)})")
    metric = trainer.selection.metric
    if metric not in results[ev.select_split][role]["overall"]:
        raise RecipeError(f"eval.select_metric: '{metric}' is not in eval.metrics {ev.metrics}")


def check_run(run: Any) -> None:
    """Every check of this module on a built :class:`~distill.build.Run`; raises a one-line DistillError."""
    trainer, cfg = run.trainer, run.recipe.train
    sets = {"data.train": run.train_set, **{f"data.eval.{k}": v for k, v in run.eval_sets.items()}}
    sets = {key: as_distill_dataset(ds) for key, ds in sets.items()}
    for key, ds in sets.items():
        train = key == "data.train"
        bs = cfg.batch_size if train else (cfg.eval_batch_size or cfg.batch_size)
        ds.check_sizes(key, bs, "train.batch_size" if train else "train.eval_batch_size")  # the dataset's own rules
    run.task.check_run(run)  # the student's task: its own rules (labels for recognition …)

    def report(results: dict[str, Any]) -> None:
        from distill.run.folder import RunResult

        run.report(RunResult(results=results, selected_step=0, steps=0, out_dir=None))

    dry_run(trainer, report)
