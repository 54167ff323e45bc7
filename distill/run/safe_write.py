"""The one guard every writing command goes through: nothing it did not create is replaced, no run folder is entered.

A command checks each output path *before any work* (before training, downloading or loading a model):

* an existing file is never replaced, unless ``--force`` (a read-only file not even then);
* nothing is written into a run folder (a folder holding a run's ``recipe.yaml`` with its ``metrics.jsonl``,
  ``checkpoints/`` …) unless ``--force``, except new files beside the run the command itself reads (``distill export
  runs/x/student.pt`` may write ``runs/x/student.ts``); even there the names a run writes are refused;
* ``distill run`` writes its own folder: it refuses one that holds another run (or the files a run writes) unless it
  is resuming it, or ``--force`` starts afresh there.

Every refusal is one :class:`~distill.errors.OutputPathError` line (exit 2) saying what is there and what to do.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from distill.errors import OutputPathError
from distill.run import atomic
from distill.run.layout import RunFolder
from distill.run.paths import check_output_dir, check_output_file

#: the files a run writes, relative to its folder, and the folders it writes into as a whole
RUN_FILES = RunFolder.files()
RUN_FOLDERS = RunFolder.folders()
_MARKERS = (RunFolder.METRICS, RunFolder.RESULTS, RunFolder.STUDENT, RunFolder.CHECKPOINTS)
FORCE_HINT = "pass --force to replace it"


def is_run_folder(folder: Path) -> bool:
    """``folder`` holds a run: its ``checkpoints/last.pt``, or its ``recipe.yaml`` beside another file a run writes."""
    run = RunFolder(folder)
    if run.last.is_file():
        return True
    return run.recipe.is_file() and any((folder / m).exists() for m in _MARKERS)


def run_folder_of(path: str | Path) -> Path | None:
    """The run folder that is ``path`` or holds it (the nearest one), or None."""
    path = Path(path).absolute()
    for folder in (path, *path.parents):
        if folder.is_dir() and is_run_folder(folder):
            return folder
    return None


def _reserved(path: Path, run: Path) -> bool:
    """``path`` is one of the files or folders a run writes in ``run``."""
    rel = path.absolute().relative_to(run).as_posix()
    return rel in RUN_FILES or any(rel == f or rel.startswith(f"{f}/") for f in RUN_FOLDERS) or rel == "."


def _inside_run(path: Path, flag: str, force: bool, own_runs: Sequence[Path]) -> None:
    run = run_folder_of(path if path.is_dir() else path.parent)
    if run is None or force:
        return
    own = any(run == Path(r).absolute() for r in own_runs)
    if own and not _reserved(path, run):
        return
    what = "a file that run writes" if own else "the folder of another run"
    raise OutputPathError(
        f"{flag} {path}: {what} ({run} holds a run: recipe.yaml, checkpoints …); nothing was written: choose a path "
        "outside it, or pass --force to write there anyway"
    )


def check_new_file(
    path: str | Path,
    flag: str = "--out",
    *,
    force: bool = False,
    own_runs: Iterable[str | Path] = (),
    replaceable: Callable[[Path], bool] | None = None,
) -> Path:
    """``path`` may be written: a new file (or, with ``force``, any writable file) outside other runs' folders.

    ``own_runs``: run folders the command reads, beside whose files it may add new ones. ``replaceable(path)``: an
    existing file the command may regenerate without ``force`` (e.g. a run's own ``report.html`` page).
    """
    path = Path(path)
    check_output_file(path, flag)  # a folder, a read-only file, a path under a file or in a read-only folder
    runs = [Path(r) for r in own_runs]
    if path.exists() and replaceable is not None and replaceable(path):
        return path
    _inside_run(path, flag, force, runs)
    if (path.exists() or path.is_symlink()) and not force:
        raise OutputPathError(
            f"{flag} {path}: the file already exists; nothing was written: choose another name, or {FORCE_HINT}"
        )
    return path


def check_new_folder(
    path: str | Path,
    flag: str = "--out",
    *,
    force: bool = False,
    files: Iterable[str | Path] = (),
    own_runs: Iterable[str | Path] = (),
) -> Path:
    """``path`` is a folder that may be created or written into: not a file, not read-only, outside other runs'
    folders; none of ``files`` (names inside it that the command will write) exists yet, unless ``force``."""
    path = Path(path)
    check_output_dir(path, flag)
    _inside_run(path, flag, force, [Path(r) for r in own_runs])
    for name in files:
        target = path / name
        if target.is_dir():
            raise OutputPathError(f"{flag} {path}: {target} is a folder where a file would be written; move it away")
        if target.exists() and not force:
            raise OutputPathError(
                f"{flag} {path}: {target} already exists; nothing was written: choose another folder, or pass "
                "--force to replace the files there"
            )
        if target.exists():
            check_output_file(target, flag)  # read-only even with --force
    return path


def check_run_folder(out_dir: str | Path, flag: str, *, resume: bool | str, force: bool) -> Path:
    """``distill run``'s own folder: new, resumed (``resume``), or holding no run files at all, unless ``force``.

    ``resume="auto"`` continues or (re)starts the run in its own folder (sweeps, ``--auto-resume``).
    """
    out_dir = Path(out_dir)
    check_output_dir(out_dir, flag)
    outer = run_folder_of(out_dir.parent) if out_dir.parent != out_dir else None
    if outer is not None and not force:
        raise OutputPathError(
            f"{flag} {out_dir}: inside the folder of another run ({outer}); nothing was written: choose a folder "
            "outside it, or pass --force"
        )
    if resume or force or not out_dir.is_dir():
        return out_dir
    last = RunFolder(out_dir).last
    if last.is_file():
        raise OutputPathError(
            f"{out_dir}: already holds a run ({last}); pass --resume to continue it, --force to start afresh in its "
            "place, or choose another folder with --out (nothing was overwritten)"
        )
    taken = [n for n in (*RUN_FILES, *RUN_FOLDERS) if (out_dir / n).exists()]
    if taken:
        raise OutputPathError(
            f"{out_dir}: already holds {', '.join(taken[:4])} (a run that stopped before its first checkpoint, or "
            "files of your own); nothing was written: pass --force to start afresh there, or choose another folder "
            "with --out"
        )
    return out_dir


def clear_run_files(out_dir: str | Path) -> list[Path]:
    """Delete what a run wrote in ``out_dir`` (``--force`` without ``--resume``): its files and folders only."""
    out_dir = Path(out_dir)
    removed = []
    for name in (*RUN_FILES, *RUN_FOLDERS):
        path = out_dir / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
        else:
            continue
        removed.append(path)
    return removed


def write_checked_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path``, checked earlier by :func:`check_new_file` (which lets a path through whose folders
    can still be created): creates those folders, then writes through a temporary file so no half file is left."""
    return atomic.write_text(path, text)
