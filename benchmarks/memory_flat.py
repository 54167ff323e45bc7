"""Memory stays flat across epochs: resident memory after epoch 1 vs after epoch N of a small recipe, as a ratio.

What is measured
----------------
The recipe (default: ``recipes/mrkd_resnet10_cpu.yaml``, MRKD with two ResNet-10 regressors on the quickstart's
synthetic KADID-10k layout) is built with :func:`distill.build.build_run` and trained by ``Trainer.fit`` unmodified —
the same objects ``distill run`` builds; the benchmark has no training loop. Every epoch trains, evaluates and writes
a checkpoint.
At each epoch boundary (the engine calls the training set's ``set_epoch`` before every epoch, so the call before
epoch e+1 comes right after epoch e's evaluation and checkpoint) and once more when ``fit`` returns, the script runs
``gc.collect()`` and records:

* **RSS**: the process's resident set size from ``/proc/self/statm`` (``psutil`` where there is no ``/proc``);
* **live tensors**: the ``torch.Tensor`` objects the garbage collector tracks (a retained autograd graph or a
  growing cache of outputs shows up here exactly, without allocator noise);
* **Python blocks**: ``sys.getallocatedblocks()``.

The headline is ``ratio = RSS after epoch N / RSS after epoch 1``. Epoch 1 already includes the one-off costs
(first evaluation, first checkpoint, allocator and thread-pool warm-up), so a flat run stays near 1.00. Verdict:
``flat`` when the ratio is at most ``--max-ratio`` (default 1.10) **and** the live-tensor count after epoch N is
not above epoch 1's. The growth per epoch over epochs 2..N (least-squares slope, MiB/epoch) is printed beside it.

Scales: ``smoke`` (a tiny synthetic set written under ``--out``, 5 references at 48 px, 6 epochs; well under a
minute on 2 cores) and ``small`` (the quickstart's own 32-reference 64 px set, 12 epochs; minutes). ``--quick`` is
``--scale smoke``. Run ``python -m benchmarks.memory_flat --scale small``; :func:`main` returns the results dict.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._common import add_force_argument, guard_outputs  # noqa: E402
from distill.build import build_run  # noqa: E402
from distill.recipe.check import load_recipe  # noqa: E402
from distill.run.atomic import write_text  # noqa: E402
from distill.run.checkpoint import preserved_rng  # noqa: E402

MAX_RATIO = 1.10
SMOKE_DATA = (
    "data.synthetic.args.n_refs=5",
    "data.synthetic.args.size=[48, 48]",
    "data.synthetic.args.distortions=[gaussian_blur, lens_blur, white_noise, jpeg, darken, quantisation]",
    "data.train.args.crop=32",
    "train.batch_size=8",
)
SCALES: dict[str, dict[str, Any]] = {
    "smoke": {"epochs": 6, "overrides": SMOKE_DATA, "data": "{out}/data"},
    "small": {"epochs": 12, "overrides": (), "data": None},  # the recipe's own data.root
}


def rss_bytes() -> int:
    """Current resident set size of this process in bytes."""
    statm = Path("/proc/self/statm")
    if statm.exists():
        return int(statm.read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    try:
        import psutil
    except ImportError as err:  # pragma: no cover - non-Linux without psutil
        raise SystemExit("memory_flat needs /proc/self/statm (Linux) or psutil") from err
    return int(psutil.Process().memory_info().rss)


def live_tensors() -> int:
    """``torch.Tensor`` objects tracked by the garbage collector (parameters, buffers, states, leaks)."""
    # type(), not isinstance(): isinstance reads __class__, which some lazy module objects answer with a warning
    return sum(1 for obj in gc.get_objects() if issubclass(type(obj), torch.Tensor))


def sample(epoch: int) -> dict[str, Any]:
    gc.collect()
    return {
        "epoch": epoch,
        "rss_mib": rss_bytes() / 2**20,
        "tensors": live_tensors(),
        "blocks": sys.getallocatedblocks(),
    }


def slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares slope of ys over xs (0 with fewer than two points)."""
    if len(xs) < 2:
        return 0.0
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else 0.0


