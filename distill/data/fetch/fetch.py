"""`distill data fetch NAME [ROOT]`: download (or take) a dataset's archives, verify, extract safely, open, count.

Order of work: every archive is verified (size, published checksum, or the sha256 recorded by the last fetch) before
anything is extracted; extraction goes into a temporary folder beside ROOT; the dataset's own reader must open the
extracted root before it is moved to ROOT, with its record ``ROOT/.distill_fetch.json`` (archive names, URLs,
sizes, sha256) that a later fetch is checked against.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distill.data.fetch.checks import check_before_fetch
from distill.data.fetch.download import Expected, download, verify
from distill.data.fetch.extract import extract
from distill.data.fetch.sources import MIRROR_ENV, SOURCES, Archive, Source, archive_url, selected_archives
from distill.errors import DataError, DistillError
from distill.run.atomic import write_text

RECORD = ".distill_fetch.json"
SYNTHETIC_MARKER = "SYNTHETIC.json"  # written by the synthetic writers (distill.data.*.synthetic)
DOWNLOADS_ENV = "DISTILL_DOWNLOADS"
_MAX_DEPTH = 5


@dataclass
class FetchResult:
    root: Path
    counts: list[tuple[str, int]] | None  # (view, items); None when no reader is registered for the dataset
    archives: list[dict[str, Any]]
    reused: bool = False  # ROOT already held this fetch


def source_of(name: str) -> Source:
    if name not in SOURCES:
        raise DataError(f"distill data fetch: unknown dataset '{name}'; one of: {', '.join(SOURCES)}")
    return SOURCES[name]


def read_record(root: Path) -> dict[str, Any] | None:
    path = root / RECORD
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: unreadable fetch record ({err}); delete it to fetch again") from None
    return record if isinstance(record, dict) else None


def fetch_dataset(
    name: str,
    root: str | Path | None = None,
    archives: Sequence[str | Path] = (),
    url: str | None = None,
    force: bool = False,
    downloads: str | Path | None = None,
    scales: Sequence[int] | None = None,
    say: Callable[[str], None] = print,
) -> FetchResult:
    """Fetch dataset ``name`` into ``root`` (default: the source's ``default_root``); see the module docstring."""
    try:
        return _fetch(name, root, archives, url, force, downloads, scales, say)
    except OSError as err:  # a folder that cannot be written, a full disk …
        raise DataError(f"distill data fetch {name}: {err}") from None


def _fetch(
    name: str,
    root: str | Path | None,
    archives: Sequence[str | Path],
    url: str | None,
    force: bool,
    downloads: str | Path | None,
    scales: Sequence[int] | None,
    say: Callable[[str], None],
) -> FetchResult:
    source = source_of(name)
    root = Path(root or source.default_root).expanduser()
    scales = _check_scales(source, scales)
    record = read_record(root) if root.is_dir() else None
    occupied = (root.is_dir() and any(root.iterdir())) or (root.exists() and not root.is_dir())
    if occupied:
        if record is not None and record.get("dataset") == name and not force:
            return _reuse(source, root, record, scales, say)
        synthetic = (root / SYNTHETIC_MARKER).is_file()
        replaceable = record is not None or synthetic
        if not force or not replaceable:
            what = (
                f"holds a fetch of '{record.get('dataset')}'"
                if record
                else "holds a synthetic stand-in"
                if synthetic
                else "holds files that are not a fetched dataset"
            )
            advice = "pass --force to replace it" if replaceable else "remove it yourself or choose another ROOT"
            raise DataError(f"{root} already exists and {what}; {advice}")
    chosen = selected_archives(source, scales)
    given = _match_given(source, chosen, [Path(p).expanduser() for p in archives])
    recorded = {a.get("file"): a.get("sha256") for a in (record or {}).get("archives", []) if isinstance(a, dict)}
    downloads = Path(downloads or os.environ.get(DOWNLOADS_ENV) or root.parent / "downloads").expanduser()
    mirror = os.environ.get(MIRROR_ENV) or None
    if url and not url.endswith("/") and len(chosen) > 1:
        raise DataError(
            f"--url {url}: {name} has {len(chosen)} archives ({', '.join(a.file for a in chosen)}); give a base URL "
            "ending in '/' that serves them by these names"
        )
    check_before_fetch(source, chosen, given, root, downloads, force)  # before the first byte is downloaded
    entries = []
    for archive in chosen:
        path, sha, origin = _obtain(source, archive, root, given, downloads, url, mirror, recorded.get(archive.file))
        if archive.md5 or archive.sha256:
            checked = f"published {'md5' if archive.md5 else 'sha256'} verified"
        elif recorded.get(archive.file):
            checked = "matches the last fetch"
        else:
            checked = f"no published checksum: recorded in {RECORD} for later fetches once this one succeeds"
        say(f"{archive.file}: sha256 {sha} ({checked})")
        entries.append(
            {"file": archive.file, "source": origin, "path": str(path), "size": path.stat().st_size, "sha256": sha}
        )
    counts = _install(source, root, [Path(e["path"]) for e in entries], entries, scales, say)
    return FetchResult(root, counts, entries)


def _reuse(
    source: Source, root: Path, record: dict[str, Any], scales: list[int] | None, say: Callable[[str], None]
) -> FetchResult:
    """The result for a ROOT that already holds this dataset's fetch (counted again by the reader)."""
    try:
        counts = count_items(root, source, scales)
    except DistillError as err:
        raise DataError(
            f"{root} holds a fetch of {source.name} that does not open as asked ({err}); --force fetches it again"
        ) from None
    say(f"{source.title} is already in {root} (fetched {record.get('fetched_utc', '?')}); --force fetches again")
    return FetchResult(root, counts, record.get("archives", []), reused=True)


def _check_scales(source: Source, scales: Sequence[int] | None) -> list[int] | None:
    if not scales:
        return None
    if not source.scale_tags:
        raise DataError(f"--scale selects DIV2K's LR archives; {source.name} has no per-scale archives")
    bad = [s for s in scales if s not in (2, 3, 4)]
    if bad:
        raise DataError(f"--scale {bad[0]}: DIV2K's bicubic LR archives exist for scales 2, 3 and 4")
    return sorted(set(scales))


def _match_given(source: Source, chosen: tuple[Archive, ...], paths: list[Path]) -> dict[str, Path]:
    """``--archive`` files by the archive name they stand for (matched by file name; a lone archive matches any)."""
    for path in paths:
        if not path.is_file():
            raise DataError(f"--archive {path}: no such file")
    if len(chosen) == 1 and len(paths) == 1:
        return {chosen[0].file: paths[0]}
    by_name = {a.file.lower(): a.file for a in chosen}
    matched = {}
    for path in paths:
        if path.name.lower() not in by_name:
            raise DataError(
                f"--archive {path}: not one of {source.name}'s archives ({', '.join(by_name.values())}); keep the "
                "published file name"
            )
        matched[by_name[path.name.lower()]] = path
    return matched


def _hand_hint(source: Source, archive: Archive, root: Path, where: str) -> str:
    return (
        f"Download {archive.file} by hand from {where} and run "
        f"`distill data fetch {source.name} {root} --archive PATH/{archive.file}`"
    )


def _obtain(
    source: Source,
    archive: Archive,
    root: Path,
    given: dict[str, Path],
    downloads: Path,
    url: str | None,
    mirror: str | None,
    recorded_sha: str | None,
) -> tuple[Path, str, str]:
    """(verified local file, its sha256, where it came from) for ``archive``."""
    expected = Expected(archive.size, archive.md5, archive.sha256, archive.checksum_source)
    if recorded_sha and not archive.sha256:
        expected = Expected(archive.size, archive.md5, recorded_sha, f"recorded by the last fetch in {root / RECORD}")
    if archive.file in given:
        path = given[archive.file]
        return path, verify(path, expected, f"--archive {path}"), f"local file {path}"
    dest = downloads / archive.file
    src = archive_url(archive, url, mirror)
    if dest.is_file():
        try:
            sha = verify(dest, expected, f"{dest} (downloaded earlier)")
        except DataError as err:
            dest.unlink()
            raise DataError(f"{err}; it was deleted: re-run to download it again") from None
        return dest, sha, src or f"local file {dest}"
    if src is None:
        raise DataError(
            f"{source.title}: {archive.file} has no stable download URL ({source.note}). "
            + _hand_hint(source, archive, root, source.page)
        )
    return dest, download(src, dest, expected, _hand_hint(source, archive, root, src)), src


def find_root(folder: Path, source: Source) -> Path | None:
    """The shallowest folder under ``folder`` that holds all of ``source.markers`` (and has ``root_name``)."""
    markers = {m.lower() for m in source.markers}
    level = [folder]
    for _ in range(_MAX_DEPTH + 1):
        children = []
        for d in sorted(level):
            entries = [e for e in d.iterdir() if e.name != "__MACOSX"]
            named = source.root_name is None or d.name.lower() == source.root_name.lower()
            if named and markers <= {e.name.lower() for e in entries}:
                return d
            children += [e for e in entries if e.is_dir() and not e.is_symlink()]
        level = children
    return None


def _listing(folder: Path, depth: int = 2) -> str:
    """A short description of what ``folder`` holds (two levels, at most ~10 entries)."""
    shown: list[str] = []
    todo = [(folder, 0)]
    while todo and len(shown) < 10:
        d, level = todo.pop(0)
        for e in sorted(d.iterdir())[:6]:
            rel = e.relative_to(folder).as_posix() + ("/" if e.is_dir() else "")
            shown.append(rel)
            if e.is_dir() and level + 1 < depth:
                todo.append((e, level + 1))
    return ", ".join(shown[:10]) or "nothing"


def count_items(root: Path, source: Source, scales: Sequence[int] | None = None) -> list[tuple[str, int]] | None:
    """(view, items) for each of the source's views, opened with its registered reader; None without a reader."""
    from distill.registry import DATASETS

    if source.reader not in DATASETS:
        return None
    reader = DATASETS.get(source.reader)
    counts, errors = [], []
    for label, kwargs in source.views:
        if scales and "scale" in kwargs and kwargs["scale"] not in scales:
            continue
        try:
            counts.append((label, len(reader(root=str(root), **kwargs))))
        except DistillError as err:
            if not source.optional_views:
                raise
            errors.append(err)
    if errors and not counts:
        raise errors[0]
    return counts


def _install(
    source: Source,
    root: Path,
    paths: list[Path],
    entries: list[dict[str, Any]],
    scales: Sequence[int] | None,
    say: Callable[[str], None],
) -> list[tuple[str, int]] | None:
    """Extract ``paths`` beside ``root``, check the layout with the reader, then move it to ``root``."""
    root.parent.mkdir(parents=True, exist_ok=True)
    for stale in root.parent.glob(f".{root.name}.extract-*"):  # left by a process killed while extracting
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.extract-", dir=root.parent))
    try:
        for path in paths:
            say(f"extracting {path.name} …")
            extract(path, tmp)
        found = find_root(tmp, source)
        if found is None:
            named = f" named {source.root_name}" if source.root_name else ""
            raise DataError(
                f"{source.title}: the archive(s) {', '.join(p.name for p in paths)} hold no folder{named} with "
                f"{', '.join(source.markers)}; found: {_listing(tmp)}. Expected the official layout ({source.page})"
            )
        try:
            counts = count_items(found, source, scales)
        except DistillError as err:
            raise DataError(
                f"{source.title}: the extracted folder {found.relative_to(tmp).as_posix() or '.'} (holding "
                f"{_listing(found, 1)}) does not open with the '{source.reader}' reader: {err}"
            ) from None
        record = {
            "dataset": source.name,
            "title": source.title,
            "fetched_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "archives": [{k: v for k, v in e.items() if k != "path"} for e in entries],
            "counts": dict(counts) if counts is not None else None,
        }
        write_text(found / RECORD, json.dumps(record, indent=2) + "\n")
        _move_into_place(found, root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return counts


def _move_into_place(found: Path, root: Path) -> None:
    """Rename ``found`` to ``root``; an existing ``root`` is set aside first and deleted only after the swap."""
    old = None
    if root.exists() or root.is_symlink():
        old = root.with_name(f".{root.name}.old-{os.getpid()}")
        root.rename(old)
    try:
        found.rename(root)
    except OSError:
        if old is not None:
            old.rename(root)
        raise
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old)
        else:
            old.unlink()
