"""From a validated recipe to live objects — the same objects the Python API builds by hand."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from torch import nn

from distill.data.base import DistillDataset, as_distill_dataset
from distill.data.synthetic_common import blame_args
from distill.distillers.base import Distiller
from distill.engine import distributed, preflight
from distill.engine.outputs import holding_run_folder
from distill.engine.runtime import resolve_device, seed_everything
from distill.engine.trackers import check_trackers, tensorboard_setting
from distill.engine.trainer import Trainer
from distill.errors import DataError, RecipeError
from distill.models.weights import WeightsError
from distill.recipe.check import dump_recipe, load_recipe, recipe_to_dict
from distill.recipe.config import ComponentSpec, DataConfig, Recipe
from distill.registry import DATASETS, DISTILLERS, MODELS, WRITERS, set_spec
from distill.run.checkpoint import preserved_rng
from distill.run.folder import RunResult
from distill.run.layout import RunFolder
from distill.run.paths import check_output_dir
from distill.run.safe_write import check_run_folder, clear_run_files
from distill.tasks import Task, resolve_metrics, task_of

_log = logging.getLogger(__name__)


def build_model(spec: ComponentSpec) -> nn.Module:
    """Build a registered model; the spec is attached so exported students can be rebuilt by name."""
    model = MODELS.build(spec.name, **spec.args)
    set_spec(model, spec.name, spec.args)
    return model


def _maker_hint(recipe: Recipe, value: Any) -> str:
    """For a missing weights file that another recipe's run writes (``runs/<name>/student.pt``): which one."""
    if not isinstance(value, str) or Path(value).exists():
        return ""
    from distill.recipe.files import SHIPPED_RECIPES, recipe_that_writes

    shipped = SHIPPED_RECIPES
    folders = [Path(recipe.source).parent] if recipe.source else []
    maker = recipe_that_writes(value, [*folders, shipped])
    if maker is None:
        return ""
    shown = os.path.relpath(maker) if not os.path.relpath(maker).startswith("..") else str(maker)
    return f". It is written by `distill run {shown}`: run that recipe first"


def build_distiller(recipe: Recipe) -> Distiller:
    models = {}
    for role, spec in recipe.models.items():
        try:
            models[role] = build_model(spec)
        except WeightsError as err:  # name the recipe key that gave the file, and the recipe that writes it
            raise WeightsError(f"models.{role}.args.{err.arg}: {err}{_maker_hint(recipe, spec.args.get(err.arg))}",
                               err.arg) from None  # fmt: skip
        except ValueError as err:  # a model's own argument check (e.g. head_init_std <= 0): the recipe's value
            raise RecipeError(f"models.{role} ({spec.name}): {err}") from None
    return DISTILLERS.get(recipe.distiller.name)(models=models, **recipe.distiller.args)


def ensure_data(data: DataConfig, source: str | None = None) -> None:
    """Write the recipe's synthetic stand-in when ``data.synthetic`` is set, ``data.root`` is the folder it declares
    (``data.synthetic.root``) and that folder does not exist yet. Any other missing ``data.root`` (a typo, a
    ``--set``, a copied recipe's new path) is one :class:`DataError` naming the folder and the fetch command: it is
    never filled with synthetic data. A value the writer refuses is named by its recipe key (and ``source``, the
    recipe file)."""
    if data.root is None or data.synthetic is None or Path(data.root).exists():
        return
    declared = data.synthetic.root
    if declared is None or os.path.abspath(declared) != os.path.abspath(data.root):
        from distill.data.fetch import SOURCES

        fetch = next((s.name for s in SOURCES.values() if s.reader == data.train.name), None)
        get = f"`distill data fetch {fetch} {data.root}`" if fetch else "`distill data fetch` (lists the datasets)"
        where = f"only to {declared} (data.synthetic.root)" if declared else "only to data.synthetic.root, unset here"
        raise DataError(
            f"data.root {data.root}: no such folder, and nothing was written (the recipe's synthetic "
            f"{data.synthetic.name} stand-in is written {where}). Get the real data with {get}, write a synthetic set "
            f"there on purpose with `distill data {data.synthetic.name} {data.root}`, or correct the path"
        )
    _log.warning("writing a synthetic %s stand-in to %s", data.synthetic.name, data.root)
    try:
        WRITERS.build(data.synthetic.name, out=str(data.root), **data.synthetic.args)
    except DataError as err:
        file = f"{source}: " if source else ""
        raise blame_args(err, data.synthetic.args, lambda k, _: f"{file}data.synthetic.args.{k}") from None


def build_dataset(spec: ComponentSpec, data: DataConfig) -> DistillDataset:
    args = dict(spec.args)
    if data.root is not None:
        args.setdefault("root", data.root)
    return as_distill_dataset(DATASETS.build(spec.name, **args))


