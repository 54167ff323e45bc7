"""DBCNN's SCNN pre-training data: per-core cost of each distortion type and of preparing the set, before (generator
1, the code these were measured against: ``benchmarks/_dbcnn_reference.py``) and after (today's code), one run.

What is measured
----------------
A synthetic Waterloo stand-in of ``--images`` pristine images at ``--size`` (default 384×512, the size of the
Waterloo Exploration images) × DBCNN's 39 classes, all in this process, one torch thread:

* **per type**: each class's distortion of each image, generator 1's implementation against today's, class by
  class (what an on-the-fly item pays) and with the type's levels of one image made together (``levels_u8``, what the
  preparation runs: JPEG2000's one encode serves its five levels), in rotating order, so a shared machine's load falls
  on all three: ms per item for each of the nine types;
* **prepare, 1 core**: whole images (one decode, 39 distortions, one batched resize, storage) as generator 1's
  ``dbcnn_prepare`` did (float outputs, PNG per item) against today's ``dbcnn_prepare`` chunk (uint8 buffer, ``npy``
  storage, and ``png`` storage), and the on-the-fly read that distorts per item, alternating image by image: items/s
  per core;
* **prepare, W workers** (``--workers``, default all cores): today's preparation in W processes, start included;
* **read**: the prepared items read back with ``prepared:`` (npy and png), what each training epoch then pays.

The projection for DBCNN's 852,891 pairs × 30 epochs divides by these rates, and the issue's target (the set
prepared at least 4x faster per core than the earlier README's 0.17 s per item) is checked against the prepare rate.
Per-core rates count this process's CPU seconds (``time.process_time``: one torch thread, single-threaded codecs),
not wall time, so other jobs on a shared machine that delay this process do not count as its cost; contention for
caches and memory still does, and the interleaving spreads it over both sides. The worker row is wall time.

``python -m benchmarks.scnn_prepare [--images 4] [--workers N] [--json F] [--readme]``; ``--quick`` is 2 images at
96×128 (seconds).
"""

from __future__ import annotations

import argparse
import os
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


def _per_type(root: Path, rounds: int = 1) -> dict[str, dict[str, float]]:
    """Seconds per type (summed over its classes and the images): generator 1 and today's class by class, and today's
    levels of one image together, in rotating order by (image, type)."""
    from benchmarks._dbcnn_reference import previous
    from distill.data.images import load_rgb
    from distill.data.iqa.distortions_dbcnn import DBCNN_CLASSES, DBCNN_TYPES, dbcnn_distortion
    from distill.data.iqa.pristine import WaterlooExploration

    files = WaterlooExploration(root).files
    zero = {"before_s": 0.0, "after_s": 0.0, "together_s": 0.0, "items": 0}
    out = {c: {"name": n, **zero} for c, n in DBCNN_TYPES.items()}
    warm = load_rgb(files[0])[None, :, :32, :32]
    for code, level in DBCNN_CLASSES:  # first calls (caches, lazy imports) are not what an item costs
        previous(code)(warm, level, torch.Generator().manual_seed(0))
        dbcnn_distortion(code)(warm, level, torch.Generator().manual_seed(0))
    by_type: dict[str, list[int]] = {}
    for code, level in DBCNN_CLASSES:
        by_type.setdefault(code, []).append(level)
    arms = ["before_s", "after_s", "together_s"]
    step = 0
    for _ in range(rounds):
        for path in files:
            x = load_rgb(path)[None]
            for code, levels in by_type.items():
                for key in arms[step % 3 :] + arms[: step % 3]:
                    gens = [torch.Generator().manual_seed(step * 10 + lv) for lv in levels]
                    started = time.process_time()
                    if key == "together_s":
                        for _ in dbcnn_distortion(code).levels_u8(x, levels, gens):
                            pass
                    else:
                        fn = previous(code) if key == "before_s" else dbcnn_distortion(code)
                        for level, g in zip(levels, gens, strict=True):
                            fn(x, level, g)
                    out[code][key] += time.process_time() - started
                step += 1
                out[code]["items"] += len(levels)
    return out


