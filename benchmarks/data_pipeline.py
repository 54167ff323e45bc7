"""Data pipeline throughput: the distortion generator and the dataset readers against what the model consumes.

What is measured
----------------
* **Distortions** — every KADID-10k type at level 3 on ``--batch`` images of each of ``--sizes`` (crops of
  scikit-image's photographs; ``512x384`` is KADID/TID's own size): one batched call (``fn(x, level, generator)`` on
  ``[B, 3, H, W]``) versus the per-image reference (``B`` calls on ``[1, 3, H, W]`` concatenated into the same batch
  tensor the batched call returns) and, where one exists, a maintained library's op of the same kind (kornia; not
  the same definition, so it says what comparable work costs). The three are timed in turn in every round; printed:
  images/s, and the per-round ratios' median with their min–max. For deterministic types the two outputs are
  compared (``yes``: bit-identical; ``~1e-5``: float32 convolution rounding); random types draw their noise
  differently per call and are not compared. Types that call a one-image CPU library (Pillow codecs, palette
  quantisation, scikit-image's non-local means) are per-image by design and marked so.
* **Readers** — the KADID-10k, TID2013 and LIVEC readers on synthetic sets in their official layouts (written
  once under ``--data``), iterated through a ``DataLoader`` at the MRKD batch size with 0 and ``--workers`` persistent
  worker processes (decode, augmentation, collation; worker start-up falls in the untimed warm-up epoch).
  Printed: images/s per reader and worker count.
* **Consumption** — one MRKD training step (two ResNet-10 regressors, forward, MSE terms, backward, two SGD steps)
  on batches of the same size: the images/s the model can take. ``reader / model`` > 1 means the data pipeline is
  not the bottleneck at that worker count.

Run ``python -m benchmarks.data_pipeline --sizes 64,256,512x384`` (defaults: batch 16, 64², 2 workers, 6 rounds,
1 thread; readers at the smallest square size) or ``--quick``; ``--types 01,16`` and ``--no-readers`` narrow it.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from benchmarks._common import add_result_arguments, machine_info, machine_label, median_seconds, publish, saved_result
from distill.data.iqa.distortions import KADID_TYPES, PER_IMAGE_BY_DESIGN, get_distortion, images_per_chunk
from distill.data.synthetic_common import reference_crops
from distill.distillers.mrkd import MRKD
from distill.models.iqa.resnet import ResNetRegressor
from distill.registry import DATASETS, WRITERS, load_plugins

READERS = {  # dataset → (writer args for a set of >= 200 images at the benchmark size, reader args)
    "kadid10k": ({"n_refs": 8, "distortions": ["gaussian_blur", "jpeg", "white_noise", "darken", "quantisation"]}, {}),
    "tid2013": ({"n_refs": 8, "distortions": ["01", "08", "10", "14", "16"]}, {}),
    "livec": ({"n_images": 200}, {"split_mode": "random"}),
}


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """``"64,256,512x384"`` → ``[(64, 64), (256, 256), (384, 512)]`` as (height, width); ``WxH`` like the datasets."""
    sizes = []
    for item in text.split(","):
        w, _, h = item.strip().lower().partition("x")
        if not w.isdigit() or (h and not h.isdigit()) or int(w) < 8 or int(h or w) < 8:
            raise argparse.ArgumentTypeError(
                f"size '{item}' is not N or WxH with both at least 8 (e.g. 256 or 512x384)"
            )
        sizes.append((int(h or w), int(w)))
    return sizes


def _peers() -> dict[str, tuple[str, Callable[[Tensor, torch.Generator], Any]]]:
    """KADID code → a maintained library's op of the same kind (kornia), timed on the same batch.

    These are comparable, not identical, operations (kornia's brightness is additive, ours a tone curve; its
    contrast is a gain, ours an S curve): the column says what the same kind of work costs in kornia.
    """
    import kornia

    def motion(x: Tensor, g: torch.Generator) -> Tensor:
        angle = torch.rand(x.shape[0], generator=g) * 360
        return kornia.filters.motion_blur(x, 5, angle, torch.zeros(x.shape[0]), border_type="replicate")

    return {
        "01": ("kornia.filters.gaussian_blur2d", lambda x, g: kornia.filters.gaussian_blur2d(x, (5, 5), (1.0, 1.0))),
        "03": ("kornia.filters.motion_blur", motion),
        "07": ("kornia.enhance.adjust_saturation", lambda x, g: kornia.enhance.adjust_saturation(x, 0.1)),
        "10": (
            "kornia.enhance.jpeg_codec_differentiable",
            lambda x, g: kornia.enhance.jpeg_codec_differentiable(x, torch.tensor([24.0])),
        ),
        "11": ("kornia RandomGaussianNoise", lambda x, g: kornia.augmentation.RandomGaussianNoise(std=0.05, p=1.0)(x)),
        "13": (
            "kornia RandomSaltAndPepperNoise",
            lambda x, g: kornia.augmentation.RandomSaltAndPepperNoise(amount=0.01, salt_vs_pepper=0.5, p=1.0)(x),
        ),
        "16": ("kornia.enhance.adjust_brightness", lambda x, g: kornia.enhance.adjust_brightness(x, 0.2)),
        "17": ("kornia.enhance.adjust_brightness", lambda x, g: kornia.enhance.adjust_brightness(x, -0.1)),
        "18": ("kornia.enhance.adjust_brightness", lambda x, g: kornia.enhance.adjust_brightness(x, 0.0)),
        "24": ("kornia.filters.unsharp_mask", lambda x, g: kornia.filters.unsharp_mask(x, (13, 13), (3.0, 3.0))),
        "25": ("kornia.enhance.adjust_contrast", lambda x, g: kornia.enhance.adjust_contrast(x, 0.7)),
    }


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def distortion_throughput(
    batch: int, size: tuple[int, int], rounds: int, codes: Sequence[str] | None = None
) -> dict[str, Any]:
    """Batched vs per-image (and vs the kornia peer) for every type, interleaved round by round.

    Each round times the batched call, the per-image loop, the per-image loop again (an A/A control: its ratio to
    the first is pure timing noise) and the peer once each, so a slower machine slows them all. The order rotates
    from round to round: what ran just before a call shapes its allocator and cache state, and with a fixed order
    the batched call always followed the peer's allocations. Ratios: best of the rounds, and the median of the
    per-round ratios with their min–max.
    """
    h, w = size
    crops, _ = reference_crops(batch, (h, w), 0, tag="data-pipeline")
    x = torch.stack([torch.from_numpy(c).permute(2, 0, 1) for c in crops]).float() / 255.0
    peers = _peers()
    out: dict[str, Any] = {}
    for code, name in KADID_TYPES.items():
        if codes and code not in codes:
            continue
        fn = get_distortion(code)
        peer_name, peer = peers.get(code, (None, None))

        def per_image(fn: Callable[..., Tensor] = fn) -> Tensor:
            return torch.cat([fn(x[i : i + 1], 3, torch.Generator().manual_seed(0)) for i in range(batch)])

        calls: dict[str, Callable[[], Any]] = {
            "batched": lambda fn=fn: fn(x, 3, torch.Generator().manual_seed(0)),
            "per_image": per_image,
            "control": per_image,  # A/A: the same loop timed again, so the table shows what noise alone reads
        }
        if peer is not None:
            calls["peer"] = lambda peer=peer: peer(x, torch.Generator().manual_seed(0))
        for call in calls.values():  # warm-up
            call()
        times: dict[str, list[float]] = {k: [] for k in calls}
        order = list(calls)
        for r in range(rounds):  # each round starts with another call: none always runs after the same one
            for key in order[r % len(order) :] + order[: r % len(order)]:
                times[key].append(_timed(calls[key]))
        equal = None
        if not fn.random:
            per_image = torch.cat([fn(x[i : i + 1], 3, None) for i in range(batch)])
            equal = bool(torch.equal(fn(x, 3, None), per_image))
            if not torch.allclose(fn(x, 3, None), per_image, atol=1e-5):
                raise AssertionError(f"distortion {code} {name}: batched and per-image outputs differ")
        speedups = [s / b for s, b in zip(times["per_image"], times["batched"])]
        row: dict[str, Any] = {
            "batched_speedup_best": min(times["per_image"]) / min(times["batched"]),
            "control_best": min(times["per_image"]) / min(times["control"]),
            "batched_images_per_s": batch / statistics.median(times["batched"]),
            "per_image_images_per_s": batch / statistics.median(times["per_image"]),
            "batched_speedup": statistics.median(speedups),
            "batched_speedup_min": min(speedups),
            "batched_speedup_max": max(speedups),
            "equal_outputs": equal,
            "per_image_by_design": PER_IMAGE_BY_DESIGN.get(code),
        }
        if peer is not None:
            vs_peer = [p / b for p, b in zip(times["peer"], times["batched"])]
            best = min(times["peer"]) / min(times["batched"])
            row |= {"peer": peer_name, "vs_peer": statistics.median(vs_peer), "vs_peer_min": min(vs_peer),
                    "vs_peer_max": max(vs_peer), "vs_peer_best": best}  # fmt: skip
        out[f"{code} {name}"] = row
    return out


def reader_throughput(root: Path, batch: int, size: int, workers: int, repeats: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, (writer_args, reader_args) in READERS.items():
        folder = root / f"{name}_{size}"
        if not folder.exists():
            WRITERS.build(name, out=str(folder), size=[size, size], seed=0, **writer_args)
        dataset = DATASETS.build(name, root=str(folder), split="all", hflip=True, **reader_args)
        row: dict[str, Any] = {"images": len(dataset)}
        for n_workers in sorted({0, workers}):
            loader = DataLoader(
                dataset, batch_size=batch, shuffle=True, num_workers=n_workers, drop_last=True,
                persistent_workers=n_workers > 0,
            )  # fmt: skip
            seconds = median_seconds(lambda loader=loader: sum(1 for _ in loader), repeats, warmup=1)
            row[f"workers_{n_workers}_images_per_s"] = (len(dataset) // batch) * batch / seconds
        out[name] = row
    return out


def model_consumption(batch: int, size: int, repeats: int) -> float:
    """Images/s of one MRKD training step of two ResNet-10 regressors (forward, backward, two SGD steps)."""
    torch.manual_seed(0)
    distiller = MRKD({"teacher": ResNetRegressor(depth=10), "student": ResNetRegressor(depth=10)}).train()
    optims = [torch.optim.SGD(p, lr=1e-3, momentum=0.9) for p in distiller.param_groups().values()]
    data = {"input": torch.rand(batch, 3, size, size), "target": torch.rand(batch)}

    def step() -> None:
        for opt in optims:
            opt.zero_grad(set_to_none=True)
        sum(distiller.training_step(data).values()).backward()
        for opt in optims:
            opt.step()

    return batch / median_seconds(step, repeats, warmup=2)


def distortion_table(size: tuple[int, int], rows: dict[str, Any], batch: int, rounds: int) -> list[str]:
    """The per-type table for one size: batched/per-image (best of the rounds, and the per-round median with its
    min–max) and batched vs the kornia peer."""
    h, w = size
    lines = [
        f"Distortions, {batch} images of {w}×{h}, level 3, {rounds} interleaved rounds (order rotating). 'best' = "
        "per-image time / batched time, each the fastest of the rounds (timeit's estimator: slower rounds are "
        "interference); 'rounds' = median of the per-round ratios [min–max]",
        f"{'type':30}  {'batched img/s':>13}  {'per-image img/s':>15}  {'best':>5}  {'rounds':>17}  equal   "
        "vs kornia peer: best, rounds (peer time / ours)",
    ]
    for name, r in rows.items():
        eq = {None: "random", True: "yes", False: "~1e-5"}[r["equal_outputs"]]
        spread = f"{r['batched_speedup']:.2f} [{r['batched_speedup_min']:.2f}–{r['batched_speedup_max']:.2f}]"
        peer = (
            f"{r['vs_peer_best']:.2f}, {r['vs_peer']:.2f} [{r['vs_peer_min']:.2f}–{r['vs_peer_max']:.2f}] {r['peer']}"
            if "peer" in r
            else "no kornia op of this kind"
        )
        if r["per_image_by_design"]:
            peer += f"; per-image by design: {r['per_image_by_design']}"
        lines.append(
            f"{name:30}  {r['batched_images_per_s']:13.1f}  {r['per_image_images_per_s']:15.1f}  "
            f"{r['batched_speedup_best']:5.2f}  {spread:>17}  {eq:6}  {peer}"
        )
    lo, hi = noise_band(rows)
    lines.append(
        f"A/A control (the per-image loop against itself, best of the rounds): {lo:.2f}–{hi:.2f} over the "
        f"{len(rows)} types — a ratio inside that band cannot be told from 1.0 on this machine"
    )
    batched = {k: r["batched_speedup_best"] for k, r in rows.items() if not r["per_image_by_design"]}
    if batched:
        below = [k.split()[0] for k, v in batched.items() if v < 1.0]
        slower = [k.split()[0] for k, v in batched.items() if v < lo]
        chunk = images_per_chunk(3 * h * w)
        lines.append(
            f"batched types, best: {min(batched.values()):.2f}–{max(batched.values()):.2f}× (median "
            f"{statistics.median(batched.values()):.2f}×) the per-image loop; below 1.0: {', '.join(below) or 'none'}"
            f"; below the A/A band (slower beyond noise): {', '.join(slower) or 'none'}. Deterministic types work on "
            f"{chunk} image(s) per cache-sized chunk at this size"
            + (" — the per-image work minus the Python calls, so parity is the expected result" if chunk == 1 else "")
        )
    return lines


def noise_band(rows: dict[str, Any]) -> tuple[float, float]:
    """Lowest and highest A/A control ratio over the types (the spread timing noise alone produces)."""
    control = [r["control_best"] for r in rows.values()]
    return min(control), max(control)


def report(res: dict[str, Any]) -> str:
    cfg, m = res["config"], res["config"]["machine"]
    lines = [f"{machine_label(m)}, {m['threads']} threads (a shared machine: compare ratios)"]
    for size, rows in res["distortions"].items():
        lines += ["", *distortion_table(tuple(map(int, size.split("x")))[::-1], rows, cfg["batch"], cfg["rounds"])]
    if "readers" not in res:
        return "\n".join(lines)
    model = res["model_images_per_s"]
    lines += [
        "",
        f"Readers at {cfg['reader_size']}² vs the model: MRKD step (2 × ResNet-10, batch {cfg['batch']}) takes "
        f"{model:.1f} images/s",
    ]
    for name, r in res["readers"].items():
        for key, value in r.items():
            if key.startswith("workers_"):
                workers = key.split("_")[1]
                lines.append(
                    f"{name:10} {workers} workers: {value:8.1f} images/s  reader / model = {value / model:6.2f}"
                )
    return "\n".join(lines)


def markdown(res: dict[str, Any]) -> str:
    """README's data-pipeline block: per size, the batched/per-image range beside the A/A band, and reader headroom."""
    cfg, m = res["config"], res["config"]["machine"]
    lines = [
        f"`python -m benchmarks.data_pipeline --sizes {','.join(cfg['sizes'])}`: {cfg['batch']} images, level 3, "
        f"{cfg['rounds']} interleaved rounds (order rotating), best of the rounds; {machine_label(m)}, {m['threads']} "
        f"thread(s), torch {m['torch']}. Per-image-by-design types (a one-image CPU library) are left out of the "
        "ranges. Written by `python -m benchmarks.data_pipeline ... --readme` (or `--from RESULTS.json --readme`).",
        "",
        "| size | batched / per-image (best): range, median | below 1.0 | A/A control band | images per chunk |",
        "|---|---|---|---|---|",
    ]
    for size, rows in res["distortions"].items():
        w, h = map(int, size.split("x"))
        best = {k.split()[0]: r["batched_speedup_best"] for k, r in rows.items() if not r["per_image_by_design"]}
        lo, hi = noise_band(rows)
        below = ", ".join(f"{k} ({v:.2f})" for k, v in best.items() if v < 1.0) or "none"
        lines.append(
            f"| {w}×{h} | {min(best.values()):.2f}–{max(best.values()):.2f}×, {statistics.median(best.values()):.2f}× "
            f"| {below} | {lo:.2f}–{hi:.2f} | {images_per_chunk(3 * h * w)} |"
        )
    if "readers" in res:
        model = res["model_images_per_s"]
        ratios = [v / model for r in res["readers"].values() for k, v in r.items() if k.startswith("workers_")]
        lines += ["", f"Readers at {cfg['reader_size']}²: {min(ratios):.0f}–{max(ratios):.0f}× what an MRKD step "
                  f"(2 × ResNet-10, batch {cfg['batch']}) consumes ({model:.1f} images/s)."]  # fmt: skip
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument(
        "--sizes", type=parse_sizes, default=[(64, 64)], help="N or WxH, comma-separated (64,256,512x384)"
    )
    parser.add_argument("--types", help="only these KADID codes, comma-separated (default: all 25)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--rounds", type=int, default=6, help="interleaved timing rounds, order rotating (median and min–max)"
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-readers", action="store_true", help="time the distortions only")
    parser.add_argument("--data", type=Path, help="folder for the synthetic sets (default: a temporary folder)")
    parser.add_argument("--quick", action="store_true", help="batch 4, 32², 1 round")
    add_result_arguments(parser)
    args = parser.parse_args(argv)
    saved = saved_result(parser, args)
    if saved is not None:
        publish(saved, args, "data-pipeline", report, markdown)
        return saved
    if args.quick:
        args.batch, args.sizes, args.rounds = 4, [(32, 32)], 1
    if args.batch < 1 or args.rounds < 1 or args.threads < 1:
        parser.error("--batch, --rounds and --threads must be at least 1")
    codes = [c.strip().zfill(2) for c in args.types.split(",")] if args.types else None
    load_plugins()
    torch.set_num_threads(args.threads)
    reader_size = min(h for h, w in args.sizes if h == w) if any(h == w for h, w in args.sizes) else 64
    cfg = {"batch": args.batch, "sizes": [f"{w}x{h}" for h, w in args.sizes], "workers": args.workers}
    cfg |= {"rounds": args.rounds, "reader_size": reader_size, "machine": machine_info()}
    res: dict[str, Any] = {"config": cfg, "distortions": {}}
    for h, w in args.sizes:
        res["distortions"][f"{w}x{h}"] = distortion_throughput(args.batch, (h, w), args.rounds, codes)
    if not args.no_readers:
        with tempfile.TemporaryDirectory() as tmp:
            root = args.data or Path(tmp)
            res["readers"] = reader_throughput(root, args.batch, reader_size, args.workers, args.rounds)
            res["model_images_per_s"] = model_consumption(args.batch, reader_size, args.rounds)
    publish(res, args, "data-pipeline", report, markdown)
    return res


if __name__ == "__main__":
    main()
