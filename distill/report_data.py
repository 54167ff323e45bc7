"""What the HTML report needs that ``metrics.jsonl`` and ``results.json`` do not hold, saved by the run.

``<run>/report/data.json`` keeps, per evaluation split, the last evaluation's per-sample predictions (IQA scores or
class indices, with targets and groups) and the group and class names. For SR splits it keeps bicubic's and every SR
model's mean PSNR/SSIM over every image of the split (the images of the run's main table), and a few evaluation
images: a centre crop of bicubic, every SR model's output and HR as small PNGs beside the file, with each image's
PSNR/SSIM. All of it is a few hundred kB at most.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from distill.engine.checkpoint import preserved_rng

if TYPE_CHECKING:
    from distill.config import Recipe
    from distill.data.base import DistillDataset
    from distill.engine.trainer import Trainer


class Run(Protocol):
    """What the saved report data is read from (:class:`distill.build.Run` has it)."""

    recipe: Recipe
    eval_sets: dict[str, DistillDataset]
    out_dir: Path
    trainer: Trainer

    def caption(self, split: str) -> str: ...


#: SR images kept per split, and the side of the HR crop shown.
SR_SAMPLES = 4
SR_CROP = 96
DATA_FILE = "data.json"


def _png(image: torch.Tensor, path: Path) -> str:
    from PIL import Image

    array = (image.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
    Image.fromarray(np.ascontiguousarray(array)).save(path, optimize=True)
    return path.name


def _centre(image: torch.Tensor, side: int) -> torch.Tensor:
    h, w = image.shape[-2:]
    top, left = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return image[..., top : top + side, left : left + side]


@torch.no_grad()
def sr_samples(run: Run, split: str, folder: Path, n: int = SR_SAMPLES) -> dict[str, Any]:
    """Every image of an SR split through bicubic and every SR model: the mean metrics over the whole split (the
    images of the run's main table, so the comparison printed after a run covers them all), with crops and
    per-image metrics of the first ``n``."""
    from distill.models.sr import super_resolve
    from distill.registry import METRICS

    trainer = run.trainer
    distiller = trainer.distiller
    dataset = run.eval_sets[split]
    metrics = [m for m in run.recipe.eval.metrics if METRICS.get(m).kind == "sample"]
    # bicubic | student | teacher (and any other role) | HR
    roles = sorted((r for r in distiller.roles if r in distiller.models), key=lambda r: r != distiller.student_role)
    models = ["bicubic", *roles]
    was_training = distiller.training
    distiller.eval()
    samples = []
    sums = {model: dict.fromkeys(metrics, 0.0) for model in models}
    total = len(dataset)  # type: ignore[arg-type]
    try:
        for i in range(total):
            item = dataset[i]
            lr = item["input"].unsqueeze(0).to(trainer.device)
            hr = item["target"].unsqueeze(0).to(trainer.device)
            outputs = {"bicubic": F.interpolate(lr, size=hr.shape[-2:], mode="bicubic", align_corners=False)}
            with trainer.autocast():
                for role in roles:
                    outputs[role] = super_resolve(distiller.models[role], lr).float()
            scores = {
                model: {
                    m: float(METRICS.get(m)(out.clamp(0, 1), hr, **run.recipe.eval.metric_args.get(m, {})).mean())
                    for m in metrics
                }
                for model, out in outputs.items()
            }
            for model, values in scores.items():
                for m, v in values.items():
                    sums[model][m] += v
            if i >= n:
                continue
            sample: dict[str, Any] = {"name": str(item.get("meta", {}).get("name", i)), "images": {}, "metrics": scores}
            for role, out in [*outputs.items(), ("HR", hr)]:
                sample["images"][role] = _png(_centre(out[0], SR_CROP), folder / f"{split}_{i}_{role}.png")
            samples.append(sample)
    finally:
        distiller.train(was_training)
    overall = {model: {m: v / total for m, v in values.items()} for model, values in sums.items()} if total else {}
    return {"samples": samples, "of": total, "models": models, "overall": overall}


def write_report_data(run: Run, step: int) -> Path:
    """Save ``<run>/report/data.json`` (and SR crops) from the trainer's last evaluation; returns the file."""
    folder = run.out_dir / "report"
    folder.mkdir(parents=True, exist_ok=True)
    splits: dict[str, Any] = {}
    with preserved_rng():
        for split, ds in run.eval_sets.items():
            entry: dict[str, Any] = {"caption": run.caption(split)}
            names = getattr(ds, "group_names", None) or getattr(ds, "distortion_names", None)
            if names:
                entry["group_names"] = {str(k): str(v) for k, v in dict(names).items()}
            if getattr(ds, "class_names", None):
                entry["class_names"] = [str(c) for c in ds.class_names]  # type: ignore[attr-defined]
            predictions = run.trainer.predictions.get(split, {})
            if predictions.get("outputs"):
                entry["predictions"] = predictions
            elif predictions:  # image outputs: keep a few crops instead
                entry["sr"] = sr_samples(run, split, folder)
            splits[split] = entry
    data = {
        "name": run.recipe.name,
        "description": run.recipe.description,
        "metrics": list(run.recipe.eval.metrics),
        "group_by": run.recipe.eval.group_by,
        "student_role": run.trainer.distiller.student_role,
        "single_model": len(run.trainer.distiller.roles) == 1,
        "models_at_step": step,
        "splits": splits,
    }
    path = folder / DATA_FILE
    path.write_text(json.dumps(data, default=float))
    return path


def read_report_data(run_dir: str | Path) -> dict[str, Any]:
    """The report data of a run folder (an empty mapping for runs that predate it)."""
    path = Path(run_dir) / "report" / DATA_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def sr_comparison(data: Mapping[str, Any]) -> str:
    """The SR splits' bicubic / student / teacher means over every image of the split (the main table's images), as
    printed after an SR run. Report data saved before the means were kept fall back to the kept images, and say so."""
    from distill.engine.run_log import format_metric
    from distill.metric_values import as_float
    from distill.report import table

    lines = []
    for split, entry in data.get("splits", {}).items():
        sr = entry.get("sr")
        if not sr or not (sr.get("overall") or sr["samples"]):
            continue
        if sr.get("overall"):
            means = sr["overall"]
            which = f"on all {sr['of']} images (those of the main table)"
        else:
            means = {
                model: {
                    m: float(np.mean([as_float(s["metrics"][model].get(m)) for s in sr["samples"]]))
                    for m in sr["samples"][0]["metrics"][model]
                }
                for model in sr["models"]
            }
            which = f"on the first {len(sr['samples'])} of {sr['of']} images"
        metrics = list(means["bicubic"])
        rows = [[model, *(format_metric(m, means[model][m]) for m in metrics)] for model in sr["models"]]
        caption = (
            f"'{split}': bicubic (torch) beside the SR models {which} (models at step {data.get('models_at_step')})"
        )
        lines.append(table(["model", *metrics], rows, caption))
    return "\n\n".join(lines)
