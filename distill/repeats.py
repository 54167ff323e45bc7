"""Repeat a recipe over seeds (and splits) and aggregate: mean ± std and median of every reported number.

Each repeat ``k`` runs the recipe with ``train.seed = seeds[k]`` and, when ``vary_split`` is set, every dataset's
``split_seed`` set to the same value — the N-random-splits protocol of IQA papers. Repeats run through the same
:func:`~distill.build.run_recipe` as ``distill run``; a finished repeat is reused (its ``results.json`` is read)
so an interrupted series continues where it stopped.
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

    @property
    def n(self) -> int:
        """How many repeats gave a number (NaN ones left out)."""
        return sum(v == v for v in self.values)

    def format(self, digits: int = 4, scale: float = 1.0, sep: str = " ± ") -> str:
        """``mean ± std``; one repeat has no spread, so it reads ``mean (n=1)`` instead of a made-up ``± 0``."""
        if self.n < 2:
            return f"{scale * self.mean:.{digits}f} (n={self.n})"
        return f"{scale * self.mean:.{digits}f}{sep}{scale * self.std:.{digits}f}"

    def __str__(self) -> str:
        return self.format()


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
    for seed in seeds:
        out = Path(out_root) / f"seed{seed}"
        done = out / "results.json"
        if not done.exists():
            resume = (out / "checkpoints" / "last.pt").exists()
            sets = [*overrides, *split_overrides(recipe_path, seed, vary_split, overrides)]
            run_recipe(recipe_path, sets, out=out, resume=resume)
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
