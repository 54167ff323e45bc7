"""Use a distilled model: load it from a run, score images with it, export it.

``student.pt`` (written by every run) holds the deployable model's state dict and its registry spec; a training
checkpoint (``checkpoints/last.pt``) holds the resolved recipe, from which the distiller is rebuilt. Either way
the model is rebuilt without its ``pretrained`` files (the state dict replaces them), so deployment needs no
weights but the run's own.
"""

from __future__ import annotations

import glob
import io
import logging
import os
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from distill.data.images import IMAGE_SUFFIXES, is_image_file, verify_image
from distill.engine.ema import averaged_state
from distill.errors import CheckpointError, DataError, DistillError, first_line
from distill.recipe.config import ComponentSpec, Recipe
from distill.registry import MODELS, TASKS, set_spec
from distill.run.atomic import TEMP_SUFFIX, write_bytes
from distill.run.checkpoint import CHECKPOINT_FORMAT, MODEL_FORMAT, load_checkpoint
from distill.run.folder import state_mismatch
from distill.run.safe_write import check_new_file, check_new_folder, run_folder_of
from distill.tasks import PredictOptions, Task, task_of

_log = logging.getLogger(__name__)


def _without_pretrained(args: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if "pretrained" in k else v) for k, v in args.items()}


def models_without_weights(recipe: Recipe) -> dict[str, nn.Module]:
    """Every model of ``recipe`` by role, built without its ``pretrained`` files (a state dict replaces them)."""
    from distill.build import build_model

    specs = recipe.models.items()
    return {role: build_model(ComponentSpec(spec.name, _without_pretrained(spec.args))) for role, spec in specs}


