"""What the trainer puts into its run folder beyond the files of :mod:`distill.run.folder`: the folder itself
(checked by every rank, created by rank 0), the exported student, and the corrupt files each rank's datasets
skipped, gathered into one list."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from distill.data.base import DistillDataset
from distill.distillers.base import Distiller
from distill.engine import distributed as dist_utils
from distill.engine.distributed import DistInfo
from distill.errors import CheckpointError, DistillError
from distill.registry import spec_of
from distill.run.checkpoint import MODEL_FORMAT, remove_stale_temp_files
from distill.run.folder import checkpoint_path
from distill.run.lock import RunFolderBusy, run_folder_lock


@contextmanager
def holding_run_folder(out_dir: Path | None, dist: DistInfo) -> Iterator[None]:
    """Rank 0 holds the run folder's lock (:mod:`distill.run.lock`) for the block; when another process holds it,
    every rank raises the same :class:`~distill.run.lock.RunFolderBusy` before anything is written."""
    if out_dir is None:
        yield
        return
    with ExitStack() as stack:
        error = ""
        if dist.is_main:
            try:
                stack.enter_context(run_folder_lock(out_dir))
            except RunFolderBusy as err:
                error = str(err)
        error = next((e for e in dist_utils.all_gather_objects(error) if e), "")
        if error:
            raise RunFolderBusy(error)
        yield


def open_run_folder(out_dir: Path, resume: bool, dist: DistInfo) -> None:
    """Refuse to overwrite a finished or running folder (or to resume an empty one); create it on rank 0."""
    ckpt = checkpoint_path(out_dir)
    assert ckpt is not None
    if ckpt.exists() and not resume:
        raise DistillError(
            f"{out_dir}: already holds a run ({ckpt}); pass --resume to continue it or choose "
            "another output folder with --out (nothing was overwritten)"
        )
    if resume and not ckpt.exists():
        raise CheckpointError(
            f"{out_dir}: nothing to resume (no checkpoints/last.pt: the run stopped before its first "
            "checkpoint); start it again with --force instead of --resume"
        )
    dist_utils.barrier()  # every rank has checked the folder before rank 0 writes to it
    if dist.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_temp_files(out_dir)  # left by a killed write


def corrupt_counts(datasets: Mapping[str, DistillDataset], dist: DistInfo) -> dict[str, list[str]]:
    """Corrupt files each dataset skipped (``on_corrupt: skip``), gathered from every rank."""
    local = {name: list(ds.corrupt_files) for name, ds in datasets.items()}
    merged: dict[str, list[str]] = {}
    for part in dist_utils.all_gather_objects(local) if dist.enabled else [local]:
        for name, files in part.items():
            merged.setdefault(name, [])
            merged[name].extend(f for f in files if f not in merged[name])
    return {name: sorted(files) for name, files in merged.items() if files}


def export_state(distiller: Distiller, recipe: dict[str, Any] | None, step: int) -> dict[str, Any]:
    """The deployable model alone, with the registry spec needed to rebuild it."""
    model = distiller.deployable()
    return {
        "format": MODEL_FORMAT,
        "role": distiller.student_role,
        "model": spec_of(model),
        # copies: the live tensors (or the EMA's, swapped in) keep changing after the export
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "recipe": recipe,
        "step": step,
    }
