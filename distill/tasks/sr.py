"""Super-resolution: PSNR/SSIM on Y, a crop grid (bicubic | models | HR) on the report page, one upscaled PNG per
input image."""

from __future__ import annotations

import html
import inspect
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from distill.data.images import load_rgb
from distill.engine.run_log import format_metric
from distill.errors import DataError
from distill.recipe.check import RecipeChecker, signature_of
from distill.recipe.config import ComponentSpec, EvalConfig, Recipe
from distill.registry import DATASETS, MODELS, TASKS, Registry, spec_of
from distill.report.html import RunFiles, img_tag
from distill.report.tables import table
from distill.report.view import RunView
from distill.run.atomic import write_with
from distill.run.paths import check_output_dir
from distill.run.values import as_float
from distill.tasks.base import PredictOptions, Task

#: SR images kept per split for the report page, and the side of the HR crop shown.
SR_SAMPLES = 4
SR_CROP = 96


@TASKS.register("sr")
class SRTask(Task):
    """Super-resolution: a BasicSR EDSR/RCAN/SwinIR student (``task="sr"``) upscales each image."""

    name: ClassVar[str] = "sr"
    default_metrics: ClassVar[tuple[str, ...]] = ("psnr", "ssim")
    writes: ClassVar[str] = "one PNG per image"
    output_suffix: ClassVar[str] = "_sr"
    folder_readers: ClassVar[tuple[tuple[str, dict[str, Any]], ...]] = (("sr_benchmark", {}),)
    image_outputs: ClassVar[bool] = True

    def score_evaluation(self, model: nn.Module) -> EvalConfig:
        """PSNR and SSIM on Y with the scale's border cropped, as the SR papers report them."""
        scale = (spec_of(model) or {}).get("args", {}).get("upscale", getattr(model, "upscale", None))
        args = {"crop_border": int(scale) if scale is not None else 0, "test_y_channel": True}
        return EvalConfig(metrics=["psnr", "ssim"], metric_args={"psnr": dict(args), "ssim": dict(args)})

    def eval_batch_size(self, batch_size: int) -> int:
        """One image at a time: the images of an SR set differ in size."""
        return 1

    def check_eval_options(self, model: nn.Module, opts: PredictOptions) -> None:
        """A tile size the network takes (a multiple of its window, larger than the overlap)."""
        from distill.models.sr.inference import check_tile, window_multiple

        if opts.tile is not None:
            check_tile(opts.tile, opts.tile_overlap, window_multiple(model), type(model).__name__)

    def eval_forward(self, model: nn.Module, inputs: torch.Tensor, opts: PredictOptions) -> torch.Tensor:
        """Through ``super_resolve``: window padding, x8 self-ensemble and tiles as asked."""
        from distill.models.sr import super_resolve

        return super_resolve(model, inputs, opts.self_ensemble, tile=opts.tile, tile_overlap=opts.tile_overlap)

    def save_outputs(self, outputs: torch.Tensor, batch: Mapping[str, Any], folder: Path) -> None:
        """One ``<name>.png`` per output (clamped to [0, 1]), named after the item's ``meta.name``."""
        from distill.data.images import save_rgb

        names = batch.get("meta", {}).get("name")
        for i, image in enumerate(outputs):
            stem = Path(str(names[i])).stem if names is not None else f"{i:05d}"
            save_rgb(image.clamp(0, 1).cpu(), folder / f"{stem}.png")

    def default_output(self, model: nn.Module, source: Path) -> Path:
        """``photos/`` → ``photos_x4/`` (the student's scale), beside the input."""
        stem = source.name if source.is_dir() else source.stem
        scale = (spec_of(model) or {}).get("args", {}).get("upscale")
        return source.parent / f"{stem}{f'_x{scale}' if scale else self.output_suffix}"

    def output_names(self, paths: Sequence[Path]) -> list[str] | None:
        """One ``<stem>.png`` per input, in the output folder."""
        return [f"{p.stem}.png" for p in paths]

    def check_recipe(self, recipe: Recipe, checker: RecipeChecker) -> None:
        """An SR recipe (its student registered with ``task="sr"``) has one scale: every model ``upscale``, dataset
        ``scale`` and metric ``crop_border`` agree.

        Keys left out count with their constructor default (a model or dataset that takes them); the first
        disagreeing key is refused, naming the key it disagrees with.
        """

        def given_or_default(
            registry: Registry[Any], spec: ComponentSpec, arg: str, key: str
        ) -> tuple[str, Any] | None:
            if arg in spec.args:
                return f"{key}.args.{arg}", spec.args[arg]
            param = signature_of(registry.get(spec.name))[0].get(arg)
            if param is None or param.default is inspect.Parameter.empty:
                return None
            return f"{key}.args.{arg} (default of {spec.name})", param.default

        models = [given_or_default(MODELS, spec, "upscale", f"models.{role}") for role, spec in recipe.models.items()]
        found = [m for m in models if m is not None]
        if not found:
            return  # no model states a scale
        datasets = {"data.train": recipe.data.train, **{f"data.eval.{k}": v for k, v in recipe.data.eval.items()}}
        found += [d for key, spec in datasets.items() if (d := given_or_default(DATASETS, spec, "scale", key))]
        found += [
            (f"eval.metric_args.{name}.crop_border", args["crop_border"])
            for name, args in recipe.eval.metric_args.items()
            if "crop_border" in args
        ]
        first_key, first = found[0]
        for key, value in found[1:]:
            if value != first:
                checker.fail(
                    key.split(" ")[0],
                    f"scale {value!r} disagrees with {first_key} = {first!r}; an SR recipe has one scale (model "
                    'upscale, dataset scale and metric crop_border): write it once as vars.scale and use "${scale}" '
                    "for each, as recipes/_parts/sr_div2k.yaml does (--set vars.scale=N changes them together)",
                )

    def report_entry(self, run: RunView, split: str, folder: Path) -> dict[str, Any]:
        """The outputs are images: keep a few crops (bicubic, every model, HR) with their metrics instead."""
        return {"sr": sr_samples(run, split, folder)} if run.trainer.predictions.get(split) else {}

    def data_report(self, data: Mapping[str, Any]) -> str:
        """Bicubic beside the SR models on every image of each split (the main table's), per split."""
        return sr_comparison(data)

    def html_sections(self, run: RunFiles, split: str, entry: Mapping[str, Any]) -> list[str]:
        sr = entry.get("sr")
        if not sr:
            return []
        title = (
            f"<h3>{html.escape(split)}: first {len(sr['samples'])} of {sr['of']} images "
            f"(centre crops; models at step {run.data.get('models_at_step')})</h3>"
        )
        return [title, sr_grid(run, split, sr)]

    def predict(self, model: nn.Module, paths: Sequence[Path], out: str | Path | None, opts: PredictOptions) -> Path:
        out_dir = Path(out)
        if out_dir.suffix.lower() == ".csv":
            raise DataError(f"--out {out_dir}: an SR student writes images; give a folder")
        check_output_dir(out_dir)
        upscale_images(
            model, paths, out_dir, opts.device, opts.self_ensemble, opts.progress, opts.tile, opts.tile_overlap
        )
        return out_dir