def _interleaved(root: Path, tmp: Path) -> dict[str, float]:
    """Items/s per core of the four ways to make items, image by image in rotating order; the prepared items of
    today's code are left in ``tmp/npy`` and ``tmp/png``."""
    from benchmarks._dbcnn_reference import previous_chunk, previous_item
    from distill.data.iqa import dbcnn_prepare
    from distill.data.iqa.pristine import DBCNN_CLASSES, DbcnnDistortions

    ds = DbcnnDistortions(str(root), None, split="all", crop="random")
    k = len(DBCNN_CLASSES)
    jobs = {s: dbcnn_prepare.plan_dbcnn(tmp / s, str(root), None, chunk_images=1, storage=s)[0] for s in ("npy", "png")}
    threads = torch.get_num_threads()
    arms = ["before_fly", "before", "after_npy", "after_png", "fly"]
    spent = dict.fromkeys(arms, 0.0)
    for i, job in enumerate(jobs["npy"]):
        _, _, [(index, path, name)], classes, resize, _, _ = job
        for what in arms[i % len(arms) :] + arms[: i % len(arms)]:
            started = time.process_time()
            if what == "before_fly":
                for code, level in classes:
                    previous_item(Path(path), name, code, level, resize)
            elif what == "before":
                previous_chunk(Path(path), name, classes, resize, tmp / "before" / f"{index:05d}")
            elif what == "fly":
                for j in range(i * k, (i + 1) * k):
                    ds[j]
            else:
                dbcnn_prepare._write_chunk(jobs[what.removeprefix("after_")][i])  # what each worker process runs
                torch.set_num_threads(threads)
            spent[what] += time.process_time() - started
    n = len(ds)
    return {what: n / spent[what] for what in arms}


def _after_workers(root: Path, out: Path, workers: int) -> float:
    from distill.data.iqa.dbcnn_prepare import prepare_dbcnn

    res = prepare_dbcnn(out, str(root), None, workers=workers, chunk_images=1)
    return res.written / res.seconds


def _read(root: Path, prepared: Path, n: int) -> float:
    from distill.data.iqa.pristine import DbcnnDistortions

    ds = DbcnnDistortions(str(root), None, split="all", crop="random", prepared=str(prepared))
    started = time.process_time()
    for i in range(n):
        ds[i]
    return n / (time.process_time() - started)


def measure(images: int, size: tuple[int, int], workers: int) -> dict[str, Any]:
    from distill.registry import WRITERS

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="scnn_prepare_") as tmp:
        root = Path(tmp) / "waterloo"
        WRITERS.build("waterloo", out=str(root), n_images=images, size=list(size))
        n = images * 39
        types = _per_type(root)
        rates = _interleaved(root, Path(tmp))
        after_w = _after_workers(root, Path(tmp) / "workers", workers) if workers > 1 else rates["after_npy"]
        read_npy = _read(root, Path(tmp) / "npy", n)
        read_png = _read(root, Path(tmp) / "png", n)
    return {
        "images": images,
        "size_hw": list(size),
        "items": n,
        "workers": workers,
        "types": types,
        "before_fly_items_per_s_per_core": rates["before_fly"],
        "before_items_per_s_per_core": rates["before"],
        "after_items_per_s_per_core": rates["after_npy"],
        "after_png_items_per_s_per_core": rates["after_png"],
        "fly_items_per_s_per_core": rates["fly"],
        "after_items_per_s_workers": after_w,
        "read_items_per_s_per_core": read_npy,
        "read_png_items_per_s_per_core": read_png,
        "written": n,
        "machine": machine_info(),
    }


