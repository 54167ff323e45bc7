"""End-to-end training steps through the real loader, shared by ``gpu_path.py --loader`` and ``paper_shapes.py``.

A recipe runs through :func:`distill.build.build_run` and ``Trainer.fit`` as ``distill run`` runs it: its reader
in the prepared ``format`` (``store``: the decoded uint8 store of ``distill data prepare``, prepared first), its
own ``num_workers`` worker processes, and on CUDA the engine's pinned memory (``pin_memory``) and non-blocking
copies (``move_to``). :class:`StepTimer` records each training step's start and end (the device synchronised at
both), so the wall time **between step ends** is a whole step as training pays for it: waiting for the loader, the
copy to the device and the compute; the compute part alone is the time inside the step. With ``device="cpu"`` the
same code runs (the tests use it at tiny sizes); on CPU nothing is pinned.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

__all__ = ["StepTimer", "run_end_to_end", "summarise"]


class StepTimer:
    """Wraps ``trainer._train_step``: per step its start and end (synchronised) and whether the batch it received
    from the loader was in pinned memory (what lets the engine's ``non_blocking`` copies overlap)."""

    def __init__(self, trainer: Any, inner: Callable[[dict[str, Any]], Any] | None = None) -> None:
        self.trainer = trainer
        self.inner = inner or trainer._train_step
        cuda = trainer.device.type == "cuda"
        self.sync: Callable[[], None] = torch.cuda.synchronize if cuda else (lambda: None)
        self.starts: list[float] = []
        self.ends: list[float] = []
        self.pinned: list[bool] = []
        trainer._train_step = self  # the engine calls this instead

    def __call__(self, batch: dict[str, Any]) -> Any:
        tensors = [v for v in batch.values() if isinstance(v, torch.Tensor)] if isinstance(batch, dict) else []
        self.pinned.append(bool(tensors) and all(t.is_pinned() for t in tensors if t.device.type == "cpu"))
        self.sync()
        self.starts.append(time.perf_counter())
        values = self.inner(batch)
        self.sync()
        self.ends.append(time.perf_counter())
        return values


def summarise(timer: StepTimer, warmup: int) -> dict[str, Any]:
    """Seconds per step after ``warmup`` steps: end to end (between step ends), compute (inside the step) and the
    rest (waiting for the loader and the copy); the loader's settings as the engine made them."""
    steps = len(timer.ends) - warmup
    if warmup < 1 or steps < 1:
        raise ValueError(f"need at least one warm-up and one timed step, got {len(timer.ends)} steps")
    e2e = (timer.ends[-1] - timer.ends[warmup - 1]) / steps
    compute = sum(e - s for s, e in zip(timer.starts[warmup:], timer.ends[warmup:], strict=True)) / steps
    loader = getattr(timer.trainer, "_train_loader", None)  # the persistent loader when workers > 0
    cfg = timer.trainer.config
    return {
        "steps": steps,
        "e2e_s_per_step": e2e,
        "compute_s_per_step": compute,
        "wait_s_per_step": max(0.0, e2e - compute),
        "data_share": max(0.0, e2e - compute) / e2e if e2e > 0 else 0.0,
        "num_workers": cfg.num_workers,
        "pin_memory": bool(loader.pin_memory) if loader is not None else timer.trainer.device.type == "cuda",
        "batches_pinned": all(timer.pinned[warmup:]),
        "batch_size": cfg.batch_size,
    }


def run_end_to_end(
    path: Path,
    data_dir: Path,
    device: str,
    steps: int,
    warmup: int,
    fmt: str = "store",
    workers: int | None = None,
    overrides: Sequence[str] = (),
) -> dict[str, Any]:
    """Train ``warmup + steps`` iterations of recipe ``path`` (weights random, online teacher, no evaluation) on its
    data under ``data_dir`` when synthetic, read in ``fmt`` by ``workers`` processes (default: the recipe's own);
    :func:`summarise`'s numbers plus the format and the reader's class."""
    from benchmarks.loader_throughput import _prepare
    from benchmarks.paper_shapes import _drop_weights
    from distill.build import build_run, ensure_data
    from distill.recipe.check import load_recipe

    recipe, _ = load_recipe(path, list(overrides))
    _drop_weights(recipe)
    if recipe.data.synthetic is not None:  # written once per recipe name under data_dir
        recipe.data.root = str(data_dir / f"{recipe.name}_{recipe.data.synthetic.name}")
        recipe.data.synthetic.root = recipe.data.root
    ensure_data(recipe.data)
    spec = recipe.data.train
    if fmt == "store":
        _prepare(spec.name, {**spec.args, "root": spec.args.get("root") or recipe.data.root})
    spec.args["format"] = fmt
    recipe.data.eval = {}
    cfg = recipe.train
    cfg.iterations, cfg.epochs, cfg.eval_every, cfg.log_every = warmup + steps, None, warmup + steps, warmup + steps
    cfg.num_workers = cfg.num_workers if workers is None else workers
    cfg.progress, cfg.checkpoint_every, cfg.device, cfg.teacher_cache = False, None, device, "online"
    recipe.output.tensorboard = False
    with tempfile.TemporaryDirectory(prefix="end_to_end_") as out:
        run = build_run(recipe, out=out)
        timer = StepTimer(run.trainer)
        run.trainer.fit()
    reader = run.train_set
    return {**summarise(timer, warmup), "format": getattr(reader, "format", fmt), "reader": type(reader).__name__}
