"""Use a distilled model: load it from a run, score images with it, export it.

``student.pt`` (written by every run) holds the deployable model's state dict and its registry spec; a training
checkpoint (``checkpoints/last.pt``) holds the resolved recipe, from which the distiller is rebuilt. Either way
the model is rebuilt without its ``pretrained`` files (the state dict replaces them), so deployment needs no
weights but the run's own.
"""

from __future__ import annotations

import csv
import glob
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn
from tqdm import tqdm

from distill.config import ComponentSpec, Recipe
from distill.data.images import IMAGE_SUFFIXES, load_rgb, verify_image
from distill.engine.checkpoint import CHECKPOINT_FORMAT, MODEL_FORMAT, load_checkpoint
from distill.errors import CheckpointError, DataError, DistillError
from distill.paths import check_output_dir, check_output_file
from distill.registry import MODELS


def _without_pretrained(args: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if "pretrained" in k else v) for k, v in args.items()}


def models_without_weights(recipe: Recipe) -> dict[str, nn.Module]:
    """Every model of ``recipe`` by role, built without its ``pretrained`` files (a state dict replaces them)."""
    from distill.build import build_model

    specs = recipe.models.items()
    return {role: build_model(ComponentSpec(spec.name, _without_pretrained(spec.args))) for role, spec in specs}


