"""Atomic checkpoints that load with ``weights_only=True``, and RNG state capture.

A checkpoint is written to a temporary file in the target folder, flushed to disk and renamed over the old one, so
a run killed at any moment leaves either the previous complete checkpoint or the new one, never half a file.
"""

from __future__ import annotations

import random
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from distill.errors import CheckpointError, first_line
from distill.run.atomic import remove_stale_temps, write_atomic
from distill.run.layout import RunFolder

CHECKPOINT_FORMAT = "distill-checkpoint/1"
MODEL_FORMAT = "distill-model/1"


def atomic_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to ``path`` through a temporary file and an atomic rename."""
    write_atomic(path, lambda fh: torch.save(obj, fh))


def remove_stale_temp_files(out_dir: str | Path) -> list[Path]:
    """Delete the temporaries that writes killed mid-way left in a run folder: beside the run's own files (not the
    user's) and anywhere in ``checkpoints/``, ``report/`` and its own ``teacher_cache/``, which the run writes as a
    whole (a shared ``train.teacher_cache_dir`` is cleared of old temporaries only, by the teacher cache itself: another
    run may be writing there). Returns them."""
    run = RunFolder(out_dir)
    own = [Path(f).name for f in RunFolder.files() if "/" not in f]
    return [
        *remove_stale_temps(run.path, own),
        *remove_stale_temps(run.checkpoints),
        *remove_stale_temps(run.report_dir),
        *remove_stale_temps(run.teacher_cache),
    ]


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint without unpickling code; a missing or corrupt file is a :class:`CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    other = _not_a_checkpoint(path)
    if other:
        raise CheckpointError(
            f"{path}: not a distill checkpoint: {other}; a run's checkpoints/last.pt (or student.pt) is needed here: "
            "restore it from a copy, or start a new run with --out"
        )
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        # torch's own text (it suggests weights_only=False, i.e. running the file's code) is not shown
        first = first_line(err)
        reason = "a weights-only load refuses it: not a file of tensors" if "weights_only" in str(err) else first
        raise CheckpointError(
            f"{path}: not a readable checkpoint ({reason}); it may be truncated or corrupt (or not written by "
            "distill): restore it from a copy, or start a new run with --out"
        ) from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: not a distill checkpoint (top level is {type(data).__name__})")
    return data


def _not_a_checkpoint(path: Path) -> str:
    """What ``path`` is instead of a torch checkpoint ("" when it may be one), read from its first bytes / zip index."""
    with open(path, "rb") as fh:
        head = fh.read(512)
    if zipfile.is_zipfile(path):
        try:
            names = zipfile.ZipFile(path).namelist()
        except (OSError, zipfile.BadZipFile):
            return ""
        if any(n.split("/", 1)[-1] == "constants.pkl" or "/code/" in n for n in names):
            return "it is a TorchScript export (distill export --format torchscript)"
        if any(n.endswith("/archive_format") for n in names):
            return "it is a torch.export archive (distill export --format pt2)"
        return ""
    if head[:1] == b"\x80":  # a legacy (non-zip) pickle
        return ""
    if not head:
        return "the file is empty"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return ""  # binary: torch.load says what is wrong with it (truncated, corrupt …)
    return f"it is a text file (starts with {head[:24].decode('utf-8', 'replace').splitlines()[0]!r})"


def rng_state() -> dict[str, Any]:
    """Global RNG states of python, numpy and torch (CPU and CUDA) in weights-only-loadable form."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "kind": np_state[0],
            "keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    npst = state["numpy"]
    np.random.set_state(
        (npst["kind"], npst["keys"].numpy().astype(np.uint32), npst["pos"], npst["has_gauss"], npst["cached_gaussian"])
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class preserved_rng:
    """Context manager that restores the global RNG states on exit (evaluation must not shift training)."""

    def __enter__(self) -> None:
        self._state = rng_state()

    def __exit__(self, *exc: object) -> None:
        set_rng_state(self._state)