@dataclass
class Run:
    """A recipe turned into a ready trainer, plus what the report needs to say where numbers come from (the one
    implementation of :class:`distill.report.view.RunView`)."""

    recipe: Recipe
    resolved: dict[str, Any]
    trainer: Trainer
    train_set: DistillDataset
    eval_sets: dict[str, DistillDataset]
    out_dir: Path

    def caption(self, split: str) -> str:
        """Dataset (real or synthetic), split, seed and selection policy of the numbers of ``split``."""
        ds = self.eval_sets[split]
        spec = self.recipe.data.eval[split]
        kind = f"SYNTHETIC ({ds.synthetic_note})" if ds.is_synthetic else "real"
        split_args = {k: v for k, v in spec.args.items() if k.startswith("split") or k.endswith("fraction")}
        ev = self.recipe.eval
        best = f"best {ev.select_split} {self.trainer.selection.metric}"  # select_metric, else the first metric
        selection = "last evaluation" if ev.selection == "last" else best
        root = ds.root if ds.root is not None else "?"
        return (
            f"{self.recipe.name} | dataset: {spec.name} [{kind}] at {root} | split '{split}' "
            f"{json.dumps(split_args)} n={len(ds)} | seed {self.recipe.train.seed} | selection: {selection}"  # type: ignore[arg-type]
        )

    @property
    def task(self) -> Task:
        """The task of the run's deployable model (its report, plots and predictions)."""
        return task_of(self.trainer.distiller.deployable())

    def write_plots(self, result: RunResult) -> list[Path]:
        """The task's figures (per-distortion violin plots, paper Fig. 1, for grouped IQA splits)."""
        return self.task.plots(self, result)

    def role_label(self, role: str) -> str:
        """A single-model run (e.g. training a teacher for a later distillation) calls its model "model"."""
        return "model" if len(self.trainer.distiller.roles) == 1 else role

    def report(self, result: RunResult) -> str:
        """The printed tables of the run, as the task reports them."""
        return self.task.report(self, result)


def build_distiller_local_main_first(recipe: Recipe) -> Distiller:
    """:func:`build_distiller`, local rank 0 of each node first: it downloads any missing pretrained weights into the
    node's cache while the node's other ranks wait, then they build from the cache (no-op ordering outside
    torchrun). Every rank passes the barrier exactly once."""
    first = distributed.is_local_main()
    if not first:
        distributed.barrier()
    distiller = build_distiller(recipe)
    if first:
        distributed.barrier()
    return distiller


def build_run(recipe: Recipe, resolved: dict[str, Any] | None = None, out: str | Path | None = None) -> Run:
    """Seed, write synthetic data if asked, build datasets, models, distiller and the trainer."""
    resolved = resolved or recipe_to_dict(recipe)
    seed_everything(recipe.train.seed, recipe.train.deterministic)
    distributed.init_distributed(resolve_device(recipe.train.device))  # no-op outside torchrun
    # the models first: a model argument they refuse is an error before a first-use synthetic set is written
    distiller = build_distiller_local_main_first(recipe)
    with preserved_rng():  # data is built from the seed and leaves the RNG where the model build left it
        seed_everything(recipe.train.seed, recipe.train.deterministic)
        if distributed.is_main():  # one process writes the synthetic stand-in, the others wait for it
            ensure_data(recipe.data, recipe.source)
        distributed.barrier()
        train_set = build_dataset(recipe.data.train, recipe.data)
        eval_sets = {split: build_dataset(spec, recipe.data) for split, spec in recipe.data.eval.items()}
    out_dir = Path(out) if out else Path(recipe.output.dir.format(name=recipe.name))
    check_output_dir(out_dir, "--out" if out else "output.dir")
    if distributed.is_main():
        check_trackers(recipe.output)  # a tracker's missing extra is one line before anything trains
    if eval_sets and recipe.eval.metrics is None:  # eval.metrics null: the student's task's default, resolved once
        recipe.eval = resolve_metrics(recipe.eval, distiller.deployable())
        resolved["eval"]["metrics"] = recipe.eval.metrics
    trainer = Trainer(
        distiller,
        train_set,
        eval_sets,
        optim=recipe.optim,
        config=recipe.train,
        evaluation=recipe.eval,
        out_dir=out_dir,
        recipe=resolved,
        tensorboard=tensorboard_setting(recipe.output),
        output=recipe.output,
    )
    run = Run(recipe, resolved, trainer, train_set, eval_sets, out_dir)
    trainer.before_results.append(lambda result: _write_report_data(run, result.steps))
    preflight.check_run(run)  # everything training, evaluation and the report need, before step 1
    return run


def run_recipe(
    path: str | Path,
    overrides: list[str] | tuple[str, ...] = (),
    out: str | Path | None = None,
    resume: bool | Literal["auto"] = False,
    force: bool = False,
) -> tuple[Run, RunResult]:
    """Load a recipe file and train it: what ``distill run`` does. ``resume="auto"`` continues the run folder's
    checkpoint when it has one and starts afresh otherwise (``--auto-resume``, sweeps). The run folder is checked
    before any work (:func:`distill.run.safe_write.check_run_folder`); ``force`` starts afresh in another run's place,
    deleting that run's files once the new run has passed its checks."""
    recipe, resolved = load_recipe(path, overrides)
    out_dir = Path(out) if out else Path(recipe.output.dir.format(name=recipe.name))
    check_run_folder(out_dir, "--out" if out else "output.dir", resume=resume, force=force)
    run = build_run(recipe, resolved, out)
    with holding_run_folder(run.out_dir, run.trainer.dist):  # before anything in the folder changes
        if force and not resume:
            if distributed.is_main():
                clear_run_files(run.out_dir)
            distributed.barrier()  # no rank opens the folder before the old run's files are gone
        if resume == "auto":
            resume = RunFolder(run.out_dir).last.exists()
        if not resume and distributed.is_main() and not RunFolder(run.out_dir).last.exists():
            run.out_dir.mkdir(parents=True, exist_ok=True)
            dump_recipe(resolved, RunFolder(run.out_dir).recipe)
        result = run.trainer.fit(resume=resume)
    return run, result


def _write_report_data(run: Run, steps: int) -> None:
    """Per-sample predictions and SR crops for ``distill report``, saved before ``results.json`` marks the run
    finished, so a finished run (one a sweep skips) always has them."""
    from distill.report.data import write_report_data

    write_report_data(run, steps)