def load_deployable(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """The deployable model of ``student.pt``, of a training checkpoint, of ``zoo:NAME``, of a ``.safetensors`` file
    or model folder written by ``distill export`` or of ``hf:OWNER/NAME`` (downloaded, :mod:`.share`), in eval
    mode, on the CPU."""
    from distill.run.model_files import read_model, resolve

    if isinstance(path, str) and path.startswith("zoo:"):  # a published model: fetched and converted once
        from distill.models.zoo import resolve_zoo

        path = resolve_zoo(path)
    path = resolve(path)
    state = read_model(path) or load_checkpoint(path)
    if state.get("format") == MODEL_FORMAT:
        spec = state.get("model")
        if not spec:
            raise CheckpointError(
                f"{path}: the model was exported without a registry spec (built in Python, not from a recipe); "
                "rebuild it in Python and call load_state_dict(torch.load(path)['state_dict'])"
            )
        if not (isinstance(spec, dict) and isinstance(spec.get("name"), str) and isinstance(spec.get("args"), dict)):
            got = repr(spec)[:60]
            raise CheckpointError(f"{path}: its model spec is not {{name, args}} (got {got}); the file is damaged")
        try:
            model = MODELS.build(spec["name"], **_without_pretrained(spec["args"]))
        except (TypeError, ValueError) as err:  # arguments the model refuses: a hand-edited or damaged file
            name = spec["name"]
            raise CheckpointError(f"{path}: its model spec {name!r} does not build: {first_line(err)}") from None
        mismatch = state_mismatch(model.state_dict(), state["state_dict"])
        if mismatch:
            raise CheckpointError(f"{path}: the weights do not fit the '{spec['name']}' model they name ({mismatch})")
        model.load_state_dict(state["state_dict"])
        set_spec(model, spec["name"], spec["args"])
    elif state.get("format") == CHECKPOINT_FORMAT:
        from distill.recipe.check import recipe_from_dict

        recipe = recipe_from_dict(dict(state["recipe"]), source=str(path))
        from distill.registry import DISTILLERS

        models = models_without_weights(recipe)
        distiller = DISTILLERS.get(recipe.distiller.name)(models=models, **recipe.distiller.args)
        distiller.load_state_dict(averaged_state(state["distiller"], state.get("ema")))  # evaluated weights
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
    """Files, folders (their images, sorted) and glob patterns → image paths; nothing found is a DataError.

    A file named on its own is always taken. From folders and globs, files without an image suffix, hidden files
    (``.DS_Store``, macOS's ``._name.png``) and sub-folders are left out, and one warning names what was left out.
    """
    inputs = list(inputs)
    paths: list[Path] = []
    skipped: list[Path] = []

    def take(found: Iterable[Path]) -> None:
        for f in found:
            (paths if is_image_file(f) else skipped).append(f)

    for item in inputs:
        p = Path(item)
        if p.is_dir():
            take(sorted(p.iterdir()))
        elif p.is_file():
            paths.append(p)
        else:
            matches = sorted(Path(m) for m in glob.glob(item, recursive=True))
            if not matches:
                raise DataError(f"{item}: no such file, folder or glob match")
            take(matches)
    if skipped:
        shown = ", ".join(str(f) + ("/" if f.is_dir() else "") for f in skipped[:5])
        more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
        _log.warning(
            "left out %d of the inputs' entries that are not image files (%s, hidden files and folders are "
            "skipped): %s%s",
            len(skipped), "/".join(IMAGE_SUFFIXES), shown, more,
        )  # fmt: skip
    if not paths:
        raise DataError(f"no images found in {', '.join(inputs)} (looked for {', '.join(IMAGE_SUFFIXES)})")
    return paths


def deployable_task(model: nn.Module) -> Task:
    """The task a deployable model's registration names (``tasks.task_of``); a model registered without a task is
    one clear error (nothing to predict or score)."""
    task = task_of(model)
    if type(task) is Task:
        raise DistillError(
            f"distill predict does not know what a {type(model).__name__} predicts: its model registration names no "
            f"task (@MODELS.register(name, task=...); tasks: {', '.join(TASKS.names())})"
        )
    return task


def check_image_options(
    label: str, task: Task, *, tile: int | None = None, self_ensemble: bool | None = None, save_images: Any = None
) -> None:
    """``distill predict`` and ``distill eval``: ``--tile``, ``--self-ensemble`` and ``--save-images`` only for a model
    whose task's outputs are images (SR); anything else is one error naming the options given, before any input is
    read (before: ``predict`` ignored them silently on an IQA or recognition model)."""
    given = [flag for flag, value in (("--tile", tile), ("--self-ensemble", self_ensemble or None),
                                      ("--save-images", save_images)) if value is not None]  # fmt: skip
    if not given or task.image_outputs:
        return
    image_tasks = [n for n in TASKS.names() if TASKS.get(n).image_outputs]
    flags = given[0] if len(given) == 1 else ", ".join(given[:-1]) + f" and {given[-1]}"
    raise DistillError(
        f"{flags} {'is' if len(given) == 1 else 'are'} for models whose outputs are images "
        f"({', '.join(image_tasks)} models); {label} is {'an' if task.name[:1] in 'aeiou' else 'a'} {task.name} model"
    )


def predict_with_task(
    checkpoint: str | Path,
    inputs: Sequence[str],
    out: str | Path | None = None,
    options: PredictOptions | None = None,
    force: bool = False,
) -> tuple[Task, Path]:
    """Run the checkpoint's student on images as its task does (a CSV for IQA/classification, PNGs for SR; an SR
    model in overlapping ``tile``-pixel tiles when given).

    The output is checked before the model runs (``run.safe_write``): no existing file is replaced and nothing
    is written into a run folder other than the checkpoint's own, unless ``force``."""
    model, _ = load_deployable(checkpoint)
    task = deployable_task(model)  # before reading any input
    opts = options or PredictOptions()
    check_image_options(str(checkpoint), task, tile=opts.tile, self_ensemble=opts.self_ensemble)
    paths = expand_inputs(inputs)
    check_images(paths)  # every input fails here, before the progress bar starts
    out = Path(out) if out is not None else default_output(inputs, task, model)
    own = [r for r in [run_folder_of(checkpoint)] if r is not None]
    names = task.output_names(paths)
    if names is None:
        check_new_file(out, force=force, own_runs=own)
    else:
        check_new_folder(out, force=force, files=names, own_runs=own)
    return task, task.predict(model, paths, out, opts)


def default_output(inputs: Sequence[str], task: Task, model: nn.Module) -> Path:
    """Where predictions go without ``--out``: beside the one input, named after it (never the current folder).

    ``photos/`` → ``photos_scores.csv`` (IQA), ``photos_classes.csv`` (classification), ``photos_x4/`` (SR); a single
    file ``a.png`` → ``a_scores.csv``. Several inputs or a glob need ``--out``.
    """
    if len(inputs) != 1 or glob.has_magic(inputs[0]):
        raise DataError(
            f"{len(inputs)} inputs ({', '.join(inputs[:3])}{', ...' if len(inputs) > 3 else ''}): say where the "
            "predictions go with --out (a CSV file, or a folder for an SR student)"
        )
    return task.default_output(model, Path(inputs[0].rstrip("/\\") or inputs[0]))


ExportFormat = Literal["torchscript", "pt2", "onnx", "safetensors", "hf"]


class TraceNote(UserWarning):
    """What a TorchScript trace fixed: said in our words instead of torch's ``TracerWarning``s."""


def _trace(model: torch.nn.Module, example: torch.Tensor) -> torch.jit.ScriptModule:
    """``torch.jit.trace``; its ``TracerWarning``s (Python branches on the input frozen into the trace) are passed
    on as they were (the command line shows them with ``--debug``) and summed up in one :class:`TraceNote`."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", torch.jit.TracerWarning)
        traced = torch.jit.trace(model, example)
    for category, text, filename, lineno in dict.fromkeys((w.category, str(w.message), w.filename, w.lineno)
                                                          for w in caught):  # fmt: skip
        warnings.warn_explicit(text, category, filename, lineno)
    if any(issubclass(w.category, torch.jit.TracerWarning) for w in caught):
        c, h, w = example.shape[1:]
        warnings.warn(
            f"the TorchScript file is a trace for image batches [N, {c}, H, W] (traced at {h}x{w}): the model's "
            "branches on its input were fixed to that layout; --format pt2 keeps them",
            TraceNote,
            stacklevel=2,
        )
    return traced


@torch.no_grad()
def export_model(
    checkpoint: str | Path, fmt: ExportFormat, out: str | Path, size: int = 64, atol: float = 1e-4
) -> tuple[Path, float]:
    """Export the student alone and check it reproduces the checkpoint's outputs; returns (path, max |diff|).

    ``safetensors`` (one file) and ``hf`` (a model folder with a model card) are loaded back as they will be used
    (:func:`load_deployable`) and must give the same outputs exactly."""
    model, state = load_deployable(checkpoint)
    torch.manual_seed(0)
    example = torch.rand(2, 3, size, size)
    try:
        expected = model(example)
    except (RuntimeError, ValueError) as err:  # e.g. a kernel larger than the input: the user's --size
        reason = first_line(err)
        raise DistillError(
            f"{checkpoint}: the model does not run on the {size}x{size} sample input ({reason}); pass a larger --size"
        ) from None
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    commit: Callable[[], object] = lambda: None  # noqa: E731 - puts a checked export in place
    if fmt in ("torchscript", "pt2"):  # built and checked in memory; the file appears only once it reproduces
        buf = io.BytesIO()
        if fmt == "torchscript":
            torch.jit.save(_trace(model, example), buf)
            buf.seek(0)
            got = torch.jit.load(buf)(example)
        else:
            torch.export.save(torch.export.export(model, (example,)), buf)
            buf.seek(0)
            got = torch.export.load(buf).module()(example)
        commit = lambda: write_bytes(out, buf.getvalue())  # noqa: E731
    elif fmt in ("safetensors", "hf"):
        from distill.deploy import share
        from distill.registry import spec_of

        spec = state.get("model") or spec_of(model)  # a training checkpoint's student carries its spec
        state = {**state, "model": spec and {"name": spec["name"], "args": _without_pretrained(spec["args"])}}
        state.setdefault("role", "student")
        if fmt == "hf":
            task = task_of(model)
            share.export_folder(model, state, Path(checkpoint), out, None if type(task) is Task else task.name)
        else:
            share.export_safetensors(model, state, out)
        got = load_deployable(out)[0](example)
        if not torch.equal(got, expected):
            raise DistillError(f"exported {fmt} model does not reproduce the checkpoint exactly")
    elif fmt == "onnx":
        try:
            import onnx  # noqa: F401
            import onnxruntime
        except ImportError:
            raise DistillError(
                "ONNX export needs the `onnx` and `onnxruntime` packages (pip install onnx onnxruntime); "
                "torchscript and pt2 need nothing extra"
            ) from None
        tmp = out.with_name(f".{out.name}.{os.getpid()}{TEMP_SUFFIX}")  # checked before it takes out's name
        try:
            torch.onnx.export(  # verbose=False: no "[torch.onnx] …" progress lines of the dynamo exporter
                model, (example,), str(tmp), input_names=["image"], output_names=["output"], verbose=False
            )
            session = onnxruntime.InferenceSession(str(tmp))
            got = torch.from_numpy(session.run(None, {"image": example.numpy()})[0])
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        commit = lambda: os.replace(tmp, out)  # noqa: E731
    else:
        raise DistillError(f"unknown export format '{fmt}'; choose torchscript, pt2, onnx, safetensors or hf")
    diff = float((got - expected).abs().max())
    if diff > atol:
        if fmt == "onnx":
            tmp.unlink(missing_ok=True)
        raise DistillError(
            f"exported {fmt} model differs from the checkpoint by {diff:.3g} (> {atol:g}); nothing was written"
        )
    commit()
    return out, diff
