"""Data pipeline throughput: the distortion generator and the dataset readers against what the model consumes.

What is measured
----------------
* **Distortions** — every KADID-10k type at level 3 on ``--batch`` images of ``--size``² (crops of scikit-image's
  photographs): one batched call (``fn(x, level, generator)`` on ``[B, 3, H, W]``) versus the per-image reference
  (``B`` calls on ``[1, 3, H, W]``). Printed: images/s of each and the batched speed-up. For deterministic types
  the two outputs must be equal (checked); random types draw their noise differently per call and are not compared.
* **Readers** — the KADID-10k, TID2013 and LIVEC readers on synthetic sets in their official layouts (written
  once under ``--data``), iterated through a ``DataLoader`` at the MRKD batch size with 0 and ``--workers`` persistent
  worker processes (decode, augmentation, collation; worker start-up falls in the untimed warm-up epoch).
  Printed: images/s per reader and worker count.
* **Consumption** — one MRKD training step (two ResNet-10 regressors, forward, MSE terms, backward, two SGD steps)
  on batches of the same size: the images/s the model can take. ``reader / model`` > 1 means the data pipeline is
  not the bottleneck at that worker count.

Run ``python -m benchmarks.data_pipeline`` (defaults: batch 16, 64², 2 workers, 3 repeats) or ``--quick``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from benchmarks._common import machine_info, median_seconds
from distill.data.iqa.distortions import KADID_TYPES, get_distortion
from distill.data.synthetic_common import reference_crops
from distill.distillers.mrkd import MRKD
from distill.models.iqa.resnet import ResNetRegressor
from distill.registry import DATASETS, WRITERS, load_plugins

READERS = {  # dataset → (writer args for a set of >= 200 images at the benchmark size, reader args)
    "kadid10k": ({"n_refs": 8, "distortions": ["gaussian_blur", "jpeg", "white_noise", "darken", "quantisation"]}, {}),
    "tid2013": ({"n_refs": 8, "distortions": ["01", "08", "10", "14", "16"]}, {}),
    "livec": ({"n_images": 200}, {"split_mode": "random"}),
}


def distortion_throughput(batch: int, size: int, repeats: int) -> dict[str, Any]:
    crops, _ = reference_crops(batch, (size, size), 0, tag="data-pipeline")
    x = torch.stack([torch.from_numpy(c).permute(2, 0, 1) for c in crops]).float() / 255.0
    out: dict[str, Any] = {}
    for code, name in KADID_TYPES.items():
        fn = get_distortion(code)

        def run_batched(fn: Any = fn) -> Any:
            return fn(x, 3, torch.Generator().manual_seed(0))

        def run_per_image(fn: Any = fn) -> Any:
            return [fn(x[i : i + 1], 3, torch.Generator().manual_seed(0)) for i in range(batch)]

        batched = median_seconds(run_batched, repeats)
        single = median_seconds(run_per_image, repeats)
        equal = None
        if not fn.random:
            per_image = torch.cat([fn(x[i : i + 1], 3, None) for i in range(batch)])
            equal = bool(torch.allclose(fn(x, 3, None), per_image, atol=1e-5))
            if not equal:
                raise AssertionError(f"distortion {code} {name}: batched and per-image outputs differ")
        out[f"{code} {name}"] = {
            "batched_images_per_s": batch / batched,
            "per_image_images_per_s": batch / single,
            "batched_speedup": single / batched,
            "equal_outputs": equal,
        }
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


def report(res: dict[str, Any]) -> str:
    cfg, m = res["config"], res["config"]["machine"]
    lines = [
        f"Distortions, {cfg['batch']} images of {cfg['size']}², level 3 | {m['processor']}, {m['threads']} threads"
    ]
    lines.append(f"{'type':32}  {'batched img/s':>13}  {'per-image img/s':>15}  {'speed-up':>8}  equal")
    for name, r in res["distortions"].items():
        eq = {None: "random", True: "yes", False: "NO"}[r["equal_outputs"]]
        lines.append(
            f"{name:32}  {r['batched_images_per_s']:13.1f}  {r['per_image_images_per_s']:15.1f}  "
            f"{r['batched_speedup']:8.2f}  {eq}"
        )
    model = res["model_images_per_s"]
    lines += ["", f"Readers vs the model: MRKD step (2 × ResNet-10, batch {cfg['batch']}) takes {model:.1f} images/s"]
    for name, r in res["readers"].items():
        for key, value in r.items():
            if key.startswith("workers_"):
                workers = key.split("_")[1]
                lines.append(
                    f"{name:10} {workers} workers: {value:8.1f} images/s  reader / model = {value / model:6.2f}"
                )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data", type=Path, help="folder for the synthetic sets (default: a temporary folder)")
    parser.add_argument("--quick", action="store_true", help="batch 4, 32², 1 repeat")
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args(argv)
    if args.quick:
        args.batch, args.size, args.repeats = 4, 32, 1
    load_plugins()
    torch.set_num_threads(args.threads)
    cfg = {"batch": args.batch, "size": args.size, "workers": args.workers, "repeats": args.repeats}
    cfg["machine"] = machine_info()
    with tempfile.TemporaryDirectory() as tmp:
        res = {
            "config": cfg,
            "distortions": distortion_throughput(args.batch, args.size, args.repeats),
            "readers": reader_throughput(args.data or Path(tmp), args.batch, args.size, args.workers, args.repeats),
            "model_images_per_s": model_consumption(args.batch, args.size, args.repeats),
        }
    print(report(res))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    main()