def report(res: dict[str, Any]) -> str:
    before, after, after_png = (
        res["before_items_per_s_per_core"],
        res["after_items_per_s_per_core"],
        res["after_png_items_per_s_per_core"],
    )
    fly, after_w = res["fly_items_per_s_per_core"], res["after_items_per_s_workers"]
    before_fly = res["before_fly_items_per_s_per_core"]
    read, read_png = res["read_items_per_s_per_core"], res["read_png_items_per_s_per_core"]
    m = res["machine"]
    h, w = res["size_hw"]
    types = res["types"]
    made = "together_s" if all("together_s" in t for t in types.values()) else "after_s"  # runs before it: after_s
    total_after = sum(t[made] for t in types.values())
    lines = [
        f"SCNN pre-training data, DBCNN's 39 classes on {res['images']} synthetic {h}x{w} pristine images "
        f"({res['items']} items); {m['cpu_count']} CPUs, torch {m['torch']}, 1 thread per process, CPU seconds "
        "of this process (the worker row: wall time); before = "
        "generator 1 (benchmarks/_dbcnn_reference.py), after = today's code, interleaved in one run",
        "",
        "| distortion type | before ms/item | after, class alone | after, levels together | speed-up "
        "| share of after |",
        "|---|---|---|---|---|---|",
    ]

    def ms(t: dict[str, Any], key: str) -> str:
        return f"{1000 * t[key] / t['items']:.1f}" if key in t else "-"

    for code, t in types.items():
        lines.append(
            f"| {code} {t['name']} | {ms(t, 'before_s')} | {ms(t, 'after_s')} | {ms(t, 'together_s')} | "
            f"{t['before_s'] / t[made]:.1f}x | {t[made] / total_after:.0%} |"
        )
    all_b = sum(t["before_s"] for t in types.values()) / res["items"]
    all_alone = sum(t["after_s"] for t in types.values()) / res["items"]
    all_a = total_after / res["items"]
    together = f"{1000 * all_a:.1f}" if made == "together_s" else "-"
    lines += [
        f"| all 39 classes (mean) | {1000 * all_b:.1f} | {1000 * all_alone:.1f} | {together} | {all_b / all_a:.1f}x "
        "| 100% |",
        "",
        "| path | items/s | s/item | vs before |",
        "|---|---|---|---|",
        f"| before: on the fly, generator 1 (what the earlier {EARLIER_S_PER_ITEM} s/item measured), 1 core | "
        f"{before_fly:.1f} | {1 / before_fly:.4f} | {before_fly / before:.1f}x |",
        f"| before: prepare, generator 1 (float, PNG), 1 core | {before:.1f} | {1 / before:.4f} | 1.0x |",
        f"| after: prepare (uint8, npy), 1 core | {after:.1f} | {1 / after:.4f} | {after / before:.1f}x |",
        f"| after: prepare (uint8, png), 1 core | {after_png:.1f} | {1 / after_png:.4f} | {after_png / before:.1f}x |",
        f"| after: prepare (npy), {res['workers']} worker processes | {after_w:.1f} | {1 / after_w:.4f} | "
        f"{after_w / before:.1f}x |",
        f"| on the fly (today's distortions), 1 core | {fly:.1f} | {1 / fly:.4f} | {fly / before:.1f}x |",
        f"| read a prepared item, npy (train epoch), 1 core | {read:.1f} | {1 / read:.4f} | {read / before:.1f}x |",
        f"| read a prepared item, png, 1 core | {read_png:.1f} | {1 / read_png:.4f} | {read_png / before:.1f}x |",
        "",
    ]
    core_h = 3600.0
    fly_h = DBCNN_ITEMS * EPOCHS / fly / core_h
    prep_h = DBCNN_ITEMS / after / core_h
    reads_h = DBCNN_ITEMS * EPOCHS / read / core_h
    target = after / before_fly  # the issue's "today's 0.17 s/item" was generator 1's on-the-fly item

    def verdict(x: float) -> str:
        return "met" if x >= 4 else "not met"

    j2k = types["4"]
    j2k_item = j2k[made] / res["items"]  # JPEG2000's part of the mean item
    budget = 1 / before_fly / 4  # s per item that 4x allows
    j2k_text = (
        f"alone, a class costs an encode and a decode ({ms(j2k, 'after_s')} ms); made together, one encode serves the "
        f"five levels ({ms(j2k, 'together_s')} ms per item)"
        if made == "together_s"
        else f"an encode and a decode per item ({ms(j2k, 'after_s')} ms)"
    )
    lines.append(
        f"Preparing costs {1 / after:.4f} CPU s per item on one core: {target:.1f}x generator 1's on-the-fly item "
        f"({1 / before_fly:.4f} s, the same clock in this run; issue 22's target 4x over it: {verdict(target)}) and "
        f"{after / before:.1f}x generator 1's preparation (4x over it: {verdict(after / before)}). The earlier "
        f"README's {EARLIER_S_PER_ITEM} s/item was wall time on this machine under other jobs' load, so it is no "
        "measure for CPU seconds. JPEG2000 (5 of the 39 classes) is codec-bound (OpenJPEG): "
        f"{j2k_text}, {1000 * j2k_item:.1f} ms of the mean item, against the {1000 * budget:.1f} ms per item that 4x "
        f"over the on-the-fly item allows ({j2k_item / budget:.0%} of it with every other step free). "
        f"DBCNN's {DBCNN_ITEMS:,} pairs x {EPOCHS} epochs: on the fly {fly_h:,.0f} core-hours of distortion; "
        f"prepared once {prep_h:,.0f} core-hours ({prep_h / 16:,.1f} h on 16 worker cores, projected from the "
        f"1-core rate), then {reads_h:,.0f} core-hours of reading over the {EPOCHS} epochs: "
        f"{fly_h / (prep_h + reads_h):.1f}x less CPU in all. The {res['workers']}-worker row is wall time, what this "
        "machine's cores gave while shared with other jobs."
    )
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
