"""Safe extraction of zip, tar (plain/gz/bz2/xz) and rar archives into a folder.

Members with absolute paths, ``..`` components, or links (tar: links that leave the folder, by tarfile's ``data``
filter; zip/rar: any link) are refused: for zip and rar before anything is written, for tar when the member is
reached. The caller extracts into a temporary folder and deletes it on any error, so nothing lands outside it.
"""

from __future__ import annotations

import shutil
import stat
import tarfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath, PureWindowsPath

from distill.errors import DataError

RAR_MAGIC = (b"Rar!\x1a\x07\x00", b"Rar!\x1a\x07\x01\x00")
RAR_HELP = (
    'install the optional extra with `pip install -e ".[archives]"` (that is, `pip install rarfile`) and one of the '
    "system tools unrar, unar or bsdtar (e.g. `apt-get install unar` or `apt-get install libarchive-tools`)"
)


def archive_kind(path: Path) -> str:
    """``zip``, ``tar`` or ``rar``, from the file's content (not its name)."""
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(RAR_MAGIC):
        return "rar"
    if zipfile.is_zipfile(path):
        return "zip"
    if tarfile.is_tarfile(path):
        return "tar"
    raise DataError(
        f"{path}: not a zip, tar(.gz/.bz2/.xz) or rar archive (first bytes {head!r}); if the host served an error page "
        "instead, delete the file and fetch again"
    )


def unsafe_reason(name: str) -> str | None:
    """Why member ``name`` may not be extracted (absolute path, ``..``), or None when it is safe."""
    win = PureWindowsPath(name)
    if name.startswith(("/", "\\")) or win.drive or win.root:
        return "absolute path"
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if ".." in parts:
        return "'..' component"
    return None


def extract(archive: Path, target: Path) -> None:
    """Extract ``archive`` into the existing folder ``target``; a hostile member raises :class:`DataError`."""
    kind = archive_kind(archive)
    {"zip": _extract_zip, "tar": _extract_tar, "rar": _extract_rar}[kind](archive, target)


def _refuse(archive: Path, member: str, reason: str) -> DataError:
    return DataError(f"refusing to extract {archive.name}: member '{member}' has {reason}; extraction abandoned")


def _broken(archive: Path, err: BaseException) -> DataError:
    return DataError(
        f"cannot extract {archive} ({type(err).__name__}: {err}): a corrupt archive (delete it and fetch again) or a "
        "full disk"
    )


def _extract_zip(archive: Path, target: Path) -> None:
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as err:
        raise _broken(archive, err) from None
    with zf:
        infos = zf.infolist()
        for info in infos:
            reason = unsafe_reason(info.filename)
            if reason is None and stat.S_ISLNK(info.external_attr >> 16):
                reason = "a symbolic link"
            if reason:
                raise _refuse(archive, info.filename, reason)
        root = target.resolve()
        try:
            for info in infos:
                dest = (target / info.filename).resolve()
                if not dest.is_relative_to(root):
                    raise _refuse(archive, info.filename, "a path outside the target")
                if info.is_dir():
                    dest.mkdir(parents=True, exist_ok=True)
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(dest, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
        except (zipfile.BadZipFile, EOFError, OSError, zlib.error) as err:
            raise _broken(archive, err) from None


def _extract_tar(archive: Path, target: Path) -> None:
    def checked(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
        reason = unsafe_reason(member.name)  # the data filter would strip a leading '/': refuse it instead
        if reason:
            raise _refuse(archive, member.name, reason)
        return tarfile.data_filter(member, dest)

    try:
        with tarfile.open(archive) as tf:
            tf.extractall(target, filter=checked)
    except tarfile.FilterError as err:
        member = getattr(err, "tarinfo", None)
        name = member.name if member is not None else "?"
        raise DataError(f"refusing to extract {archive.name}: member '{name}' is unsafe ({err})") from None
    except (tarfile.TarError, EOFError, OSError, zlib.error) as err:
        raise _broken(archive, err) from None


def _extract_rar(archive: Path, target: Path) -> None:
    """Stored members need rarfile alone; compressed ones (TID2013's, Waterloo's) also a system tool."""
    try:
        import rarfile
    except ImportError:
        raise DataError(f"{archive.name} is a RAR archive: {RAR_HELP}") from None
    try:
        with rarfile.RarFile(archive) as rf:
            for info in rf.infolist():
                reason = unsafe_reason(info.filename)
                if reason is None and info.is_symlink():
                    reason = "a symbolic link"
                if reason:
                    raise _refuse(archive, info.filename, reason)
            rf.extractall(target)
    except rarfile.RarCannotExec:
        raise DataError(f"{archive.name} is a compressed RAR archive and no RAR tool was found: {RAR_HELP}") from None
    except (rarfile.Error, OSError) as err:
        raise _broken(archive, err) from None