@torch.no_grad()
def upscale_images(
    model: nn.Module,
    paths: Sequence[Path],
    out_dir: str | Path,
    device: str = "cpu",
    self_ensemble: bool = False,
    progress: bool = True,
    tile: int | None = None,
    tile_overlap: int = 32,
) -> list[Path]:
    """Super-resolve each image (one at a time: sizes differ; in overlapping ``tile``-pixel tiles when given) and
    write ``<out_dir>/<stem>.png``; returns the files."""
    from distill.data.images import save_rgb
    from distill.models.sr import super_resolve
    from distill.models.sr.inference import check_tile, window_multiple

    out_dir = Path(out_dir)
    if len({p.stem for p in paths}) < len(paths):
        raise DataError(f"inputs share file names, so their outputs in {out_dir} would overwrite each other")
    model = model.to(device)
    check_tile(tile, tile_overlap, window_multiple(model), type(model).__name__)  # before the first image
    written = []
    for path in tqdm(paths, desc="upscale", disable=not progress, delay=0.5):
        sr = super_resolve(
            model,
            load_rgb(path, exif_orientation=True)[None].to(device),
            self_ensemble,
            tile=tile,
            tile_overlap=tile_overlap,
        )
        written.append(save_rgb(sr[0].clamp(0, 1).cpu(), out_dir / f"{path.stem}.png"))
    return written


def _png(image: torch.Tensor, path: Path) -> str:
    from PIL import Image

    array = (image.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
    write_with(path, lambda buf: Image.fromarray(np.ascontiguousarray(array)).save(buf, format="PNG", optimize=True))
    return path.name


def _centre(image: torch.Tensor, side: int) -> torch.Tensor:
    h, w = image.shape[-2:]
    top, left = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return image[..., top : top + side, left : left + side]


@torch.no_grad()
def sr_samples(run: RunView, split: str, folder: Path, n: int = SR_SAMPLES) -> dict[str, Any]:
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


def sr_grid(run: RunFiles, split: str, sr: Mapping[str, Any]) -> str:
    """Crops of the kept images: bicubic | each SR model | HR, each captioned with its metrics."""
    folder = run.path / "report"
    columns = [*sr["models"], "HR"]
    head = "".join(f"<th>{html.escape(run.label(c))}</th>" for c in columns)
    rows = []
    for sample in sr["samples"]:
        cells = []
        for model in columns:
            png = folder / sample["images"][model]
            scores = sample["metrics"].get(model, {})
            text = ", ".join(
                format_metric(m, v) if m == "psnr" else f"{m} {format_metric(m, v)}" for m, v in scores.items()
            )
            image = img_tag(png.read_bytes(), f"{model} {sample['name']}") if png.is_file() else "(missing)"
            cells.append(f'<td class="crop">{image}<div>{html.escape(text or sample["name"])}</div></td>')
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return f'<table class="grid"><tr>{head}</tr>{"".join(rows)}</table>'


def sr_comparison(data: Mapping[str, Any]) -> str:
    """The SR splits' bicubic / student / teacher means over every image of the split (the main table's images), as
    printed after an SR run. Report data saved before the means were kept fall back to the kept images, and say so."""
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
