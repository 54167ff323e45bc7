"""CQD step cost with cached teacher outputs, against plain student training and against an online teacher.

What is measured
----------------
Three runs of :meth:`distill.engine.Trainer.fit`, unmodified, on the same in-memory paired data (random clean
images, their 4x-low-resolution copies, random labels; every item carries its ``index``) with the same student
(VGG-M, ``--student-width``), built after the same seed:

* **plain** — the ``supervised`` distiller: cross-entropy of the student on the degraded view (fine-tuning);
* **cached** — the ``cqd`` distiller with ``train.teacher_cache: cached``: the engine runs the teacher (VGG-M,
  ``--teacher-width``) once over the training set before training and attaches its logits to every batch;
* **online** — the ``cqd`` distiller with ``train.teacher_cache: online``: the teacher runs on every batch.

SGD (lr 0.01, momentum 0.9), batch ``--batch``, ``--size``² inputs, ``num_workers=0``, fp32, no evaluation, no
output folder (the cache lives in memory; writing it to disk is a one-off cost like its computation).
The dataset stamps ``time.perf_counter()`` at every item fetch; a step starts when its batch's first item is
fetched, so the measured window runs from the fetch of batch ``warmup`` to the return of ``Trainer.fit`` and
covers data, forward, losses, backward and the optimizer — not the model building, the warm-up steps, or the
cached run's one-off teacher pass, which is reported separately (``cache_seconds``, with the number of steps after
which caching has paid for itself). Rounds are interleaved (the order rotates each round); the report gives the
median over rounds of each run's mean seconds per step and the ratios **cached / plain** (target <= 1.05: CQD
with a cached teacher should cost what training the student alone costs) and **online / plain**.

Equivalence: on CPU, with deterministic algorithms, the cached and the online run must end with the same student
(``allclose``; the teacher's logits of a sample do not depend on which batch computed them up to float round-off).

Run ``python -m benchmarks.cqd_cache_speed`` (defaults below) or ``--quick`` for a seconds-long smoke run;
:func:`main` is importable and returns the results dict.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import itertools
import json
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from benchmarks._common import add_force_argument, guard_outputs, machine_info, size_options
from distill.data.base import SeededDataset
from distill.distillers.cqd import CQD
from distill.distillers.supervised import Supervised
from distill.engine import Trainer
from distill.models.recognition.classification import vgg_m
from distill.recipe.config import OptimConfig, TrainConfig
from distill.run.atomic import write_text
from distill.run.checkpoint import preserved_rng

TARGET_RATIO = 1.05
MODEL_SEED = 0
DATA_SEED = 1234
CLASSES = 10
LOOPS = ("plain", "cached", "online")
DEFAULTS: dict[str, Any] = {"student_width": 0.25, "teacher_width": 1.0, "size": 64, "batch": 32, "steps": 20,
                            "repeats": 3, "warmup": 3}  # fmt: skip
QUICK: dict[str, Any] = {"student_width": 0.1, "teacher_width": 0.25, "size": 64, "batch": 8, "steps": 4,
                         "repeats": 1, "warmup": 1}  # fmt: skip


@dataclass
class BenchConfig:
    """The resolved settings of one benchmark run."""

    student_width: float
    teacher_width: float
    size: int
    batch: int
    steps: int
    repeats: int
    warmup: int
    threads: int
    quick: bool

    @property
    def total_steps(self) -> int:
        return self.warmup + self.steps


class RandomPairs(SeededDataset):
    """In-memory clean images, their 4x-low-resolution copies and labels; stamps the time of every item fetch."""

    def __init__(self, n: int, size: int, seed: int = DATA_SEED) -> None:
        g = torch.Generator().manual_seed(seed)
        self.clean = torch.rand(n, 3, size, size, generator=g)
        low = F.interpolate(self.clean, scale_factor=0.25, mode="bilinear", antialias=True)
        self.degraded = F.interpolate(low, size=(size, size), mode="bilinear").clamp(0, 1)
        self.labels = torch.randint(0, CLASSES, (n,), generator=g)
        self.fetches: list[float] = []

    def cache_identity(self, key: str) -> dict[str, Any]:
        if key != "input_clean":
            raise KeyError(key)
        return {"dataset": "random_pairs", "seed": DATA_SEED, "n": len(self.clean), "view": "clean"}

    def __len__(self) -> int:
        return len(self.clean)

    def __getitem__(self, i: int) -> dict[str, Any]:
        self.fetches.append(time.perf_counter())
        return {"input": self.degraded[i], "input_clean": self.clean[i], "target": self.labels[i], "index": i}


def build(loop: str, cfg: BenchConfig, teacher_state: dict[str, torch.Tensor]) -> Trainer:
    torch.manual_seed(MODEL_SEED)
    student = vgg_m(CLASSES, width=cfg.student_width, fc_dim=256, pool=1, batch_norm=True, dropout=0.0)
    if loop == "plain":
        distiller: Any = Supervised({"student": student}, loss="cross_entropy")
    else:
        teacher = vgg_m(CLASSES, width=cfg.teacher_width, fc_dim=256, pool=1, batch_norm=True, dropout=0.0)
        teacher.load_state_dict(teacher_state)
        distiller = CQD({"teacher": teacher, "student": student}, temperature=10.0, weight=200.0)
    config = TrainConfig(
        iterations=cfg.total_steps, batch_size=cfg.batch, eval_batch_size=cfg.batch, num_workers=0, seed=MODEL_SEED,
        deterministic=True, device="cpu", log_every=10**9, eval_every=cfg.total_steps, progress=False,
        teacher_cache="online" if loop == "online" else "cached",
    )  # fmt: skip
    return Trainer(distiller, RandomPairs(cfg.total_steps * cfg.batch, cfg.size), None,
                   optim={"student": OptimConfig(lr=0.01, momentum=0.9)}, config=config, out_dir=None,
                   tensorboard=False)  # fmt: skip


def timed_run(loop: str, cfg: BenchConfig, teacher_state: dict[str, torch.Tensor]) -> dict[str, Any]:
    """One ``Trainer.fit``; seconds per measured step, the one-off cache time and the final student."""
    trainer = build(loop, cfg, teacher_state)
    data: RandomPairs = trainer.train_set  # type: ignore[assignment]
    trainer.fit()
    t_end = time.perf_counter()
    if trainer.step != cfg.total_steps:
        raise RuntimeError(f"{loop}: ran {trainer.step} steps, expected {cfg.total_steps}")
    train_fetches = data.fetches[len(data.fetches) - cfg.total_steps * cfg.batch :]  # after the cache's pass
    bounds = [train_fetches[k * cfg.batch] for k in range(cfg.warmup, cfg.total_steps)] + [t_end]
    cache = trainer.teacher_outputs
    if (loop == "cached") != (cache is not None):
        raise RuntimeError(f"{loop}: the engine {'did not cache' if cache is None else 'cached'} teacher outputs")
    return {
        "s_per_step": (t_end - bounds[0]) / cfg.steps,
        "step_s": [b - a for a, b in itertools.pairwise(bounds)],
        "cache_seconds": cache.seconds if cache is not None else 0.0,
        "student": {k: v.detach().clone() for k, v in trainer.distiller.models["student"].state_dict().items()},
    }


def benchmark(cfg: BenchConfig) -> dict[str, Any]:
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(MODEL_SEED + 1)
    teacher_state = vgg_m(CLASSES, width=cfg.teacher_width, fc_dim=256, pool=1, batch_norm=True).state_dict()
    runs: dict[str, list[dict[str, Any]]] = {loop: [] for loop in LOOPS}
    for r in range(cfg.repeats):
        order = LOOPS[r % 3 :] + LOOPS[: r % 3]
        for loop in order:
            runs[loop].append(timed_run(loop, cfg, teacher_state))
            gc.collect()
    per_loop = {
        loop: {
            "s_per_step_per_round": [x["s_per_step"] for x in rs],
            "median_s_per_step": statistics.median(x["s_per_step"] for x in rs),
            "min_s_per_step": min(x["s_per_step"] for x in rs),
            "max_s_per_step": max(x["s_per_step"] for x in rs),
        }
        for loop, rs in runs.items()
    }
    plain = per_loop["plain"]["median_s_per_step"]
    cached, online = per_loop["cached"]["median_s_per_step"], per_loop["online"]["median_s_per_step"]
    cache_s = statistics.median(x["cache_seconds"] for x in runs["cached"])
    a, b = runs["cached"][-1]["student"], runs["online"][-1]["student"]
    max_diff = max(float((a[k].double() - b[k].double()).abs().max()) for k in a if a[k].is_floating_point())
    same = all(torch.allclose(a[k].float(), b[k].float(), rtol=1e-4, atol=1e-5) for k in a)
    saved = online - cached
    return {
        "benchmark": "cqd_cache_speed",
        "machine": machine_info("cpu"),
        "config": asdict(cfg),
        "loops": per_loop,
        "ratio_cached_vs_plain": cached / plain,
        "ratio_online_vs_plain": online / plain,
        "target": TARGET_RATIO,
        "passed": cached / plain <= TARGET_RATIO,
        "cache_seconds": cache_s,
        "break_even_steps": cache_s / saved if saved > 0 else None,
        "cached_equals_online": {"allclose": same, "max_abs_diff": max_diff, "rtol": 1e-4, "atol": 1e-5},
    }


def format_table(res: dict[str, Any]) -> str:
    m, c, loops = res["machine"], res["config"], res["loops"]
    rows = [
        ("machine", f"{m['platform']}, {m['cpu_count']} CPUs, torch {m['torch']}, {m['threads']} threads"),
        (
            "config",
            f"student VGG-M width {c['student_width']}, teacher VGG-M width {c['teacher_width']}, "
            f"{c['size']}px, batch {c['batch']}, {c['steps']} steps (+{c['warmup']} warm-up), "
            f"{c['repeats']} rounds, cpu",
        ),
        *(
            (
                f"{loop} s/step",
                f"{v['median_s_per_step']:.4f}  (min {v['min_s_per_step']:.4f}, max {v['max_s_per_step']:.4f})",
            )
            for loop, v in loops.items()
        ),
        (
            "cached / plain",
            f"{res['ratio_cached_vs_plain']:.4f}  (target <= {res['target']:.2f}: "
            f"{'PASS' if res['passed'] else 'MISS'})",
        ),
        ("online / plain", f"{res['ratio_online_vs_plain']:.4f}"),
        (
            "teacher pass",
            f"{res['cache_seconds']:.2f} s once before training"
            + (f" (pays off after {res['break_even_steps']:.0f} steps)" if res["break_even_steps"] else ""),
        ),
        (
            "cached == online",
            f"{'allclose' if res['cached_equals_online']['allclose'] else 'DIFFERENT'} "
            f"(max |diff| {res['cached_equals_online']['max_abs_diff']:.3g})",
        ),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def parse_args(argv: Sequence[str] | None) -> tuple[BenchConfig, Path | None]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    for key, default in DEFAULTS.items():
        kind = float if isinstance(default, float) else int
        p.add_argument(f"--{key.replace('_', '-')}", type=kind, help=f"default {default}")
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    p.add_argument("--json", type=Path, help="write the results dict to this file")
    p.add_argument("--quick", action="store_true", help="smoke size: tiny widths, batch 8, 4 steps, 1 round")
    add_force_argument(p)
    args = p.parse_args(argv)
    guard_outputs(p, args)
    widths = ("student_width", "teacher_width")
    values = size_options(p, args, DEFAULTS, QUICK, lambda k: 0 if k == "warmup" else 1e-3 if k in widths else 1)
    if values["size"] < 64:
        p.error("--size must be at least 64 (VGG-M's five poolings)")
    return BenchConfig(**values, threads=args.threads, quick=args.quick), args.json


@contextlib.contextmanager
def isolated_torch(threads: int) -> Iterator[None]:
    """Run with ``threads`` intra-op threads; restore the thread count, deterministic mode and RNG states after."""
    before = torch.get_num_threads()
    mode = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    torch.set_num_threads(threads)
    try:
        with preserved_rng():
            yield
    finally:
        torch.set_num_threads(before)
        torch.use_deterministic_algorithms(mode[0], warn_only=mode[1])


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the table (and write ``--json``); returns the results dict.

    Global torch state touched here (threads, deterministic mode, RNG states) is restored on return.
    """
    cfg, json_path = parse_args(argv)
    with isolated_torch(cfg.threads):
        res = benchmark(cfg)
    print(format_table(res))
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        write_text(json_path, json.dumps(res, indent=2) + "\n")
    if not res["cached_equals_online"]["allclose"]:
        raise AssertionError(
            f"CQD with cached and with online teacher outputs ended with different students (max |diff| "
            f"{res['cached_equals_online']['max_abs_diff']:.3g}): the cache does not reproduce the teacher"
        )
    return res


if __name__ == "__main__":
    main(sys.argv[1:])
