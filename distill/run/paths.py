"""Checks that an output path can be written, made before any work so that a bad ``--out`` costs nothing."""

from __future__ import annotations

import os
from pathlib import Path

from distill.errors import OutputPathError


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(".")


def _writable(folder: Path) -> bool:
    """Writable by this process and not marked read-only (no write bit at all: respected even by root)."""
    return os.access(folder, os.W_OK | os.X_OK) and bool(folder.stat().st_mode & 0o222)


def check_output_dir(path: str | Path, flag: str = "--out") -> Path:
    """``path`` is an existing writable folder or can be created; raises :class:`OutputPathError` otherwise."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputPathError(f"{flag} {path}: is a file, not a folder; choose a folder (existing or new)")
    return _check_parents(path, path, flag)


def check_output_file(path: str | Path, flag: str = "--out") -> Path:
    """``path`` is a file that can be (over)written: not a folder, not under a file, in a writable folder."""
    path = Path(path)
    if path.is_dir():
        raise OutputPathError(f"{flag} {path}: is a folder; give a file name inside it")
    if path.exists() and not _writable_file(path):
        raise OutputPathError(f"{flag} {path}: the file is read-only; choose another file name")
    return _check_parents(path.parent, path, flag)


def _writable_file(path: Path) -> bool:
    return os.access(path, os.W_OK) and bool(path.stat().st_mode & 0o222)


def _check_parents(folder: Path, shown: Path, flag: str) -> Path:
    """The nearest existing ancestor of ``folder`` (``folder`` included) is a writable folder."""
    base = _nearest_existing(folder)
    if not base.is_dir():
        raise OutputPathError(
            f"{flag} {shown}: {base} is a file, so nothing can be created under it; choose another path"
        )
    if not _writable(base):
        raise OutputPathError(
            f"{flag} {shown}: the folder {base} is read-only (no write permission); choose a writable location"
        )
    return shown
