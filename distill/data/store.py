"""Decoded uint8 image stores: a dataset's images decoded once into one memory-mapped file, read without decoding.

A store lives in ``ROOT/distill_store/`` beside the dataset it was made from::

    ROOT/distill_store/images.u8        every image as uint8 [H, W, 3], back to back
    ROOT/distill_store/manifest.json    {"format": 1, "entries": {rel path: {offset, shape, size, mtime_ns}}}

Entries are keyed by the source file's path relative to ``ROOT``, and carry the source's size and modification time
when it was decoded. :func:`prepare_files` appends the files not yet stored (or stored from an older version of
the file), writing the manifest every few seconds, so an interrupted preparation continues where it stopped and a
second preparation (another scale, another split) adds to the same store. :meth:`ImageStore.check` refuses, in one
line naming the command that rebuilds it, a store that lacks a file, was cut short (its data file is smaller than
the manifest says) or is stale (a source file changed size or time since it was stored).

Pixels are Pillow's decode converted to RGB, exactly what :func:`distill.data.images.load_rgb` returns × 255, so a
reader with ``format: store`` gives bit-identical items. 16-bit and float images cannot be stored as 8 bits and are
refused at preparation.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from distill.errors import DataError
from distill.run.atomic import write_text

__all__ = ["FORMATS", "STORE_DIR", "ImageStore", "check_format", "decode_uint8", "prepare_files"]

STORE_DIR = "distill_store"
DATA_FILE = "images.u8"
MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1
#: what a reader's ``format`` option accepts
FORMATS = ("files", "torchvision", "store")
_EIGHT_BIT_MODES = ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "LAB", "HSV")


def check_format(key: str, value: object) -> str:
    """``value`` if it is one of :data:`FORMATS`, else a :class:`DataError` naming the reader key and the choices."""
    if value not in FORMATS:
        raise DataError(f"{key}: format '{value}' is not one of {', '.join(FORMATS)}")
    return str(value)


def decode_uint8(path: Path) -> np.ndarray:
    """Pillow's decode of ``path`` as uint8 ``[H, W, 3]`` (grey replicated, alpha dropped); 16-bit/float refused."""
    from distill.data.images import _DECODE_ERRORS

    try:
        with Image.open(path) as img:
            img.load()
            if img.mode not in _EIGHT_BIT_MODES:
                raise DataError(
                    f"{path}: a {img.mode} image cannot be stored as 8 bits without loss; read this dataset with "
                    "format: files"
                )
            if img.mode != "RGB":
                img = img.convert("RGB")
            return np.ascontiguousarray(np.asarray(img, dtype=np.uint8))
    except _DECODE_ERRORS as err:
        raise DataError(f"cannot decode image {path}: {err}. Replace it from the original archive") from err


