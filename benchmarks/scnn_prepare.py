"""DBCNN's SCNN pre-training data: items/s per core on the fly (before) against the prepared set (after), one run.

What is measured
----------------
A synthetic Waterloo stand-in of ``--images`` pristine images at ``--size`` (default 384×512, the size of the
Waterloo Exploration images) × DBCNN's 39 classes, all in this process:

* **before**: ``dbcnn_distortions`` items read one by one, as training reads them today (decode, distort at full
  size, resize the shorter side to 256, crop 224), one torch thread: items/s per core;
* **after, 1 worker**: :mod:`distill.data.iqa.dbcnn_prepare` writing the same pairs, one chunk per image (one decode
  and one batched resize per image, PNG storage), in this process, one thread: items/s per core. Before and after
  alternate image by image (ABBA order), so a shared machine's load falls on both;
* **after, W workers** (``--workers``, default all cores): the same in W worker processes (their start included):
  items/s in all;
* **read**: the prepared items read back with ``prepared:`` (decode a PNG, crop), what each epoch then pays.

The projection for DBCNN's 852,891 pairs × 30 epochs divides by these rates: on the fly every epoch distorts every
pair again; prepared, every pair is distorted once and each epoch reads it. The earlier README figure (0.17 s per
item, one core of this shared machine) is printed beside them as the reference the issue names. On a shared machine
the rates move with the load; the ratios are of runs made one after another in this process.

``python -m benchmarks.scnn_prepare [--images 4] [--workers N] [--json F] [--readme]``; ``--quick`` is 2 images at
96×128 (seconds).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._common import add_result_arguments, machine_info, publish, saved_result  # noqa: E402

#: DBCNN's set: 4,744 Waterloo + 17,125 VOC 2012 images × 39 classes
DBCNN_ITEMS = 21_869 * 39
EPOCHS = 30
#: the earlier README measurement (s per item, one core), the reference of issue 22's target
EARLIER_S_PER_ITEM = 0.17


def _interleaved(root: Path, out: Path, rounds: int) -> tuple[float, float, int]:
    """Items/s per core on the fly and prepared (one worker), image by image in alternating order, so that the load
    of a shared machine falls on both alike; the prepared items are written to ``out``."""
    from distill.data.iqa import dbcnn_prepare
    from distill.data.iqa.pristine import DBCNN_CLASSES, DbcnnDistortions

    ds = DbcnnDistortions(str(root), None, split="all", crop="random")
    k = len(DBCNN_CLASSES)
    jobs, _ = dbcnn_prepare.plan_dbcnn(out, str(root), None, chunk_images=1)  # the manifest; chunks timed below
    threads = torch.get_num_threads()
    fly = prep = 0.0
    for r in range(rounds):
        for i, job in enumerate(jobs):
            order = ("fly", "prep") if (r + i) % 2 == 0 else ("prep", "fly")
            for what in order:
                started = time.perf_counter()
                if what == "fly":
                    for j in range(i * k, (i + 1) * k):
                        ds[j]
                    fly += time.perf_counter() - started
                else:
                    shutil.rmtree(out / "chunks" / f"{i:05d}", ignore_errors=True)
                    dbcnn_prepare._write_chunk(job)  # what each worker process runs
                    prep += time.perf_counter() - started
                    torch.set_num_threads(threads)
    n = rounds * len(ds.files) * k
    return n / fly, n / prep, n


def _after(root: Path, out: Path, workers: int) -> tuple[float, int]:
    from distill.data.iqa.dbcnn_prepare import prepare_dbcnn

    res = prepare_dbcnn(out, str(root), None, workers=workers, chunk_images=1)
    return res.written / res.seconds, res.written


def _read(root: Path, prepared: Path, n: int) -> float:
    from distill.data.iqa.pristine import DbcnnDistortions

    ds = DbcnnDistortions(str(root), None, split="all", crop="random", prepared=str(prepared))
    started = time.perf_counter()
    for i in range(n):
        ds[i]
    return n / (time.perf_counter() - started)


def measure(images: int, size: tuple[int, int], workers: int) -> dict[str, Any]:
    from distill.registry import WRITERS

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="scnn_prepare_") as tmp:
        root = Path(tmp) / "waterloo"
        WRITERS.build("waterloo", out=str(root), n_images=images, size=list(size))
        n = images * 39
        before, after_1, written = _interleaved(root, Path(tmp) / "prep1", 1)
        after_w = _after(root, Path(tmp) / "prepw", workers)[0] if workers > 1 else after_1
        read = _read(root, Path(tmp) / "prep1", n)
    return {
        "images": images,
        "size_hw": list(size),
        "items": n,
        "workers": workers,
        "before_items_per_s_per_core": before,
        "after_items_per_s_per_core": after_1,
        "after_items_per_s_workers": after_w,
        "read_items_per_s_per_core": read,
        "written": written,
        "machine": machine_info(),
    }


def report(res: dict[str, Any]) -> str:
    before, after, after_w, read = (
        res["before_items_per_s_per_core"],
        res["after_items_per_s_per_core"],
        res["after_items_per_s_workers"],
        res["read_items_per_s_per_core"],
    )
    m = res["machine"]
    h, w = res["size_hw"]
    core_h = 3600.0
    fly = DBCNN_ITEMS * EPOCHS / before / core_h
    prep = DBCNN_ITEMS / after / core_h
    reads = DBCNN_ITEMS * EPOCHS / read / core_h
    earlier = DBCNN_ITEMS * EPOCHS * EARLIER_S_PER_ITEM / core_h
    per_epoch_fly = 1 / before
    per_epoch_prep = 1 / after / EPOCHS + 1 / read  # the preparation spread over the epochs, plus reading
    lines = [
        f"SCNN pre-training data, DBCNN's 39 classes on {res['images']} synthetic {h}x{w} pristine images "
        f"({res['items']} items); {m['cpu_count']} CPUs, torch {m['torch']}, 1 thread per process",
        "",
        "| path | items/s | s/item | vs before |",
        "|---|---|---|---|",
        f"| before: on the fly (dbcnn_distortions), 1 core | {before:.1f} | {1 / before:.3f} | 1.0x |",
        f"| after: prepare once (dbcnn_prepare), 1 core | {after:.1f} | {1 / after:.3f} | {after / before:.1f}x |",
        f"| after: prepare once, {res['workers']} worker processes | {after_w:.1f} | {1 / after_w:.3f} | "
        f"{after_w / before:.1f}x |",
        f"| read a prepared item (train epoch), 1 core | {read:.1f} | {1 / read:.4f} | {read / before:.1f}x |",
        f"| per item and epoch over {EPOCHS} epochs: prepare/{EPOCHS} + read, 1 core | {1 / per_epoch_prep:.1f} | "
        f"{per_epoch_prep:.4f} | {per_epoch_fly / per_epoch_prep:.1f}x |",
        "",
        f"DBCNN's {DBCNN_ITEMS:,} pairs x {EPOCHS} epochs: on the fly {fly:,.0f} core-hours of distortion (at the "
        f"earlier README figure of {EARLIER_S_PER_ITEM} s/item: {earlier:,.0f}); prepared once {prep:,.0f} "
        f"core-hours ({prep / 16:,.1f} h on 16 worker cores, projected from the 1-core rate), then {reads:,.0f} "
        f"core-hours of reading over the {EPOCHS} epochs: {fly / (prep + reads):.1f}x less CPU in all. Per item, "
        f"preparing costs {1 / after:.3f} s on one core (the same-run on-the-fly item: {1 / before:.3f} s); "
        f"the preparation's speed-up comes from distorting each pair once instead of {EPOCHS} times and from "
        f"worker processes, not from a cheaper distortion. The {res['workers']}-worker row is what this machine's "
        "cores gave while shared with other jobs.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, help="pristine images (x 39 items each); default 4, --quick 2")
    parser.add_argument("--size", help="H,W of the pristine images; default 384,512, --quick 96,128")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="worker processes of the W row")
    parser.add_argument("--quick", action="store_true", help="2 images at 96x128")
    add_result_arguments(parser)
    args = parser.parse_args(argv)
    res = saved_result(parser, args)
    if res is None:
        images = args.images or (2 if args.quick else 4)
        text = args.size or ("96,128" if args.quick else "384,512")
        try:
            size = tuple(int(v) for v in text.split(","))
        except ValueError:
            size = ()
        if len(size) != 2 or min(size) < 16 or images < 1 or args.workers < 1:
            parser.error("--size H,W (each >= 16), --images >= 1 and --workers >= 1")
        res = measure(images, size, args.workers)  # type: ignore[arg-type]
    publish(
        res,
        args,
        "scnn-prepare",
        report,
        markdown=lambda r: report(r) + "\n\nWritten by `python -m benchmarks.scnn_prepare --readme`.",
    )
    return res


if __name__ == "__main__":
    main()
