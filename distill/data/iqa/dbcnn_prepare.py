"""DBCNN's SCNN pre-training set generated once, in parallel and resumable, as the DBCNN authors generated theirs.

``dbcnn_distortions`` distorts every (image, class) pair at full resolution when the item is read, so 30 epochs
distort each of the 852,891 pairs 30 times. :func:`prepare_dbcnn` writes every pair once instead:

* the work is cut into chunks of ``chunk_images`` pristine images × all classes; worker processes
  (``workers``, one torch thread each) take chunks and write each into a temporary folder that is renamed into
  ``OUT/chunks/NNNNN`` only when complete, so a killed run leaves no half chunk and a restart does only the missing
  chunks (``OUT/manifest.json`` holds the settings, and a restart with other settings is refused);
* each pristine image is decoded once for its 39 classes, the levels of a type are made together (work they share,
  such as JPEG2000's encode, done once), each class's 8-bit output goes into one uint8 buffer and the 39 outputs
  are resized in one batched uint8 call;
* an item is what ``dbcnn_distortions`` computes (the same per-(image, class) seeded distortion, the shorter side
  resized to ``resize``) in 8 bits: it differs from the on-the-fly item (resized in float) by at most one grey level
  (tests/test_dbcnn_prepare.py). ``--storage npy`` (default) stores each pristine image's classes raw as one
  ``[classes, H, W, 3]`` uint8 ``.npy`` (about 0.26 MB per item at 256 × 341, some 220 GB for the 852,891 pairs;
  nothing to encode, and a read is a memory-mapped slice); ``--storage png`` stores one lossless PNG per item
  (about 0.14 MB, some 120 GB, at the cost of a PNG encode per item and a decode per read);
* the manifest records :data:`~distill.data.iqa.distortions_dbcnn.DBCNN_GENERATOR`, so items of an earlier version
  of the distortions are not mixed with these.

``dbcnn_distortions`` reads the prepared set with ``prepared: OUT`` (crops and flips are drawn as before)::

    python -m distill.data.iqa.dbcnn_prepare data/scnn_prepared --workers 16
    distill run recipes/scnn_pretrain.yaml --set data.train.args.prepared=data/scnn_prepared \\
        --set data.eval.test.args.prepared=data/scnn_prepared
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from distill.data.images import load_rgb
from distill.data.iqa.distortions_dbcnn import DBCNN_GENERATOR, dbcnn_distortion
from distill.data.iqa.pristine import FORMAT, MANIFEST, STORAGES, DbcnnDistortions, item_path, read_manifest
from distill.data.synthetic_common import stable_seed
from distill.errors import DataError
from distill.run.atomic import write_text

#: one chunk's work: (out folder, chunk, [(image index, file, name)], [(type, level)], resize, PNG compress level,
#: storage)
Job = tuple[str, int, list[tuple[int, str, str]], list[tuple[str, int]], int, int, str]

__all__ = [
    "FORMAT",
    "STORAGES",
    "PrepareResult",
    "distort_image",
    "item_path",
    "plan_dbcnn",
    "prepare_dbcnn",
    "read_manifest",
]


@dataclass
class PrepareResult:
    """What :func:`prepare_dbcnn` did: items written now, items already there, seconds, workers."""

    out: Path
    written: int
    reused: int
    seconds: float
    workers: int


def _resize_shorter_batch(images: torch.Tensor, side: int) -> torch.Tensor:
    """``pristine._resize_shorter`` of a batch of equal-size images, in one call on uint8 (torch's vectorised
    antialiased path, about 10x the float one): ``[K, H', W', 3]`` uint8, within one grey level of the float path.

    ``images`` is ``[K, 3, H, W]``: uint8 (resized as it is; torch gives channels-last and contiguous uint8 the same
    result, and channels-last input, as :func:`distort_image` fills it, is the faster (~3x with the output's copy to
    contiguous ``[K, H', W', 3]``, which then is none) or float in [0, 1] on the 1/255 grid (rounded to uint8 first,
    the same values).
    """
    if images.dtype == torch.uint8:
        u8 = images
    else:
        u8 = (images * 255).round().to(torch.uint8).contiguous(memory_format=torch.channels_last)
    h, w = u8.shape[-2:]
    scale = side / min(h, w)
    hw = (max(side, round(h * scale)), max(side, round(w * scale)))
    out = torch.nn.functional.interpolate(u8, size=hw, mode="bilinear", antialias=True, align_corners=False)
    return out.permute(0, 2, 3, 1)


def distort_image(path: Path, name: str, classes: Sequence[tuple[str, int]], resize: int) -> torch.Tensor:
    """All classes of one pristine image, as ``dbcnn_distortions`` distorts and resizes them: ``[K, H, W, 3]`` uint8.

    The classes of one type are made together (``DbcnnDistortion.levels_u8``: work the levels share is done once,
    JPEG2000's encode among it) and each output's 8-bit values go straight into one channels-last uint8 buffer, so
    the classes are never concatenated or rounded as float images.
    """
    image = load_rgb(path)[None]
    h, w = image.shape[-2:]
    buf = torch.empty(len(classes), h, w, 3, dtype=torch.uint8).permute(0, 3, 1, 2)  # [K, 3, H, W], channels-last
    by_type: dict[str, list[int]] = {}
    for k, (code, _) in enumerate(classes):
        by_type.setdefault(code, []).append(k)
    for code, ks in by_type.items():
        levels = [classes[k][1] for k in ks]
        fixed = [torch.Generator().manual_seed(stable_seed("dbcnn-distort", name, code, lv)) for lv in levels]
        for k, out in zip(ks, dbcnn_distortion(code).levels_u8(image, levels, fixed), strict=True):
            buf[k].copy_(out)  # exact: the values are integers 0-255
    return _resize_shorter_batch(buf, resize)


def _write_chunk(job: Job) -> tuple[int, int]:
    """Worker: distort every image of one chunk, write it to a temporary folder, rename it into place."""
    out_s, chunk, images, classes, resize, compress, storage = job
    torch.set_num_threads(1)  # one process per core; intra-op threads would only contend
    out = Path(out_s)
    final = out / "chunks" / f"{chunk:05d}"
    tmp = out / "chunks" / f".{chunk:05d}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    n = 0
    for index, path, name in images:
        arrays = np.ascontiguousarray(distort_image(Path(path), name, classes, resize).numpy())
        if storage == "npy":  # raw uint8, every class of the image in one file: no encode now, no decode per read
            np.save(tmp / f"{index:06d}.npy", arrays)
            n += len(arrays)
            continue
        for k, arr in enumerate(arrays):
            Image.fromarray(arr).save(tmp / f"{index:06d}_{k:02d}.png", compress_level=compress)
            n += 1
    os.replace(tmp, final)
    return chunk, n


def plan_dbcnn(
    out: str | Path,
    waterloo: str | None = "data/waterloo",
    voc2012: str | None = "data/voc2012",
    chunk_images: int = 8,
    resize: int = 256,
    classes: list[str] | None = None,
    compress_level: int = 1,
    limit_images: int | None = None,
    storage: str = "npy",
) -> tuple[list[Job], int]:
    """Check or write ``out``'s manifest and return the chunks still to write, and the items already there."""
    source = DbcnnDistortions(waterloo, voc2012, split="all", resize=resize, size=min(resize, 8), classes=classes)
    files, names = source.files, source.names
    if limit_images is not None:
        files, names = files[:limit_images], names[:limit_images]
    class_list = [f"{c}:{lv}" for c, lv in source.classes]
    settings = {
        "format": FORMAT,
        "resize": int(resize),
        "classes": class_list,
        "chunk_images": int(chunk_images),
        "images": names,
        "storage": STORAGES[storage],
        "generator": DBCNN_GENERATOR,
    }
    out = Path(out)
    if (out / MANIFEST).exists():
        old = read_manifest(out)
        differs = [k for k in settings if old.get(k) != settings[k]]
        if differs:
            verb = "differs" if len(differs) == 1 else "differ"
            raise DataError(
                f"{out}: holds a preparation with other settings ({', '.join(differs)} {verb}); finish it with its "
                "own settings or choose another folder (nothing was changed)"
            )
    elif out.exists() and any(out.iterdir()):
        raise DataError(f"{out}: exists and is not a prepared DBCNN set; choose a new folder (nothing was changed)")
    else:
        (out / "chunks").mkdir(parents=True, exist_ok=True)
        write_text(out / MANIFEST, json.dumps(settings, indent=1) + "\n")
    for stale in (out / "chunks").glob(".*.tmp-*"):  # left by a killed worker
        shutil.rmtree(stale, ignore_errors=True)
    n_chunks = -(-len(names) // chunk_images)
    pairs = [(c, int(lv)) for c, lv in (s.split(":") for s in class_list)]
    todo = [k for k in range(n_chunks) if not (out / "chunks" / f"{k:05d}").is_dir()]
    reused = sum(min(chunk_images, len(names) - k * chunk_images) for k in range(n_chunks) if k not in set(todo))
    jobs = [
        (
            str(out),
            k,
            [(i, str(files[i]), names[i]) for i in range(k * chunk_images, min(len(names), (k + 1) * chunk_images))],
            pairs,
            int(resize),
            int(compress_level),
            storage,
        )
        for k in todo
    ]
    return jobs, reused * len(pairs)


def prepare_dbcnn(
    out: str | Path,
    waterloo: str | None = "data/waterloo",
    voc2012: str | None = "data/voc2012",
    workers: int | None = None,
    chunk_images: int = 8,
    resize: int = 256,
    classes: list[str] | None = None,
    compress_level: int = 1,
    limit_images: int | None = None,
    progress: Callable[[int, int, float], None] | None = None,
    storage: str = "npy",
) -> PrepareResult:
    """Write (or finish) the prepared set in ``out``; see the module docstring. ``limit_images`` prepares only
    the first N pristine images (benchmarks, trials). ``storage``: ``npy`` (raw uint8, one file per pristine image
    with all its classes; nothing to encode or decode) or ``png`` (lossless, about half the disk, ~30 ms more per
    item to write and ~15 ms per read)."""
    if storage not in STORAGES:
        raise DataError(f"dbcnn_prepare: storage '{storage}' is not one of {', '.join(STORAGES)}")
    jobs, reused = plan_dbcnn(
        out, waterloo, voc2012, chunk_images, resize, classes, compress_level, limit_images, storage
    )
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs) or 1))
    total = sum(len(j[2]) * len(j[3]) for j in jobs)
    started = time.perf_counter()
    written = 0

    def done(n: int) -> None:
        nonlocal written
        written += n
        if progress:
            progress(written, total, time.perf_counter() - started)

    if workers == 1:  # in this process (its torch threads restored after)
        threads = torch.get_num_threads()
        try:
            for job in jobs:
                done(_write_chunk(job)[1])
        finally:
            torch.set_num_threads(threads)
    else:
        method = "fork" if "fork" in get_all_start_methods() else "spawn"  # fork: no second torch import
        with ProcessPoolExecutor(workers, mp_context=get_context(method)) as pool:
            for _, n in pool.map(_write_chunk, jobs):
                done(n)
    return PrepareResult(Path(out), written, reused, time.perf_counter() - started, workers)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m distill.data.iqa.dbcnn_prepare", description=__doc__.splitlines()[0]
    )
    parser.add_argument("out", help="folder to write (re-run the same command to resume)")
    parser.add_argument("--waterloo", default="data/waterloo", help="Waterloo Exploration root ('none': leave out)")
    parser.add_argument("--voc2012", default="data/voc2012", help="PASCAL VOC 2012 root ('none': leave out)")
    parser.add_argument("--workers", type=int, default=os.cpu_count(), help="worker processes (default: all cores)")
    parser.add_argument("--chunk-images", type=int, default=8, help="pristine images per atomically written chunk")
    parser.add_argument("--resize", type=int, default=256, help="shorter side after distortion (the recipe's resize)")
    parser.add_argument(
        "--storage",
        choices=sorted(STORAGES),
        default="npy",
        help="npy: raw uint8 (default; about 260 KB per item at 256x341) or png: lossless, about half the disk",
    )
    args = parser.parse_args(argv)
    if args.workers < 1 or args.chunk_images < 1:
        parser.error("--workers and --chunk-images must be at least 1")

    def show(done: int, total: int, seconds: float) -> None:
        rate = done / seconds if seconds else 0.0
        left = (total - done) / rate if rate else 0.0
        print(f"\r{done}/{total} items, {rate:.1f} items/s, about {left / 60:.0f} min left ", end="", file=sys.stderr)

    try:
        res = prepare_dbcnn(
            args.out,
            None if args.waterloo == "none" else args.waterloo,
            None if args.voc2012 == "none" else args.voc2012,
            args.workers,
            args.chunk_images,
            args.resize,
            progress=show,
            storage=args.storage,
        )
    except DataError as err:
        print(f"distill: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted; run the same command again to continue (finished chunks are kept)", file=sys.stderr)
        return 130
    print(file=sys.stderr)
    rate = res.written / res.seconds if res.seconds and res.written else 0.0
    print(
        f"{res.out}: {res.written} items written ({rate:.1f} items/s on {res.workers} workers), "
        f"{res.reused} already there; train with --set data.train.args.prepared={res.out} "
        f"--set data.eval.test.args.prepared={res.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
