"""Repeat a recipe over seeds (and splits) and aggregate: mean ± std and median of every reported number.

Each repeat ``k`` runs the recipe with ``train.seed = seeds[k]`` and, when ``vary_split`` is set, every dataset's
``split_seed`` set to the same value — the N-random-splits protocol of IQA papers. Repeats run through the same
:func:`~distill.build.run_recipe` as ``distill run``; a finished repeat is reused (its ``results.json`` is read)
so an interrupted series continues where it stopped. Under a sweep (:mod:`distill.sweep`) missing repeats go to
a launcher (parallel processes or SLURM jobs) instead of training in this process.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distill.build import run_recipe
from distill.recipe import load_recipe, signature_of
from distill.registry import DATASETS
from distill.sweep import RunSpec, current_wave, is_complete


@dataclass
class Aggregate:
    """Mean, standard deviation (sample, n-1), median and the raw values of one number over repeats."""

    values: list[float]
    mean: float = field(init=False)
    std: float = field(init=False)
    median: float = field(init=False)

    def __post_init__(self) -> None:
        finite = [v for v in self.values if v == v]
        self.mean = statistics.fmean(finite) if finite else float("nan")
        self.std = statistics.stdev(finite) if len(finite) > 1 else 0.0 if finite else float("nan")
        self.median = statistics.median(finite) if finite else float("nan")

    def __str__(self) -> str:
        return f"{self.mean:.4f} ± {self.std:.4f}"


def split_overrides(recipe_path: str | Path, seed: int, vary_split: bool, overrides: Sequence[str] = ()) -> list[str]:
    """``--set`` overrides that put a repeat on ``seed`` (and on split ``seed`` for every dataset)."""
    sets = [f"train.seed={seed}"]
    if vary_split:
        recipe, _ = load_recipe(recipe_path, overrides)
        specs = {"data.train": recipe.data.train, **{f"data.eval.{k}": v for k, v in recipe.data.eval.items()}}
        for key, spec in specs.items():
            if "split_seed" in signature_of(DATASETS.get(spec.name))[0]:
                sets.append(f"{key}.args.split_seed={seed}")
    return sets


def run_repeats(
    recipe_path: str | Path,
    seeds: Sequence[int],
    out_root: str | Path,
    overrides: Sequence[str] = (),
    vary_split: bool = True,
) -> list[dict[str, Any]]:
    """Run (or reuse) one repeat per seed under ``out_root/seed{k}``; returns each repeat's ``results.json``."""
    runs = []
    wave = current_wave()
    for seed in seeds:
        out = Path(out_root) / f"seed{seed}"
        done = out / "results.json"
        if not is_complete(out):
            sets = [*overrides, *split_overrides(recipe_path, seed, vary_split, overrides)]
            if wave is not None:  # under a sweep: a launcher runs it (see distill.sweep)
                runs.append({"seed": seed, **wave.defer(RunSpec(Path(recipe_path), out, tuple(sets)))})
                continue
            resume = (out / "checkpoints" / "last.pt").exists()
            run_recipe(recipe_path, sets, out=out, resume=resume)
        elif wave is not None:
            wave.done.add(out)
        runs.append({"seed": seed, **json.loads(done.read_text())})
    return runs


def aggregate(
    runs: Sequence[dict[str, Any]], split: str, role: str, metric: str, group: str | None = None
) -> Aggregate:
    """One number (e.g. test/student/srcc, optionally within a group) aggregated over repeats."""
    values = []
    for run in runs:
        res = run["results"][split][role]
        values.append(float(res["groups"][group][metric] if group is not None else res["overall"][metric]))
    return Aggregate(values)
