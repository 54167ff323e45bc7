"""One process trains into a run folder at a time: an exclusive lock on ``<run>/.distill-run.lock``.

The lock is ``fcntl.flock`` on the file, so the operating system drops it when its process ends in any way, SIGKILL
and power cuts included: a killed run never leaves a folder locked, and ``--resume`` takes the lock again. A second
``distill run`` on the same folder while the first is still training (two terminals, a re-queued job whose first copy
still runs, a sweep started twice) is refused in one line before it writes anything. The lock is re-entrant within
a process (``distill run`` holds it from the build to the end of ``Trainer.fit``, which takes it too) and the file is
removed on release. Where ``fcntl`` is missing (Windows) nothing is locked.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from distill.errors import DistillError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".distill-run.lock"

#: folder → [descriptor, holds] of the locks this process holds
_HELD: dict[Path, list[int]] = {}


class RunFolderBusy(DistillError):
    """Another process is training into the run folder."""


@contextmanager
def run_folder_lock(folder: str | Path) -> Iterator[None]:
    """Hold ``folder``'s lock for the block (creating the folder); :class:`RunFolderBusy` when another process holds
    it. Nested holds by one process share the lock."""
    key = Path(folder).absolute()
    if fcntl is None:
        yield
        return
    if key in _HELD:
        _HELD[key][1] += 1
    else:
        _HELD[key] = [_acquire(key), 1]
    try:
        yield
    finally:
        held = _HELD[key]
        held[1] -= 1
        if held[1] == 0:
            del _HELD[key]
            _release(key, held[0])


def _acquire(folder: Path) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _read_holder(fd)
            os.close(fd)
            raise RunFolderBusy(
                f"{folder}: another distill process{holder} is training into this run folder; nothing was written: "
                "wait for it to finish (then --resume continues it if it was stopped), stop it, or choose another "
                "folder with --out"
            ) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:  # not a file its last holder removed while this process waited for it
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            return fd
        os.close(fd)


def _release(folder: Path, fd: int) -> None:
    try:
        (folder / LOCK_FILE).unlink(missing_ok=True)  # before the unlock: a waiter then sees a removed file
    finally:
        os.close(fd)


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode().strip()
    except (OSError, UnicodeDecodeError):
        return ""
    return f" (pid {text})" if text.isdigit() else ""
