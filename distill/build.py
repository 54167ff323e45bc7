"""From a validated recipe to live objects — the same objects the Python API builds by hand."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn
from torch.utils.data import Dataset

from distill.config import ComponentSpec, DataConfig, Recipe
from distill.distillers.base import Distiller
from distill.engine import distributed, preflight
from distill.engine.trainer import RunResult, Trainer, resolve_device, seed_everything
from distill.iqa_analysis import hardest_and_easiest, plot_per_distortion
from distill.paths import check_output_dir
from distill.recipe import dump_recipe, load_recipe, recipe_to_dict
from distill.registry import DATASETS, DISTILLERS, MODELS, WRITERS
from distill.report import group_table, overall_table

_log = logging.getLogger(__name__)


def build_model(spec: ComponentSpec) -> nn.Module:
    """Build a registered model; the spec is attached so exported students can be rebuilt by name."""
    model = MODELS.build(spec.name, **spec.args)
    model.distill_spec = {"name": spec.name, "args": dict(spec.args)}
    return model


def build_distiller(recipe: Recipe) -> Distiller:
    models = {role: build_model(spec) for role, spec in recipe.models.items()}
    return DISTILLERS.get(recipe.distiller.name)(models=models, **recipe.distiller.args)


def ensure_data(data: DataConfig) -> None:
    """Write the recipe's synthetic stand-in when ``data.synthetic`` is set and its root does not exist yet."""
    if data.root is not None and data.synthetic is not None and not Path(data.root).exists():
        _log.warning("writing a synthetic %s stand-in to %s", data.synthetic.name, data.root)
        WRITERS.build(data.synthetic.name, out=str(data.root), **data.synthetic.args)


def build_dataset(spec: ComponentSpec, data: DataConfig) -> Dataset:
    args = dict(spec.args)
    if data.root is not None:
        args.setdefault("root", data.root)
    return DATASETS.build(spec.name, **args)


@dataclass
class Run:
    """A recipe turned into a ready trainer, plus what the report needs to say where numbers come from."""

    recipe: Recipe
    resolved: dict[str, Any]
    trainer: Trainer
    train_set: Dataset
    eval_sets: dict[str, Dataset]
    out_dir: Path

    def caption(self, split: str) -> str:
        """Dataset (real or synthetic), split, seed and selection policy of the numbers of ``split``."""
        ds = self.eval_sets[split]
        spec = self.recipe.data.eval[split]
        synthetic = getattr(ds, "is_synthetic", False)
        note = getattr(ds, "synthetic_note", "a synthetic stand-in, not the real dataset")
        kind = f"SYNTHETIC ({note})" if synthetic else "real"
        split_args = {k: v for k, v in spec.args.items() if k.startswith("split") or k.endswith("fraction")}
        ev = self.recipe.eval
        selection = "last evaluation" if ev.selection == "last" else f"best {ev.select_split} {ev.select_metric}"
        return (
            f"{self.recipe.name} | dataset: {spec.name} [{kind}] at {getattr(ds, 'root', '?')} | split '{split}' "
            f"{json.dumps(split_args)} n={len(ds)} | seed {self.recipe.train.seed} | selection: {selection}"  # type: ignore[arg-type]
        )

    def write_plots(self, result: RunResult) -> list[Path]:
        """Per-distortion violin plots (paper Fig. 1) for each grouped split, when matplotlib is installed."""
        if not self.recipe.eval.group_by:
            return []
        written = []
        for split in result.results:
            names = getattr(self.eval_sets[split], "distortion_names", None)
            metric = self.recipe.eval.metrics[0]
            path = plot_per_distortion(
                result.history, split, self.out_dir / f"per_{self.recipe.eval.group_by}_{split}.png", metric, names
            )
            if path is not None:
                written.append(path)
        return written

    def report(self, result: RunResult) -> str:
        lines = []
        for split, res in result.results.items():
            lines.append(overall_table(res, split, self.caption(split)))
            if self.recipe.eval.group_by:
                ds = self.eval_sets[split]
                names = getattr(ds, "group_names", None) or getattr(ds, "distortion_names", None)
                metrics = [m for m in self.recipe.eval.metrics if m in ("srcc", "plcc")] or self.recipe.eval.metrics
                lines.append("")
                lines.append(group_table(res, metrics, names, f"per {self.recipe.eval.group_by} ({split})"))
                for role, role_res in res.items():
                    hard, easy = hardest_and_easiest(role_res.get("groups", {}), metrics[0])
                    lines.append(
                        f"{role}: hardest {', '.join(_named(k, names) for k in hard)}; "
                        f"easiest {', '.join(_named(k, names) for k in easy)} (by {metrics[0]})"
                    )
            lines.append("")
        return "\n".join(lines)


def _named(key: str, names: dict[str, str] | None) -> str:
    return f"{key} {names[key]}" if names and key in names else key


def build_run(recipe: Recipe, resolved: dict[str, Any] | None = None, out: str | Path | None = None) -> Run:
    """Seed, write synthetic data if asked, build datasets, models, distiller and the trainer."""
    resolved = resolved or recipe_to_dict(recipe)
    seed_everything(recipe.train.seed, recipe.train.deterministic)
    distributed.init_distributed(resolve_device(recipe.train.device))  # no-op outside torchrun
    if distributed.is_main():  # one process writes the synthetic stand-in, the others wait for it
        ensure_data(recipe.data)
    distributed.barrier()
    train_set = build_dataset(recipe.data.train, recipe.data)
    eval_sets = {split: build_dataset(spec, recipe.data) for split, spec in recipe.data.eval.items()}
    seed_everything(recipe.train.seed, recipe.train.deterministic)  # model init independent of data building
    distiller = build_distiller(recipe)
    out_dir = Path(out) if out else Path(recipe.output.dir.format(name=recipe.name))
    check_output_dir(out_dir, "--out" if out else "output.dir")
    trainer = Trainer(
        distiller,
        train_set,
        eval_sets,
        optim=recipe.optim,
        config=recipe.train,
        evaluation=recipe.eval,
        out_dir=out_dir,
        recipe=resolved,
        tensorboard=recipe.output.tensorboard,
    )
    run = Run(recipe, resolved, trainer, train_set, eval_sets, out_dir)
    preflight.check_run(run)  # everything training, evaluation and the report need, before step 1
    return run


def run_recipe(
    path: str | Path, overrides: list[str] | tuple[str, ...] = (), out: str | Path | None = None, resume: bool = False
) -> tuple[Run, RunResult]:
    """Load a recipe file and train it: what ``distill run`` does."""
    recipe, resolved = load_recipe(path, overrides)
    run = build_run(recipe, resolved, out)
    if not resume and distributed.is_main():
        ckpt = run.out_dir / "checkpoints" / "last.pt"
        if not ckpt.exists():
            run.out_dir.mkdir(parents=True, exist_ok=True)
            dump_recipe(resolved, run.out_dir / "recipe.yaml")
    result = run.trainer.fit(resume=resume)
    return run, result
