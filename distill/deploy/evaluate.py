"""``distill eval MODEL DATASET…``: score any model on any dataset with its task's metrics, without training.

MODEL is a run's ``student.pt`` (or ``checkpoints/last.pt``), a run folder, ``zoo:NAME`` (a published model,
:mod:`distill.models.zoo`) or ``RECIPE.yaml:ROLE`` (the model a recipe builds for a role, with its ``pretrained``
weights). DATASET is

* a split of the model's own run (``test``), evaluated exactly as the run's final evaluation was: the recipe's
  dataset spec, metrics, metric args, grouping, evaluation batch size and SR self-ensemble, through the engine's
  :class:`~distill.engine.evaluator.Evaluator` (so the numbers are the ones in the run's ``results.json``);
* ``RECIPE.yaml:SPLIT``, a split of any recipe, with that recipe's evaluation settings;
* the name of a fetchable dataset (``set5``, ``tid2013``; its default root, as ``distill data fetch`` writes it) or
  ``NAME:ROOT`` (a registered reader on a folder), or a folder in an official layout (the model's task's readers
  are tried in turn). Such a set is scored whole (IQA: every image; SR: every pair at the model's scale; CUB: the
  test split) with the task's metrics: IQA SRCC, PLCC and PLCC after the 4- and 5-parameter logistic fits, SR
  BasicSR's Y-channel PSNR/SSIM with ``crop_border`` = scale on outputs rounded to 8 bits, recognition top-1.

The result is one table (a row per dataset) whose caption says, per dataset, whether it is real or a synthetic
stand-in, the split and n; a zoo model's published scores are printed beside ours with their source.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from distill.data.base import DistillDataset
from distill.distillers.base import Batch, Distiller
from distill.engine.evaluator import Evaluator
from distill.errors import DataError, DistillError, first_line
from distill.recipe.config import ComponentSpec, DataConfig, EvalConfig, Recipe
from distill.registry import spec_of
from distill.report.tables import group_table, metric_cell, metric_header, table
from distill.run.folder import Results
from distill.run.layout import RunFolder
from distill.tasks import PredictOptions, Task

__all__ = ["EvalSet", "ModelRef", "evaluate", "load_model", "render", "resolve_dataset", "run_eval", "to_json"]


@dataclass
class ModelRef:
    """A model to score and what the report says about it."""

    model: nn.Module
    label: str
    task: Task  # the task its registration names (deploy.model.deployable_task)
    recipe: Recipe | None = None  # the run's recipe (its own splits) or the recipe that named the role
    own_run: bool = False  # the recipe is the run that trained this very model
    self_ensemble: bool = False
    published: dict[str, dict[str, float]] = field(default_factory=dict)  # dataset → metric → value
    published_source: str = ""


@dataclass
class EvalSet:
    """One dataset to score, with the evaluation settings that apply to it."""

    label: str
    dataset: DistillDataset
    spec: ComponentSpec
    evaluation: EvalConfig
    batch_size: int
    origin: str  # "the run's own split", "recipe x.yaml", "dataset"


@dataclass
class EvalRow:
    set: EvalSet
    results: Results  # {"overall": {...}, "n": n, ["groups": {...}]}
    published: dict[str, float] = field(default_factory=dict)


# ----------------------------------------------------------------------------------------------------- models
def _recipe_ref(text: str) -> tuple[Path, str] | None:
    """``x.yaml:NAME`` → (file, NAME) when the file part names a YAML file."""
    head, sep, name = text.rpartition(":")
    if sep and name and head.lower().endswith((".yaml", ".yml")):
        return Path(head), name
    return None


def _scale(model: nn.Module) -> int | None:
    spec = spec_of(model) or {}
    scale = (spec.get("args") or {}).get("upscale", getattr(model, "upscale", None))
    return int(scale) if scale is not None else None


def _published(row: Any) -> tuple[dict[str, dict[str, float]], str]:
    """A zoo row's published scores ``{dataset: {metric: value}}`` and their source."""
    raw = getattr(row, "published", None) or {}
    source = str(getattr(row, "published_source", "") or "")
    scores: dict[str, dict[str, float]] = {}
    for key, value in dict(raw).items():
        if isinstance(value, Mapping):
            nums = {m: float(v) for m, v in value.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
            scores[str(key)] = nums
            source = source or str(value.get("source", ""))
        elif key == "source":
            source = str(value)
    return scores, source or "the zoo table (distill/models/zoo.py)"


def load_model(ref: str, self_ensemble: bool | None = None) -> ModelRef:
    """Resolve MODEL: a model file, a run folder, ``zoo:NAME`` or ``RECIPE.yaml:ROLE``."""
    from distill.deploy.model import deployable_task, load_deployable

    if ref.startswith("zoo:"):
        from distill.models import zoo

        name = ref[4:]
        model, _ = load_deployable(zoo.resolve_zoo(name))
        row = zoo.ZOO.get(name)
        published, source = _published(row) if row is not None else ({}, "")
        return ModelRef(model, ref, deployable_task(model), None, False, bool(self_ensemble), published, source)
    recipe_ref = _recipe_ref(ref)
    if recipe_ref is not None:
        from distill.build import build_model
        from distill.recipe.check import load_recipe

        path, role = recipe_ref
        recipe, _ = load_recipe(path)
        if role not in recipe.models:
            raise DistillError(f"{ref}: the recipe has no model '{role}'; its models: {', '.join(recipe.models)}")
        model = build_model(recipe.models[role]).eval()
        ensemble = self_ensemble if self_ensemble is not None else bool(recipe.distiller.args.get("self_ensemble"))
        return ModelRef(model, ref, deployable_task(model), recipe, False, ensemble)
    path = Path(ref)
    if path.is_dir():
        if not RunFolder(path).student.is_file():
            raise DistillError(f"{ref}: a folder without student.pt (a run that has not finished?); give a model file")
        path = RunFolder(path).student
    elif not path.is_file():
        raise DistillError(f"{ref}: no such model file or run folder (or zoo:NAME, or RECIPE.yaml:ROLE)")
    model, state = load_deployable(path)
    recipe = None
    if state.get("recipe"):
        from distill.recipe.check import recipe_from_dict

        recipe = recipe_from_dict(dict(state["recipe"]), source=str(path))
    ensemble = self_ensemble
    if ensemble is None:
        ensemble = bool(recipe.distiller.args.get("self_ensemble")) if recipe is not None else False
    return ModelRef(model, str(path), deployable_task(model), recipe, recipe is not None, ensemble)


# --------------------------------------------------------------------------------------------------- datasets
def _task_evaluation(ref: ModelRef) -> EvalConfig:
    """What the model's task scores on a dataset from outside any recipe (``Task.score_evaluation``)."""
    return ref.task.score_evaluation(ref.model)


def _recipe_evaluation(recipe: Recipe, model: nn.Module) -> EvalConfig:
    from distill.tasks import resolve_metrics

    return resolve_metrics(recipe.eval, model)


def _build(spec: ComponentSpec, data: DataConfig | None = None) -> DistillDataset:
    from distill.build import build_dataset

    return build_dataset(spec, data or DataConfig(train=spec))


def _reader_args(ref: ModelRef, reader: str, view_args: Mapping[str, Any]) -> dict[str, Any]:
    args = dict(view_args)
    if reader in ("sr_benchmark", "div2k"):
        scale = _scale(ref.model)
        if scale is None:
            if not ref.task.image_outputs:  # an IQA or recognition model given an SR dataset
                raise DistillError(
                    f"{reader}: a super-resolution dataset, but {ref.label} is a model of the task {ref.task.name!r}; "
                    "score it on a dataset of its own task"
                )
            raise DistillError(f"{ref.label}: an SR model without a known scale (its spec has no 'upscale')")
        args["scale"] = scale
        args.pop("lr", None)  # LR files when the folder has them, else BasicSR's bicubic from HR
        if reader == "div2k":
            args["split"] = "valid"
    return args


def _named_dataset(ref: ModelRef, name: str, root: str | None, bs: int) -> EvalSet:
    from distill.data.fetch import SOURCES
    from distill.registry import DATASETS

    source = SOURCES.get(name)
    if source is not None:
        reader = source.reader
        views = dict(source.views)
        view = next((views[v] for v in ("test", "all") if v in views), next(iter(views.values())))
        root = root or source.default_root
    elif name in DATASETS.names():
        reader, view = name, {}
        if root is None:
            raise DistillError(f"{name}: a reader without a default folder; give one as {name}:ROOT")
    else:
        raise DistillError(
            f"{name}: not a dataset name, a split of the model's run, RECIPE.yaml:SPLIT or a folder; fetchable "
            f"names: {', '.join(SOURCES)}; readers: {', '.join(DATASETS.names())}"
        )
    if not Path(root).exists():
        hint = f"; fetch it with `distill data fetch {name} {root}`" if source is not None else ""
        raise DataError(f"{name}: no folder {root}{hint}")
    spec = ComponentSpec(reader, {"root": str(root), **_reader_args(ref, reader, view)})
    return _foreign(ref, name if source is not None else Path(root).name, spec, bs)


def _foreign(ref: ModelRef, label: str, spec: ComponentSpec, bs: int) -> EvalSet:
    dataset = _build(spec)
    origin = f"the {ref.task.name} task's metrics"
    return EvalSet(label, dataset, spec, _task_evaluation(ref), ref.task.eval_batch_size(bs), origin)


def _folder_dataset(ref: ModelRef, folder: Path, bs: int) -> EvalSet:
    tried = []
    for reader, view in ref.task.folder_readers:
        spec = ComponentSpec(reader, {"root": str(folder), **_reader_args(ref, reader, view)})
        try:
            return _foreign(ref, folder.name, spec, bs)
        except DataError as err:
            tried.append(f"{reader}: {first_line(err)}")
    raise DataError(f"{folder}: no {ref.task.name} reader opens it ({'; '.join(tried) or 'no reader for the task'})")


def resolve_dataset(ref: ModelRef, text: str, batch_size: int = 16) -> EvalSet:
    """Resolve one DATASET argument (see the module docstring) for the model ``ref``."""
    if ref.recipe is not None and ref.own_run and text in ref.recipe.data.eval:
        recipe = ref.recipe
        spec = recipe.data.eval[text]
        bs = recipe.train.eval_batch_size or recipe.train.batch_size
        dataset = _build(spec, recipe.data)
        return EvalSet(text, dataset, spec, _recipe_evaluation(recipe, ref.model), bs, "the run's own split")
    recipe_ref = _recipe_ref(text)
    if recipe_ref is not None:
        from distill.recipe.check import load_recipe

        path, split = recipe_ref
        recipe, _ = load_recipe(path)
        if split not in recipe.data.eval:
            raise DistillError(
                f"{text}: the recipe has no eval split '{split}'; its splits: {', '.join(recipe.data.eval)}"
            )
        spec = recipe.data.eval[split]
        bs = recipe.train.eval_batch_size or recipe.train.batch_size
        evaluation = _recipe_evaluation(recipe, ref.model)
        return EvalSet(split, _build(spec, recipe.data), spec, evaluation, bs, f"recipe {path}")
    name, sep, root = text.partition(":")
    if Path(text).is_dir() and not sep:
        return _folder_dataset(ref, Path(text), batch_size)
    if ref.recipe is not None and ref.own_run and not sep and "/" not in text and text.isidentifier():
        from distill.data.fetch import SOURCES

        if text not in SOURCES:
            raise DistillError(
                f"{text}: not a split of the model's run (its splits: {', '.join(ref.recipe.data.eval)}), nor a "
                f"dataset name ({', '.join(SOURCES)}), nor a folder"
            )
    return _named_dataset(ref, name, root or None, batch_size)


# ------------------------------------------------------------------------------------------------- evaluating
class _Scored(Distiller):
    """One model as the engine evaluates it: its outputs as its task computes them (``Task.eval_forward``: SR
    through ``super_resolve`` with window padding, ensemble and tiles), saved into ``save`` when given."""

    roles = ("model",)
    student_role = "model"

    def __init__(self, model: nn.Module, task: Task, opts: PredictOptions, save: Path | None) -> None:
        super().__init__({"model": model})
        self.task, self.opts, self.save = task, opts, save

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        raise DistillError("distill eval scores a model; it does not train it")

    @torch.no_grad()
    def eval_outputs(self, batch: Batch) -> dict[str, torch.Tensor]:
        out = self.task.eval_forward(self.models["model"], batch["input"], self.opts)
        if self.save is not None:
            self.task.save_outputs(out, batch, self.save)
        return {"model": out}


def evaluate(
    ref: ModelRef,
    sets: Sequence[EvalSet],
    device: str = "cpu",
    tile: int | None = None,
    tile_overlap: int = 32,
    save_images: str | Path | None = None,
) -> list[EvalRow]:
    """Score ``ref.model`` on every set through the engine's :class:`Evaluator` (RNG-neutral, no training)."""
    from distill.run.checkpoint import preserved_rng

    opts = PredictOptions(device=device, self_ensemble=ref.self_ensemble, progress=False, tile=tile,
                          tile_overlap=tile_overlap)  # fmt: skip
    folders = {}
    if save_images is not None:
        for s in sets:
            folder = Path(save_images) / s.label
            if folder.exists() and any(folder.iterdir()):
                raise DistillError(f"--save-images: {folder} is not empty; choose another folder (nothing overwritten)")
            folders[s.label] = folder
    dev = torch.device(device)
    from distill.engine.preflight import check_scoring

    for s in sets:  # every set checked before any is scored: a bad one fails in seconds, in one line
        ev = s.evaluation
        check_scoring(_Scored(ref.model, ref.task, opts, None).to(dev), s.dataset,
                      Evaluator(ev.metrics or [], ev.metric_args, ev.group_by), s.batch_size,
                      f"dataset {s.label}", "--batch-size", dev)  # fmt: skip
    rows = []
    for s in sets:
        scored = _Scored(ref.model, ref.task, opts, folders.get(s.label)).to(dev)
        ev = s.evaluation
        evaluator = Evaluator(ev.metrics or [], ev.metric_args, ev.group_by)
        loader = DataLoader(s.dataset, batch_size=s.batch_size, shuffle=False, num_workers=0)
        with preserved_rng():
            results = evaluator.evaluate(scored, loader, dev)["model"]
        published = _match_published(ref, s)
        rows.append(EvalRow(s, results, published))
    return rows


def _match_published(ref: ModelRef, s: EvalSet) -> dict[str, float]:
    names = {s.label.lower(), Path(str(s.spec.args.get("root", ""))).name.lower()}
    for key, scores in ref.published.items():
        if key.lower() in names:
            return scores
    return {}


# -------------------------------------------------------------------------------------------------- reporting
def _describe(s: EvalSet) -> str:
    ds = s.dataset
    kind = f"SYNTHETIC ({ds.synthetic_note})" if ds.is_synthetic else "real"
    split_args = {k: v for k, v in s.spec.args.items() if k.startswith("split") or k.endswith("fraction")}
    split = json.dumps(split_args) if split_args else "whole set"
    root = ds.root if ds.root is not None else s.spec.args.get("root", "?")
    return f"{s.label}: {s.spec.name} [{kind}] at {root} | split {split} n={len(ds)} | {s.origin}"


def render(ref: ModelRef, rows: Sequence[EvalRow], tile: int | None = None, tile_overlap: int = 32) -> str:
    """The table: a row per dataset, its metrics, n and the published scores beside ours."""
    metrics = list(dict.fromkeys(m for r in rows for m in r.results["overall"]))
    published = [m for m in metrics if any(m in r.published for r in rows)]
    how = [f"task {ref.task.name}"]
    if ref.self_ensemble:
        how.append("x8 self-ensemble")
    if tile is not None:
        how.append(f"tiles {tile} px, overlap {tile_overlap}")
    caption = [f"distill eval {ref.label} ({', '.join(how)})", *(f"  {_describe(r.set)}" for r in rows)]
    headers = ["dataset"]
    for m in metrics:
        headers.append(metric_header(m))
        if m in published:
            headers.append(f"{metric_header(m)} published")
    headers.append("n")
    body = []
    for r in rows:
        cells: list[Any] = [r.set.label]
        for m in metrics:
            cells.append(metric_cell(m, r.results["overall"].get(m)))
            if m in published:
                cells.append(metric_cell(m, r.published.get(m)))
        body.append([*cells, r.results["n"]])
    lines = [table(headers, body, "\n".join(caption))]
    if published:
        lines.append(f"published: {ref.published_source}")
    for r in rows:
        if "groups" in r.results:
            names = r.set.dataset.group_names
            ev = r.set.evaluation
            caption_g = f"per {ev.group_by} ({r.set.label})"
            lines.extend(["", group_table({"model": r.results}, list(ev.metrics or []), names, caption_g)])
    return "\n".join(lines)


def to_json(ref: ModelRef, rows: Sequence[EvalRow], tile: int | None = None, tile_overlap: int = 32) -> dict[str, Any]:
    """What ``--json`` writes: the model, how it was run and, per dataset, its description, results and published
    scores."""
    out = []
    for r in rows:
        ds = r.set.dataset
        out.append(
            {
                "label": r.set.label,
                "dataset": r.set.spec.name,
                "args": r.set.spec.args,
                "root": str(ds.root) if ds.root is not None else None,
                "synthetic": bool(ds.is_synthetic),
                "n": r.results["n"],
                "origin": r.set.origin,
                "metrics": r.set.evaluation.metrics,
                "metric_args": r.set.evaluation.metric_args,
                "results": r.results,
                "published": r.published,
            }
        )
    return {
        "model": ref.label,
        "task": ref.task.name,
        "self_ensemble": ref.self_ensemble,
        "tile": tile,
        "tile_overlap": tile_overlap if tile is not None else None,
        "published_source": ref.published_source if any(r.published for r in rows) else None,
        "datasets": out,
    }


def run_eval(
    model: str,
    datasets: Sequence[str],
    *,
    device: str = "cpu",
    batch_size: int = 16,
    tile: int | None = None,
    tile_overlap: int = 32,
    self_ensemble: bool | None = None,
    save_images: str | Path | None = None,
) -> tuple[ModelRef, list[EvalRow]]:
    """Resolve MODEL and every DATASET, then score: what ``distill eval`` does before printing."""
    if batch_size < 1:
        raise DistillError(f"--batch-size {batch_size}: expected a positive integer")
    ref = load_model(model, self_ensemble)
    from distill.deploy.model import check_image_options

    check_image_options(model, ref.task, tile=tile, self_ensemble=self_ensemble, save_images=save_images)
    ref.task.check_eval_options(ref.model, PredictOptions(tile=tile, tile_overlap=tile_overlap))
    if not datasets:
        if ref.recipe is None or not ref.own_run or not ref.recipe.data.eval:
            raise DistillError(f"{model}: name the datasets to score it on (a folder, a dataset name, RECIPE:SPLIT)")
        datasets = list(ref.recipe.data.eval)
    sets = [resolve_dataset(ref, text, batch_size) for text in datasets]
    labels = [s.label for s in sets]
    if len(set(labels)) < len(labels):
        raise DistillError(f"datasets {', '.join(labels)}: two have the same name; score them in separate commands")
    return ref, evaluate(ref, sets, device, tile, tile_overlap, save_images)
