"""``distill data prepare NAME ROOT``: write the decoded uint8 store a reader's ``format: store`` reads.

The files to store are the ones the dataset's own reader finds in ``ROOT`` (so the store follows its layout
rules): DIV2K's HR images of ``split`` and their LR images at each ``scale``; an SR benchmark set's HR and LR; every
image of a KADID-10k, TID2013 or LIVE Challenge set (undecodable files are skipped and counted, as
``on_corrupt: skip`` would); every image of CUB-200-2011's ``images.txt`` and, with ``--set size=224
[--set degradation=NAME]``, the clean and degraded views the CUB readers of that size and degradation compute (box
crop, resize, degradation: fixed per image), so those readers read a view instead of computing it. Preparation is
resumable and adds to an existing store (see :mod:`distill.data.store`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from distill.data.store import STORE_DIR, prepare_files
from distill.errors import DataError

__all__ = ["PREPARERS", "prepare_dataset"]


def _scales(value: Any) -> list[int]:
    items = value if isinstance(value, (list, tuple)) else str(value).split(",")
    try:
        scales = [int(s) for s in items if str(s).strip()]
    except ValueError:
        raise DataError(f"prepare: scale {value!r} is not an integer or a list such as 2,3,4") from None
    if not scales or any(s < 1 for s in scales):
        raise DataError(f"prepare: scale {value!r} must be positive integers")
    return scales


def _div2k(root: Path, split: str = "train", scale: Any = 4) -> list[Path]:
    from distill.data.sr.dataset import DIV2K

    files: dict[Path, None] = {}
    for s in _scales(scale):
        for sample in DIV2K(str(root), split=split, scale=s).samples:  # type: ignore[arg-type]
            files.update((p, None) for p in (sample.hr, sample.lr) if p is not None)
    return list(files)


def _sr_benchmark(root: Path, scale: Any = 4) -> list[Path]:
    from distill.data.sr.dataset import SRBenchmark

    files: dict[Path, None] = {}
    for s in _scales(scale):
        for sample in SRBenchmark(str(root), scale=s).samples:
            files.update((p, None) for p in (sample.hr, sample.lr) if p is not None)
    return list(files)


def _iqa(name: str) -> Callable[..., list[Path]]:
    def files(root: Path) -> list[Path]:
        from distill.registry import DATASETS

        dataset = DATASETS.build(name, root=str(root), split="all", on_corrupt="skip")
        if dataset.corrupt_files:
            print(f"{name}: {len(dataset.corrupt_files)} undecodable image(s) skipped, e.g. "
                  f"{dataset.corrupt_files[0]}", file=sys.stderr)  # fmt: skip
        return [Path(s.path) for s in dataset.samples]

    return files


def _cub200(
    root: Path, size: int | None = None, degradation: str | None = None, degradation_args: dict | None = None
) -> list[Path]:
    """CUB's images; with ``size`` (and ``degradation``) :func:`prepare_dataset` also stores the readers' views."""
    from distill.data.recognition.cub import read_cub

    return [s.path for s in read_cub(root)[0]]


def _cub_views(root: Path, options: dict[str, Any], progress: Callable[[int, int], None]) -> dict[str, int]:
    """Store the clean (and degraded) ``size``² views of every CUB image, as the readers compute them."""
    from distill.data.recognition.cub import CUB200

    ds = CUB200(str(root), split="all", size=int(options["size"]), degradation=options.get("degradation"),
                degradation_args=options.get("degradation_args"), cache=False)  # fmt: skip
    index = {s.path: i for i, s in enumerate(ds.samples)}
    counts = {"stored": 0, "kept": 0, "bytes": 0}
    for kind in ("clean", "degraded") if ds.degradation is not None else ("clean",):

        def make(path: Path, kind: str = kind) -> Any:
            return ds.stored_view(index[path], kind).permute(1, 2, 0).numpy()

        done = prepare_files(root, list(index), progress, prefix=ds.view_prefix(kind), make=make)
        counts = {"stored": counts["stored"] + done["stored"], "kept": counts["kept"] + done["kept"],
                  "bytes": done["bytes"]}  # fmt: skip
    return counts


#: dataset → the function listing the files its store holds (its keyword arguments are the ``--set`` options)
PREPARERS: dict[str, Callable[..., list[Path]]] = {
    "div2k": _div2k,
    "sr_benchmark": _sr_benchmark,
    "kadid10k": _iqa("kadid10k"),
    "tid2013": _iqa("tid2013"),
    "livec": _iqa("livec"),
    "cub200": _cub200,
}


def prepare_dataset(name: str, root: str | Path, options: dict[str, Any], quiet: bool = False) -> dict[str, Any]:
    """Store every image the reader of ``name`` finds in ``root``; returns the counts and the store's folder."""
    import inspect

    if name not in PREPARERS:
        raise DataError(f"prepare: unknown dataset '{name}'. Choose one of {', '.join(PREPARERS)}")
    fn = PREPARERS[name]
    allowed = [p for p in inspect.signature(fn).parameters if p != "root"]
    unknown = [k for k in options if k not in allowed]
    if unknown:
        raise DataError(f"prepare {name}: unknown option '{unknown[0]}'. Allowed: {', '.join(allowed) or 'none'}")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"prepare {name}: root '{root}' does not exist or is not a folder")
    files = fn(root, **options)
    step = max(1, len(files) // 10)

    def progress(done: int, total: int) -> None:
        if not quiet and (done % step == 0 or done == total):
            print(f"  {done}/{total} images", file=sys.stderr, flush=True)

    counts = prepare_files(root, files, progress)
    if name == "cub200" and options.get("size") is not None:
        views = _cub_views(root, options, progress)
        counts = {"stored": counts["stored"] + views["stored"], "kept": counts["kept"] + views["kept"],
                  "bytes": views["bytes"]}  # fmt: skip
    return {**counts, "files": len(files), "folder": str(root / STORE_DIR)}
