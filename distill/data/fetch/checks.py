"""What `distill data fetch` checks before the first byte is downloaded: the targets can be written, a RAR archive
can be extracted here (the ``archives`` extra and a system tool), and the disks have room.

Each failure is one :class:`DataError` line; nothing has been downloaded, created or extracted when it is raised.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from distill.data.fetch.extract import RAR_HELP, RAR_MAGIC
from distill.data.fetch.sources import Archive, Source
from distill.errors import DataError
from distill.run.safe_write import check_new_folder

RAR_TOOLS = ("unrar", "unar", "bsdtar")
#: room kept free on a disk beyond what a fetch needs (the system and other programs live there too)
MARGIN = 256 << 20


def rar_tool() -> str | None:
    """The first system RAR tool on PATH (rarfile runs it for compressed members), or None."""
    return next((t for t in RAR_TOOLS if shutil.which(t)), None)


def has_rarfile() -> bool:
    """The ``archives`` extra (rarfile) can be imported."""
    try:
        import rarfile  # noqa: F401
    except ImportError:
        return False
    return True


def free_bytes(folder: Path) -> int:
    """Free bytes on the disk that holds ``folder`` (or its nearest existing ancestor)."""
    return shutil.disk_usage(_existing(folder)).free


def _existing(path: Path) -> Path:
    for candidate in (path, *path.absolute().parents):
        if candidate.exists():
            return candidate
    return Path(".")


def _device(path: Path) -> int:
    return os.stat(_existing(path)).st_dev


def _is_rar(archive: Archive, local: Path | None) -> bool:
    if local is None:
        return archive.file.lower().endswith(".rar")
    with open(local, "rb") as fh:
        return fh.read(8).startswith(RAR_MAGIC)


def _compressed_rar(path: Path) -> bool:
    """A local RAR with a compressed member (rarfile then needs a system tool); unreadable: left to extraction."""
    import rarfile

    try:
        with rarfile.RarFile(path) as rf:
            return any(not i.is_dir() and i.compress_type != rarfile.RAR_M0 for i in rf.infolist())
    except (rarfile.Error, OSError):
        return False


def _gb(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


def check_before_fetch(
    source: Source,
    chosen: Sequence[Archive],
    given: Mapping[str, Path],
    root: Path,
    downloads: Path,
    force: bool,
) -> None:
    """Everything a fetch of ``chosen`` into ``root`` needs that can be known before downloading; see the module."""
    name = source.name
    check_new_folder(root, "ROOT", force=force)  # not a file, not read-only, not inside a run folder
    to_download = [a for a in chosen if a.file not in given and not (downloads / a.file).is_file()]
    if to_download:
        check_new_folder(downloads, "--downloads", force=True)  # a shared cache: only writability matters
    rars = [a for a in chosen if _is_rar(a, given.get(a.file))]
    if rars:
        if not has_rarfile():
            raise DataError(f"distill data fetch {name}: {rars[0].file} is a RAR archive: {RAR_HELP}")
        local_compressed = [a for a in rars if a.file in given and _compressed_rar(given[a.file])]
        needs_tool = [a for a in rars if a.file not in given] + local_compressed
        if needs_tool and rar_tool() is None:
            raise DataError(
                f"distill data fetch {name}: {needs_tool[0].file} is a compressed RAR archive and no RAR tool "
                f"({', '.join(RAR_TOOLS)}) was found on PATH: {RAR_HELP}"
            )
    # room: the rest of each download, and at least the archives' size again for the extracted files beside ROOT
    pending = 0
    for a in to_download:
        if a.size is not None:
            part = downloads / f"{a.file}.part"
            pending += max(a.size - (part.stat().st_size if part.is_file() else 0), 0)
    extracted = sum(a.size for a in chosen if a.size is not None)
    needs = [(downloads, pending, "the downloads"), (root.parent, extracted, "the extracted files")]
    if _device(downloads) == _device(root.parent):
        needs = [(root.parent, pending + extracted, "the downloads and the extracted files")]
    for folder, need, what in needs:
        if need <= 0:
            continue
        free = free_bytes(folder)
        if free < need + MARGIN:
            raise DataError(
                f"distill data fetch {name}: needs about {_gb(need + MARGIN)} free on the disk of {_existing(folder)} "
                f"for {what}, only {_gb(free)} is free; free some space, or put --downloads or ROOT on another disk. "
                "Nothing was downloaded"
            )
