"""What the HTML report needs that ``metrics.jsonl`` and ``results.json`` do not hold, saved by the run.

``<run>/report/data.json`` keeps, per evaluation split, its caption and group names and what the run's task keeps
of it (``Task.report_entry``: the last evaluation's per-sample predictions and class names, or for SR a few crops
as small PNGs beside the file with each image's PSNR/SSIM), and the task's registry name, by which the page finds
the task's own sections (``Task.html_sections``). A few hundred kB at most.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from distill.errors import DataError
from distill.report.view import RunView
from distill.run.atomic import write_text
from distill.run.checkpoint import preserved_rng
from distill.run.layout import RunFolder


def write_report_data(run: RunView, step: int) -> Path:
    """Save ``<run>/report/data.json`` (and SR crops) from the trainer's last evaluation; returns the file."""
    folder = RunFolder(run.out_dir).report_dir
    folder.mkdir(parents=True, exist_ok=True)
    splits: dict[str, Any] = {}
    with preserved_rng():
        for split, ds in run.eval_sets.items():
            entry: dict[str, Any] = {"caption": run.caption(split)}
            names = getattr(ds, "group_names", None) or getattr(ds, "distortion_names", None)
            if names:
                entry["group_names"] = {str(k): str(v) for k, v in dict(names).items()}
            entry.update(run.task.report_entry(run, split, folder))  # predictions, SR crops, class names …
            splits[split] = entry
    data = {
        "name": run.recipe.name,
        "task": run.task.name,
        "description": run.recipe.description,
        "metrics": list(run.recipe.eval.metrics),
        "headline": run.trainer.selection.metric,
        "group_by": run.recipe.eval.group_by,
        "student_role": run.trainer.distiller.student_role,
        "single_model": len(run.trainer.distiller.roles) == 1,
        "models_at_step": step,
        "splits": splits,
    }
    return write_text(RunFolder(run.out_dir).report_data, json.dumps(data, default=float))


def read_mapping_file(path: Path, parse: Callable[[str], Any], errors: type[Exception] | tuple) -> dict[str, Any]:
    """A run file holding one mapping (``recipe.yaml``, ``results.json``, the report data); an empty file is {},
    anything else not a mapping is a DataError naming the file."""
    try:
        data = parse(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, errors):
        raise DataError(f"{path}: cannot be read as the run wrote it; the file was edited or damaged") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise DataError(f"{path}: holds a {type(data).__name__}, not a mapping; the file was edited or damaged")
    return data


def read_report_data(run_dir: str | Path) -> dict[str, Any]:
    """The report data of a run folder (an empty mapping for runs that predate it)."""
    path = RunFolder(run_dir).report_data
    return read_mapping_file(path, json.loads, json.JSONDecodeError) if path.exists() else {}