def _stat(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


class ImageStore:
    """The store of dataset ``root`` (``root/distill_store``): read decoded images as memory-mapped uint8 arrays.

    ``rebuild`` is the command printed when the store is missing, incomplete, truncated or stale. The memory map
    is opened on first use in each process and is not pickled (DataLoader workers open their own).
    """

    def __init__(self, root: str | Path, rebuild: str) -> None:
        self.root = Path(root).expanduser()
        self.folder = self.root / STORE_DIR
        self.rebuild = rebuild
        self.entries: dict[str, dict[str, Any]] = {}
        self._mm: np.ndarray | None = None
        self._views: dict[str, np.ndarray] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_mm": None, "_views": {}}

    def _fail(self, why: str) -> DataError:
        return DataError(f"{self.folder}: {why}; rebuild it with `{self.rebuild}`")

    def rel(self, path: str | Path) -> str:
        """``path`` relative to the dataset root, with forward slashes (the manifest's key)."""
        return Path(os.path.relpath(Path(path), self.root)).as_posix()

    def check(self, files: Iterable[str | Path], prefix: str = "") -> ImageStore:
        """Load the manifest and check that every one of ``files`` is stored (under ``prefix`` + its relative path),
        whole and up to date (one-line errors)."""
        manifest = self.folder / MANIFEST
        if not manifest.is_file():
            raise self._fail("no store here (format: store needs one)")
        try:
            data = json.loads(manifest.read_text())
            entries = data["entries"]
            if data.get("format") != MANIFEST_FORMAT or not isinstance(entries, dict):
                raise ValueError("unknown manifest format")
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise self._fail(f"{MANIFEST} is unreadable ({err})") from None
        self.entries = entries
        data_file = self.folder / DATA_FILE
        have = data_file.stat().st_size if data_file.is_file() else 0
        need = max((e["offset"] + int(np.prod(e["shape"])) for e in entries.values()), default=0)
        if have < need:
            raise self._fail(f"{DATA_FILE} holds {have} bytes but the manifest needs {need} (truncated)")
        for path in files:
            key = prefix + self.rel(path)
            entry = entries.get(key)
            if entry is None:
                raise self._fail(f"{key} is not in the store (prepared for another split or scale?)")
            try:
                size, mtime = _stat(Path(path))
            except OSError:
                raise self._fail(f"its source {path} is missing") from None
            if (size, mtime) != (entry["size"], entry["mtime_ns"]):
                raise self._fail(f"{key} changed since it was stored (stale)")
        return self

    def _map(self) -> np.ndarray:
        if self._mm is None:  # a plain ndarray over the map: slicing it costs no memmap bookkeeping
            self._mm = np.asarray(np.memmap(self.folder / DATA_FILE, dtype=np.uint8, mode="r"))
        return self._mm

    def has(self, prefix: str) -> bool:
        """Whether any entry's key starts with ``prefix`` (e.g. a set of prepared views)."""
        return any(k.startswith(prefix) for k in self.entries)

    def array(self, path: str | Path, prefix: str = "") -> np.ndarray:
        """The stored image of ``path`` (under ``prefix``) as a read-only uint8 ``[H, W, 3]`` view of the memory map
        (no copy)."""
        key = prefix + str(path)
        view = self._views.get(key)
        if view is None:
            entry = self.entries[prefix + self.rel(path)]
            h, w, c = entry["shape"]
            start = entry["offset"]
            view = self._views[key] = self._map()[start : start + h * w * c].reshape(h, w, c)
        return view

    def shape(self, path: str | Path) -> tuple[int, int]:
        """(height, width) of the stored image of ``path``."""
        h, w, _ = self.entries[self.rel(path)]["shape"]
        return int(h), int(w)


def prepare_files(
    root: str | Path,
    files: Sequence[str | Path],
    progress: Callable[[int, int], None] | None = None,
    save_every_s: float = 5.0,
    prefix: str = "",
    make: Callable[[Path], np.ndarray] | None = None,
) -> dict[str, int]:
    """Decode ``files`` (under ``root``) into ``root/distill_store``, skipping those stored and up to date.

    With ``make`` the stored array of a file is ``make(path)`` (uint8 ``[H, W, 3]``, e.g. a prepared view) under
    the key ``prefix`` + its relative path; it is still checked against the file's size and time.

    Resumable: the manifest is rewritten atomically every ``save_every_s`` seconds and at the end; bytes written after
    the last manifest (an interrupted run) are cut off before appending. Returns counts of ``stored``, ``kept``
    (already there) and ``bytes`` of the data file.
    """
    root = Path(root).expanduser()
    folder = root / STORE_DIR
    folder.mkdir(exist_ok=True)
    manifest = folder / MANIFEST
    entries: dict[str, dict[str, Any]] = {}
    if manifest.is_file():
        try:
            entries = dict(json.loads(manifest.read_text())["entries"])
        except (OSError, ValueError, KeyError, TypeError):
            entries = {}  # unreadable: start over (the data file is cut to what the new manifest lists)
    end = max((e["offset"] + int(np.prod(e["shape"])) for e in entries.values()), default=0)
    data_file = folder / DATA_FILE
    if data_file.is_file() and data_file.stat().st_size < end:  # truncated: keep the entries that are whole
        have = data_file.stat().st_size
        entries = {k: e for k, e in entries.items() if e["offset"] + int(np.prod(e["shape"])) <= have}
        end = max((e["offset"] + int(np.prod(e["shape"])) for e in entries.values()), default=0)
    store = ImageStore(root, "")

    def save() -> None:
        write_text(manifest, json.dumps({"format": MANIFEST_FORMAT, "entries": entries}))

    stored = kept = 0
    last = time.monotonic()
    with open(data_file, "ab") as fh:
        fh.truncate(end)
        fh.seek(end)
        for n, path in enumerate(files):
            key = prefix + store.rel(path)
            size, mtime = _stat(Path(path))
            old = entries.get(key)
            if old is not None and (old["size"], old["mtime_ns"]) == (size, mtime):
                kept += 1
                continue
            arr = decode_uint8(Path(path)) if make is None else np.ascontiguousarray(make(Path(path)), dtype=np.uint8)
            fh.write(arr.tobytes())
            entries[key] = {"offset": end, "shape": list(arr.shape), "size": size, "mtime_ns": mtime}
            end += arr.size
            stored += 1
            if time.monotonic() - last > save_every_s:
                fh.flush()
                os.fsync(fh.fileno())
                save()
                last = time.monotonic()
            if progress is not None:
                progress(n + 1, len(files))
        fh.flush()
        os.fsync(fh.fileno())
    save()
    return {"stored": stored, "kept": kept, "bytes": end}
