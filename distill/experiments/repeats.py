"""Repeat a recipe over seeds (and splits) and aggregate: mean ± std and median of every reported number.

Each repeat ``k`` runs the recipe with ``train.seed = seeds[k]`` and, when ``vary_split`` is set, every dataset's
``split_seed`` set to the same value — the N-random-splits protocol of IQA papers. Repeats run through the same
:func:`~distill.build.run_recipe` as ``distill run``; a finished repeat is reused (its ``results.json`` is read)
so an interrupted series continues where it stopped. Where a missing repeat comes from is the ``source`` argument
(a :class:`~distill.experiments.sweep.RunSource`): by default it trains in this process; a sweep
(:mod:`.sweep`) passes its planning source, which trains nothing and hands missing repeats to a launcher (parallel
processes or SLURM jobs).

:func:`run_repeats` stops at the first repeat that fails; :func:`collect_repeats` runs every seed and returns the
finished repeats together with the failed ones (:class:`RepeatSet`), so a table can show how many repeats each
number rests on and list the failures instead of dropping them. :class:`Aggregate` keeps count of the values that
were not finite (a NaN metric) next to ``n``, the count its statistics rest on.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distill.errors import DistillError, one_line
from distill.experiments.sweep import INLINE, RunSource, RunSpec, is_complete
from distill.recipe.check import load_recipe, signature_of
from distill.registry import DATASETS
from distill.run.layout import RunFolder
from distill.run.values import UNDEFINED, as_float


@dataclass
class Aggregate:
    """Mean, standard deviation (sample, n-1), median and the raw values of one number over repeats."""

    values: list[float]
    mean: float = field(init=False)
    std: float = field(init=False)
    median: float = field(init=False)

    def __post_init__(self) -> None:
        finite = [v for v in self.values if v == v and abs(v) != float("inf")]
        self.mean = statistics.fmean(finite) if finite else float("nan")
        self.std = statistics.stdev(finite) if len(finite) > 1 else 0.0 if finite else float("nan")
        self.median = statistics.median(finite) if finite else float("nan")

    def format(self, digits: int = 4, scale: float = 1.0, sep: str = " ± ") -> str:
        """``mean ± std``; one repeat has no spread, so it reads ``mean (n=1)`` instead of a made-up ``± 0``; no
        finite value reads ``n/a (n=0)``."""
        if self.n == 0:
            return f"{UNDEFINED} (n=0)"
        if self.n < 2:
            return f"{scale * self.mean:.{digits}f} (n={self.n})"
        return f"{scale * self.mean:.{digits}f}{sep}{scale * self.std:.{digits}f}"

    def __str__(self) -> str:
        return self.format()

    @property
    def n(self) -> int:
        """How many finite values the statistics rest on."""
        return sum(1 for v in self.values if v == v and abs(v) != float("inf"))

    @property
    def nonfinite(self) -> int:
        """How many values were NaN or infinite (left out of the statistics, never silently)."""
        return len(self.values) - self.n

    def cell(self, statistic: str = "mean", digits: int = 4) -> str:
        """A table cell that says what it rests on: ``0.6000 ± 0.1000 (n=3)``, ``median 0.6000 (n=3)``, plus
        ``, 1 NaN`` when values were not finite; one value prints without a spread (``0.6000 (n=1)``)."""
        if statistic not in ("mean", "median"):
            raise ValueError(f"statistic must be mean or median, got {statistic!r}")
        bad = f", {self.nonfinite} NaN" if self.nonfinite else ""
        if self.n == 0:
            return f"no finite value (n=0{bad})"
        if statistic == "median":
            value = f"median {self.median:.{digits}f}"
        elif self.n == 1:
            value = f"{self.mean:.{digits}f}"
        else:
            value = f"{self.mean:.{digits}f} ± {self.std:.{digits}f}"
        return f"{value} (n={self.n}{bad})"


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
    source: RunSource = INLINE,
) -> list[dict[str, Any]]:
    """One repeat per seed under ``out_root/seed{k}``; returns each repeat's ``results.json`` (with its ``seed``).

    A finished repeat is reused; a missing one comes from ``source``: trained here (the default), or, under a
    sweep's planning source, recorded and left out of the list (that pass's output is thrown away)."""
    runs = []
    for seed in seeds:
        out = RunFolder.of_seed(out_root, seed).path
        if is_complete(out):
            results = source.reuse(out)
        else:
            sets = [*overrides, *split_overrides(recipe_path, seed, vary_split, overrides)]
            results = source.run(RunSpec(Path(recipe_path), out, tuple(sets)))
        if results is not None:
            runs.append({"seed": seed, **results})
    return runs


@dataclass(frozen=True)
class RepeatFailure:
    """One repeat that stopped with a user-facing error (a diverging loss, bad data): its seed and message."""

    seed: int
    error: str
    out: str


@dataclass
class RepeatSet:
    """The outcome of :func:`collect_repeats`: finished repeats (``results.json`` + ``seed``) and failed ones."""

    seeds: list[int]
    runs: list[dict[str, Any]]
    failures: list[RepeatFailure]

    @property
    def n(self) -> int:
        """How many repeats finished."""
        return len(self.runs)

    def failure_lines(self, label: str) -> list[str]:
        """One line per failed repeat: ``label seed 3: <error> (<run folder>)``."""
        return [f"{label} seed {f.seed}: {f.error} ({f.out})" for f in self.failures]


def collect_repeats(
    recipe_path: str | Path,
    seeds: Sequence[int],
    out_root: str | Path,
    overrides: Sequence[str] = (),
    vary_split: bool = True,
    source: RunSource = INLINE,
) -> RepeatSet:
    """Like :func:`run_repeats`, but a repeat that fails with a :class:`DistillError` is recorded, not raised.

    Every seed is attempted (a failed one again on the next call; finished ones are reused). Errors that are bugs
    (anything but :class:`DistillError`) still propagate.
    """
    runs, failures = [], []
    for seed in seeds:
        try:
            runs.extend(run_repeats(recipe_path, [seed], out_root, overrides, vary_split, source))
        except DistillError as err:
            failures.append(RepeatFailure(seed, one_line(err), str(RunFolder.of_seed(out_root, seed).path)))
    return RepeatSet(list(seeds), runs, failures)


def aggregate(
    runs: Sequence[dict[str, Any]], split: str, role: str, metric: str, group: str | None = None
) -> Aggregate:
    """One number (e.g. test/student/srcc, optionally within a group) aggregated over repeats."""
    values = []
    for run in runs:
        res = run["results"][split][role]
        values.append(as_float(res["groups"][group].get(metric) if group is not None else res["overall"].get(metric)))
    return Aggregate(values)
