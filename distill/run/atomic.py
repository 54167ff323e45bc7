"""Files written whole or not at all: the one way distill writes a file a kill must not leave half-written.

The content goes to a hidden temporary file beside the target (``.NAME.XXXXXXXX.tmp``), is flushed to disk and
renamed over the target, and the folder entry is synced; a process killed at any moment leaves either the old
file (or none) and a stray temporary, never a truncated target. :func:`remove_stale_temps` clears the strays.
"""

from __future__ import annotations

import io
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

TEMP_SUFFIX = ".tmp"


def write_atomic(path: str | Path, write: Callable[[BinaryIO], object]) -> Path:
    """Create ``path``'s folder, call ``write(fh)`` on a temporary file beside it, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _sync_folder(path.parent)
    return path


def write_bytes(path: str | Path, data: bytes) -> Path:
    """``path`` holds ``data``, written atomically."""
    return write_atomic(path, lambda fh: fh.write(data))


def write_text(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    """``path`` holds ``text``, written atomically."""
    return write_bytes(path, text.encode(encoding))


def write_with(path: str | Path, save: Callable[[io.BytesIO], object]) -> Path:
    """Atomically write what ``save(buffer)`` puts in an in-memory buffer (``fig.savefig``, ``Image.save`` …)."""
    buf = io.BytesIO()
    save(buf)
    return write_bytes(path, buf.getvalue())


def is_temp_of(path: Path, names: Iterable[str] | None = None) -> bool:
    """``path`` is a temporary left by :func:`write_atomic` (of one of ``names``, or of any file when None)."""
    name = path.name
    if not (name.startswith(".") and name.endswith(TEMP_SUFFIX)):
        return False
    return names is None or any(name.startswith(f".{n}.") for n in names)


#: A temporary untouched this long is a kill's leftover even in a folder other processes write to: a live write
#: streams into its temporary and renames it within seconds to minutes.
STALE_TEMP_AGE_S = 6 * 3600.0


def remove_stale_temps(
    folder: str | Path, names: Iterable[str] | None = None, older_than_s: float | None = None
) -> list[Path]:
    """Delete the temporaries that writes killed mid-way left in ``folder`` (only those of ``names`` when given:
    a folder shared with the user's own files); returns them. Without ``older_than_s`` call it only where no other
    writer is at work; in a folder other processes may be writing to, pass ``older_than_s`` (e.g.
    :data:`STALE_TEMP_AGE_S`) so that only temporaries last modified longer ago than that are removed."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    wanted = None if names is None else tuple(names)
    now = time.time()
    removed = []
    for path in folder.iterdir():
        if not (path.is_file() and not path.is_symlink() and is_temp_of(path, wanted)):
            continue
        try:
            if older_than_s is not None and now - path.stat().st_mtime < older_than_s:
                continue
            path.unlink()
        except FileNotFoundError:  # renamed into place or removed by its writer meanwhile
            continue
        removed.append(path)
    return removed


def _sync_folder(folder: Path) -> None:
    """Make the rename durable (a no-op where folders cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