def load_deployable(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """The deployable model of ``student.pt`` or of a training checkpoint, in eval mode, on the CPU."""
    state = load_checkpoint(path)
    if state.get("format") == MODEL_FORMAT:
        spec = state.get("model")
        if not spec:
            raise CheckpointError(
                f"{path}: the model was exported without a registry spec (built in Python, not from a recipe); "
                "rebuild it in Python and call load_state_dict(torch.load(path)['state_dict'])"
            )
        model = MODELS.build(spec["name"], **_without_pretrained(spec["args"]))
        model.load_state_dict(state["state_dict"])
        model.distill_spec = spec
    elif state.get("format") == CHECKPOINT_FORMAT:
        from distill.recipe import recipe_from_dict

        recipe = recipe_from_dict(dict(state["recipe"]), source=str(path))
        from distill.registry import DISTILLERS

        models = models_without_weights(recipe)
        distiller = DISTILLERS.get(recipe.distiller.name)(models=models, **recipe.distiller.args)
        distiller.load_state_dict(state["distiller"])
        model = distiller.deployable()
    else:
        raise CheckpointError(f"{path}: neither a distill model export nor a training checkpoint")
    return model.eval(), state


def check_images(paths: Sequence[Path]) -> None:
    """Every file opens as an image (header and integrity, no full decode); a DataError names the first that fails."""
    for path in paths:
        reason = verify_image(path)
        if reason is not None:
            raise DataError(f"cannot read image {path}: {reason}; replace the file or leave it out of the inputs")


def expand_inputs(inputs: Iterable[str]) -> list[Path]:
    """Files, folders (their images, sorted) and glob patterns → image paths; nothing found is a DataError."""
    paths: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            paths.extend(sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES))
        elif p.is_file():
            paths.append(p)
        else:
            matches = sorted(Path(m) for m in glob.glob(item, recursive=True))
            if not matches:
                raise DataError(f"{item}: no such file, folder or glob match")
            paths.extend(m for m in matches if m.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise DataError(f"no images found in {', '.join(inputs)} (looked for {', '.join(IMAGE_SUFFIXES)})")
    return paths


@torch.no_grad()
def batched_outputs(
    model: nn.Module, paths: Sequence[Path], batch_size: int = 16, device: str = "cpu", progress: bool = True
) -> list[torch.Tensor]:
    """The model's float output for each image, on the CPU; images of equal size are batched, order is kept."""
    model = model.to(device)
    outputs: list[torch.Tensor] = [torch.empty(0)] * len(paths)
    batch: list[tuple[int, torch.Tensor]] = []

    def flush() -> None:
        images = torch.stack([t for _, t in batch]).to(device)
        try:
            out = model(images).float().cpu()
        except RuntimeError as err:  # e.g. an image too small for the network's pooling
            first = paths[batch[0][0]]
            raise DataError(
                f"the model cannot process {first} ({images.shape[-2]}×{images.shape[-1]} px): "
                f"{str(err).splitlines()[0]}; give larger images"
            ) from None
        for (i, _), o in zip(batch, out):
            outputs[i] = o
        batch.clear()

    for i, path in enumerate(tqdm(paths, desc="predict", disable=not progress, delay=0.5)):
        img = load_rgb(path)
        if batch and (len(batch) == batch_size or batch[0][1].shape != img.shape):
            flush()
        batch.append((i, img))
    if batch:
        flush()
    return outputs


def score_images(
    model: nn.Module, paths: Sequence[Path], batch_size: int = 16, device: str = "cpu", progress: bool = True
) -> list[float]:
    """One quality score per image."""
    return [float(o.reshape(-1)[0]) for o in batched_outputs(model, paths, batch_size, device, progress)]


Task = Literal["iqa", "sr", "classify"]


def model_task(model: nn.Module) -> Task:
    """What a deployable model does: score quality (``iqa``), upscale (``sr``) or classify (``classify``)."""
    from distill.models.iqa import IQAModel

    if isinstance(model, IQAModel):
        return "iqa"
    try:
        from distill.models.sr import sr_family

        sr_family(model)
        return "sr"
    except TypeError:
        pass
    if getattr(model, "num_classes", None) is not None:
        return "classify"
    raise DistillError(f"distill predict does not know what a {type(model).__name__} predicts (IQA, SR, classifier)")


@torch.no_grad()
def upscale_images(
    model: nn.Module,
    paths: Sequence[Path],
    out_dir: str | Path,
    device: str = "cpu",
    self_ensemble: bool = False,
    progress: bool = True,
) -> list[Path]:
    """Super-resolve each image (one at a time: sizes differ) and write ``<out_dir>/<stem>.png``; returns the files."""
    from distill.data.images import save_rgb
    from distill.models.sr import super_resolve

    out_dir = Path(out_dir)
    if len({p.stem for p in paths}) < len(paths):
        raise DataError(f"inputs share file names, so their outputs in {out_dir} would overwrite each other")
    model = model.to(device)
    written = []
    for path in tqdm(paths, desc="upscale", disable=not progress, delay=0.5):
        sr = super_resolve(model, load_rgb(path)[None].to(device), self_ensemble=self_ensemble)
        written.append(save_rgb(sr[0].clamp(0, 1).cpu(), out_dir / f"{path.stem}.png"))
    return written


def predict(
    checkpoint: str | Path,
    inputs: Sequence[str],
    out: str | Path | None = None,
    batch_size: int = 16,
    device: str = "cpu",
    self_ensemble: bool = False,
    progress: bool = True,
) -> tuple[Task, Path]:
    """Run the checkpoint's student on images: a CSV for IQA/classification, a folder of PNGs for SR."""
    model, _ = load_deployable(checkpoint)
    task = model_task(model)
    paths = expand_inputs(inputs)
    check_images(paths)  # every input fails here, before the progress bar starts
    if task == "sr":
        out_dir = Path(out or "predictions")
        if out_dir.suffix.lower() == ".csv":
            raise DataError(f"--out {out_dir}: an SR student writes images; give a folder")
        check_output_dir(out_dir)
        upscale_images(model, paths, out_dir, device, self_ensemble, progress)
        return task, out_dir
    out = check_output_file(out or "predictions.csv")
    out.parent.mkdir(parents=True, exist_ok=True)
    if task == "iqa":
        rows = [[str(p), f"{s:.6f}"] for p, s in zip(paths, score_images(model, paths, batch_size, device, progress))]
        header = ["path", "score"]
    else:
        labels, probs = classify_images(model, paths, batch_size, device, progress)
        names = getattr(model, "class_names", None)
        rows = [[str(p), names[k] if names else str(k), f"{q:.6f}"] for p, k, q in zip(paths, labels, probs)]
        header = ["path", "label", "probability"]
    with out.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return task, out


def classify_images(
    model: nn.Module, paths: Sequence[Path], batch_size: int = 16, device: str = "cpu", progress: bool = True
) -> tuple[list[int], list[float]]:
    """Top-1 class index and its softmax probability per image."""
    top = [torch.softmax(o, dim=0).max(dim=0) for o in batched_outputs(model, paths, batch_size, device, progress)]
    return [int(t.indices) for t in top], [float(t.values) for t in top]


ExportFormat = Literal["torchscript", "pt2", "onnx"]


@torch.no_grad()
def export_model(
    checkpoint: str | Path, fmt: ExportFormat, out: str | Path, size: int = 64, atol: float = 1e-4
) -> tuple[Path, float]:
    """Export the student alone and check it reproduces the checkpoint's outputs; returns (path, max |diff|)."""
    model, _ = load_deployable(checkpoint)
    torch.manual_seed(0)
    example = torch.rand(2, 3, size, size)
    expected = model(example)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "torchscript":
        torch.jit.save(torch.jit.trace(model, example), str(out))
        got = torch.jit.load(str(out))(example)
    elif fmt == "pt2":
        torch.export.save(torch.export.export(model, (example,)), str(out))
        got = torch.export.load(str(out)).module()(example)
    elif fmt == "onnx":
        try:
            import onnx  # noqa: F401
            import onnxruntime
        except ImportError:
            raise DistillError(
                "ONNX export needs the `onnx` and `onnxruntime` packages (pip install onnx onnxruntime); "
                "torchscript and pt2 need nothing extra"
            ) from None
        torch.onnx.export(model, (example,), str(out), input_names=["image"], output_names=["output"])
        session = onnxruntime.InferenceSession(str(out))
        got = torch.from_numpy(session.run(None, {"image": example.numpy()})[0])
    else:
        raise DistillError(f"unknown export format '{fmt}'; choose torchscript, pt2 or onnx")
    diff = float((got - expected).abs().max())
    if diff > atol:
        raise DistillError(f"exported {fmt} model differs from the checkpoint by {diff:.3g} (> {atol:g})")
    return out, diff
