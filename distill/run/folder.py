"""What a run leaves in its folder, and what resuming it checks.

A run folder holds ``recipe.yaml``, ``metrics.jsonl`` (:mod:`distill.engine.run_log`), ``checkpoints/last.pt`` and
``checkpoints/best_student.pt`` (atomic, :mod:`distill.run.checkpoint`), and at the end ``student.pt`` (the
deployable model and the registry spec that rebuilds it) and ``results.json`` (the selected results, step counts and
the corrupt files each dataset skipped). The trainer calls these functions; none of them trains.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from distill.errors import CheckpointError
from distill.run.atomic import write_text
from distill.run.checkpoint import CHECKPOINT_FORMAT, atomic_save, load_checkpoint
from distill.run.layout import RunFolder

Results = dict[str, Any]

# Recipe keys that may change between a run and its resume without changing the result.
RESUME_SAFE_KEYS = (
    "train.progress",
    "train.num_workers",
    "train.log_every",
    "train.find_unused_parameters",
    "train.channels_last",
    "train.compile",
    "train.teacher_cache_dir",
    "train.checkpoint_every",
    "train.checkpoint_minutes",
    "train.eval_batch_size",
    # evaluation-only keys: a corrected evaluation setting continues the run (earlier records keep their values)
    "eval.group_by",
    "eval.metrics",
    "eval.metric_args",
    "eval.models",
    "output",
    "source",
    "description",
    "data.synthetic.root",  # only says where a synthetic set may be written; the data read is data.root
    "vars",  # compared where they are used (the substituted keys); a run saved before vars existed resumes
)


@dataclass
class RunResult:
    """What :meth:`Trainer.fit` returns: the selected results and where the run's files are."""

    results: dict[str, Results]
    selected_step: int
    steps: int
    out_dir: Path | None
    history: list[dict[str, Any]] = field(default_factory=list)
    skipped_steps: int = 0
    corrupt_skipped: dict[str, list[str]] = field(default_factory=dict)  # split → corrupt files skipped

    def metric(self, split: str, role: str, name: str, group: str | None = None) -> float:
        """One number: e.g. ``result.metric("test", "student", "srcc")``."""
        res = self.results[split][role]
        return float(res["groups"][group][name] if group is not None else res["overall"][name])


def checkpoint_path(out_dir: Path | None) -> Path | None:
    """``<out_dir>/checkpoints/last.pt`` (``None`` without a run folder)."""
    return RunFolder(out_dir).last if out_dir else None


def check_resumable(
    state: Mapping[str, Any],
    recipe: Mapping[str, Any] | None,
    own: Mapping[str, torch.Tensor],
    selection: str = "last",
) -> None:
    """Refuse a checkpoint that is not a training checkpoint, was trained under another recipe, or does not fit
    the distiller whose state dict is ``own``. Under ``best_val`` selection ``eval.metrics`` must not change (the
    selection score needs every metric), although it is resume-safe otherwise."""
    if state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"not a distill training checkpoint (format {state.get('format')!r}); --resume needs the "
            "checkpoints/last.pt that a run wrote (student.pt holds the exported model only)"
        )
    if recipe is not None and state.get("recipe") is not None:
        diff = recipe_differences(state["recipe"], recipe)
        old, new = ((r.get("eval") or {}).get("metrics") for r in (state["recipe"], recipe))
        if selection == "best_val" and old != new:
            diff.append(f"eval.metrics ({old!r} -> {new!r}; selection best_val)")
        if diff:
            raise CheckpointError(
                "cannot resume: the recipe differs from the one the checkpoint was trained with at "
                + ", ".join(diff[:8])
                + ". Resume with the original recipe, or start a new run with --out"
            )
    mismatch = state_mismatch(own, state["distiller"])
    if mismatch:
        raise CheckpointError(
            f"checkpoint does not fit this distiller's models ({mismatch}); it was written by another model or "
            "method: resume with the recipe it came from, or start a new run with --out"
        )


def write_outputs(out_dir: Path, result: RunResult, selection: str, export: Callable[[], dict[str, Any]]) -> None:
    """``student.pt`` (the ``best_val`` checkpoint's student when there is one, else ``export()``) and
    ``results.json``, each written atomically."""
    folder = RunFolder(out_dir)
    if selection == "best_val" and folder.best_student.exists():
        atomic_save(load_checkpoint(folder.best_student), folder.student)
    else:
        atomic_save(export(), folder.student)
    corrupt = result.corrupt_skipped
    summary = {
        "selected_step": result.selected_step,
        "steps": result.steps,
        "skipped_steps": result.skipped_steps,
        **({"corrupt_skipped": corrupt} if corrupt else {}),
        "selection": selection,
        "results": result.results,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    write_text(folder.results, json.dumps(summary, indent=2, default=float))


def state_mismatch(own: Mapping[str, torch.Tensor], theirs: Mapping[str, Any]) -> str:
    """What keeps ``theirs`` from loading into a module whose state dict is ``own`` ("" when it fits)."""
    missing = [k for k in own if k not in theirs]
    unexpected = [k for k in theirs if k not in own]
    shapes = [
        f"{k} {tuple(theirs[k].shape)} vs {tuple(own[k].shape)}"
        for k in own
        if k in theirs and isinstance(theirs[k], torch.Tensor) and theirs[k].shape != own[k].shape
    ]
    parts = [
        f"{len(missing)} missing keys, e.g. {missing[0]}" if missing else "",
        f"{len(unexpected)} unexpected keys, e.g. {unexpected[0]}" if unexpected else "",
        f"shape mismatch at {shapes[0]}" if shapes else "",
    ]
    return "; ".join(p for p in parts if p)


def recipe_differences(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two resolved recipes (ignoring :data:`RESUME_SAFE_KEYS`)."""
    diffs: list[str] = []
    for key in sorted(set(old) | set(new)):
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if any(dotted == k or dotted.startswith(f"{k}.") for k in RESUME_SAFE_KEYS):
            continue
        a, b = old.get(key), new.get(key)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            diffs.extend(recipe_differences(a, b, dotted))
        elif a != b:
            diffs.append(f"{dotted} ({a!r} -> {b!r})")
    return diffs