def measure(recipe_path: Path, overrides: list[str], out: Path, epochs: int) -> list[dict[str, Any]]:
    """Train the recipe for ``epochs`` (evaluating and checkpointing every epoch); one sample per finished epoch."""
    run_dir = out / "run"
    shutil.rmtree(run_dir, ignore_errors=True)
    recipe, resolved = load_recipe(recipe_path, overrides)
    run = build_run(recipe, resolved, run_dir)
    samples: list[dict[str, Any]] = []
    set_epoch = run.train_set.set_epoch  # type: ignore[attr-defined]

    def record_then_set_epoch(epoch: int) -> None:
        if epoch > 0 and (not samples or samples[-1]["epoch"] != epoch):
            samples.append(sample(epoch))  # epoch `epoch` has trained, evaluated and checkpointed
        set_epoch(epoch)

    run.train_set.set_epoch = record_then_set_epoch  # type: ignore[attr-defined]
    result = run.trainer.fit()
    samples.append(sample(epochs))
    if result.steps != run.trainer.total_steps:
        raise RuntimeError(f"the run stopped after {result.steps} of {run.trainer.total_steps} steps")
    return samples


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    scale = SCALES[args.scale]
    epochs = args.epochs or scale["epochs"]
    out = args.out or Path(tempfile.mkdtemp(prefix="memory_flat_"))
    sets = [*scale["overrides"]]
    if scale["data"]:
        root = scale["data"].format(out=out)
        sets += [f"data.root={root}", f"data.synthetic.root={root}"]  # the synthetic set is written there
    sets += [
        f"train.epochs={epochs}",
        "train.eval_every=1",
        "train.progress=false",
        "output.tensorboard=false",
        *(args.set or []),
    ]
    samples = measure(args.recipe, sets, out, epochs)
    first, last = samples[0], samples[-1]
    ratio = last["rss_mib"] / first["rss_mib"]
    later = samples[1:]
    growth = slope([s["epoch"] for s in later], [s["rss_mib"] for s in later])
    recipe, _ = load_recipe(args.recipe, sets)
    return {
        "benchmark": "memory_flat",
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        },
        "config": {
            "scale": args.scale,
            "recipe": str(args.recipe),
            "name": recipe.name,
            "distiller": recipe.distiller.name,
            "models": {role: spec.name for role, spec in recipe.models.items()},
            "epochs": epochs,
            "batch_size": recipe.train.batch_size,
            "data_root": recipe.data.root,
            "overrides": sets,
            "out": str(out),
        },
        "samples": samples,
        "ratio": ratio,
        "growth_mib_per_epoch": growth,
        "tensor_growth": last["tensors"] - first["tensors"],
        "max_ratio": args.max_ratio,
        "flat": ratio <= args.max_ratio and last["tensors"] <= first["tensors"],
    }


def format_table(res: dict[str, Any]) -> str:
    c = res["config"]
    lines = [
        f"memory across epochs | recipe {c['name']} ({c['distiller']}: "
        + ", ".join(f"{r}={m}" for r, m in c["models"].items())
        + f") | data {c['data_root']} | batch {c['batch_size']} | {c['epochs']} epochs, each with evaluation and "
        f"checkpoint | torch {res['machine']['torch']}, {res['machine']['threads']} threads",
        "epoch  RSS MiB  live tensors  python blocks",
    ]
    lines += [f"{s['epoch']:>5}  {s['rss_mib']:>7.1f}  {s['tensors']:>12}  {s['blocks']:>13}" for s in res["samples"]]
    lines += [
        f"ratio RSS epoch {c['epochs']} / epoch 1: {res['ratio']:.3f} (flat: <= {res['max_ratio']:.2f})",
        f"growth over epochs 2..{c['epochs']}: {res['growth_mib_per_epoch']:+.2f} MiB/epoch; live tensors "
        f"{res['tensor_growth']:+d}",
        f"result: {'FLAT' if res['flat'] else 'GROWS'}",
    ]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--scale", choices=list(SCALES), default="small")
    p.add_argument("--quick", action="store_true", help="same as --scale smoke")
    p.add_argument("--epochs", type=int, help="epochs N (default: 6 smoke, 12 small)")
    p.add_argument("--recipe", type=Path, default=ROOT / "recipes" / "mrkd_resnet10_cpu.yaml")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="extra recipe override (repeatable)")
    p.add_argument("--out", type=Path, help="scratch folder for the data (smoke) and the run (default: a temp dir)")
    p.add_argument("--max-ratio", type=float, default=MAX_RATIO, help=f"flat threshold (default {MAX_RATIO})")
    p.add_argument("--json", type=Path, help="write the results dict to this file")
    add_force_argument(p)
    args = p.parse_args(argv)
    guard_outputs(p, args)
    if args.quick:
        args.scale = "smoke"
    if args.epochs is not None and args.epochs < 2:
        p.error(f"--epochs must be at least 2 (epoch 1 is the baseline), got {args.epochs}")
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the table (and write ``--json``); returns the results dict."""
    args = parse_args(argv)
    with preserved_rng():
        res = benchmark(args)
    print(format_table(res))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        write_text(args.json, json.dumps(res, indent=2) + "\n")
    return res


if __name__ == "__main__":
    main(sys.argv[1:])
