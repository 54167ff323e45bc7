"""Engine overhead: one MRKD training step through ``Trainer.fit`` versus a hand-written two-model PyTorch loop.

What is measured
----------------
Both sides train the same two :class:`~distill.models.iqa.resnet.ResNetRegressor` models (built after
``torch.manual_seed`` with the same seed, dropout off) on the same batches in the same order:

* **engine** — :class:`~distill.engine.Trainer` with the :class:`~distill.distillers.mrkd.MRKD` distiller, one SGD
  optimizer per group (teacher lr 0.2, student lr 0.05, momentum 0.9, weight decay 5e-4, the MRKD recipe's values)
  and per-group cosine schedules. ``Trainer.fit`` runs unmodified: no evaluation sets, no output folder, progress
  bar off, logging interval larger than the run.
* **hand** — a plain loop over a ``DataLoader``: two ``torch.optim.SGD`` optimizers, the learning rate of each set
  by hand at every step with MRKD eq. 6, ``loss = MSE(q_T, y) + MSE(q_S, y) + alpha * MSE(q_S, q_T)``, then
  ``zero_grad`` / ``backward`` / (clip) / ``step``.

Gradient clipping: from random initialisation on random data, lr 0.2 with momentum 0.9 diverges at once (the loss
grows ~5000x per step and is NaN by step 5). The engine then stops (non-finite loss) and NaN/inf arithmetic makes
CPU kernels many times slower, so neither loop could be timed. Both loops therefore clip each model's gradient norm
to ``--clip`` (default 1.0; the engine's ``optim.<group>.clip_grad_norm``, by hand ``clip_grad_norm_`` per model).
``--clip 0`` turns clipping off in both (expect a non-finite-loss error).

The data is an in-memory :class:`~distill.data.base.SeededDataset` of random images and scores (fixed seed), read
with ``num_workers=0`` by both loops; its size is one epoch of ``warmup + steps`` batches. The hand loop replays the
exact batches the engine drew (recorded from the dataset's ``__getitem__`` calls), so both see identical tensors.

Timing: the dataset stamps ``time.perf_counter()`` when each item is fetched. A step starts when the first item of
its batch is fetched, so the measured window runs from the fetch of batch ``warmup`` to the moment the loop (for the
engine: ``Trainer.fit``) returns, and covers all per-step work of the loop — data fetch and collation, learning-rate
updates, forward, loss, backward, optimizer steps and the engine's bookkeeping — but not model building, optimizer
construction or the warm-up steps. On CUDA the device is synchronised at both ends of the window. Rounds are
interleaved (engine first in even rounds, hand first in odd rounds) and the report gives, per loop, the median over
rounds of the mean seconds per step, min and max, the ratio of the medians (engine / hand) and the paired per-round
ratios. The script also checks that both loops end with the same weights (parameters and BatchNorm buffers of
both models; deterministic algorithms on CPU) — proof that they do the same math.

Run ``python -m benchmarks.engine_overhead`` (defaults: ResNet-18, 96², batch 16, 20 steps, 3 rounds, 2 threads) or
``--quick`` for a seconds-long smoke run; :func:`main` is importable and returns the results dict.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import math
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from benchmarks._common import add_force_argument, guard_outputs, machine_info, size_options
from distill.data.base import SeededDataset
from distill.distillers.mrkd import MRKD
from distill.engine import Trainer
from distill.models.iqa.resnet import ResNetRegressor
from distill.recipe.config import OptimConfig, ScheduleConfig, TrainConfig
from distill.run.atomic import write_text
from distill.run.checkpoint import preserved_rng

TARGET_RATIO = 1.03
TEACHER_LR = 0.2
STUDENT_LR = 0.05
MOMENTUM = 0.9
WEIGHT_DECAY = 5e-4
ETA_MIN = 0.0
ALPHA = 1.0
CLIP = 1.0
MODEL_SEED = 0
DATA_SEED = 1234
# Tolerances of the same-weights check. On CPU both loops run deterministic kernels and are expected to agree
# bit for bit; CUDA cannot enable deterministic algorithms for ResNet (adaptive pooling backward), hence looser.
TOLERANCE = {"cpu": (1e-6, 1e-7), "cuda": (1e-4, 1e-5)}  # (rtol, atol)

DEFAULTS: dict[str, Any] = {"depth": 18, "size": 96, "batch": 16, "steps": 20, "repeats": 3, "warmup": 3}
QUICK: dict[str, Any] = {"depth": 10, "size": 32, "batch": 4, "steps": 5, "repeats": 1, "warmup": 1}


@dataclass
class BenchConfig:
    """The resolved settings of one benchmark run."""

    depth: int
    size: int
    batch: int
    steps: int
    repeats: int
    warmup: int
    clip: float
    threads: int
    device: str
    quick: bool

    @property
    def total_steps(self) -> int:
        return self.warmup + self.steps


@dataclass
class RunTiming:
    """One timed training run of either loop."""

    s_per_step: float  # mean over the measured steps
    step_s: list[float]  # each measured step
    wall_s: float  # the whole loop (``Trainer.fit`` for the engine), warm-up included
    batches: list[list[int]]  # the batches as drawn, in order
    weights: dict[str, torch.Tensor]  # final state of both models, on CPU


class RandomIQA(SeededDataset):
    """In-memory random images in [0, 1] with random scores in [1, 5]; stamps the time of every item fetch.

    ``sync_at``: on CUDA, the fetch number at which the device is synchronised before stamping (the start of the
    measured window), so work queued by the warm-up steps is not charged to the measured steps.
    """

    def __init__(self, n: int, size: int, seed: int = DATA_SEED) -> None:
        g = torch.Generator().manual_seed(seed)
        self.images = torch.rand(n, 3, size, size, generator=g)
        self.scores = torch.rand(n, generator=g) * 4 + 1
        self.fetches: list[tuple[int, float]] = []
        self.sync_at: int | None = None

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict[str, Any]:
        if self.sync_at is not None and len(self.fetches) == self.sync_at:
            torch.cuda.synchronize()
        self.fetches.append((i, time.perf_counter()))
        return {"input": self.images[i], "target": self.scores[i], "meta": {"name": str(i)}}

    def start(self, cfg: BenchConfig) -> None:
        """Forget earlier fetches before a run."""
        self.fetches = []
        self.sync_at = cfg.warmup * cfg.batch if cfg.device == "cuda" else None


def eq6(lr0: float, eta_min: float, t: int, t_max: int) -> float:
    """MRKD eq. 6: ``eta_t = eta_min + (eta_max - eta_min) * (1 + cos(pi * T / T_max)) / 2``."""
    return eta_min + (lr0 - eta_min) * (1 + math.cos(math.pi * t / t_max)) / 2


def build_models(depth: int, device: torch.device) -> tuple[nn.Module, nn.Module]:
    """Teacher and student, both drawn from the global RNG right after seeding it."""
    torch.manual_seed(MODEL_SEED)
    teacher = ResNetRegressor(depth=depth, dropout=0.0).to(device)
    student = ResNetRegressor(depth=depth, dropout=0.0).to(device)
    return teacher, student


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _state(teacher: nn.Module, student: nn.Module) -> dict[str, torch.Tensor]:
    return {
        f"{role}.{k}": v.detach().cpu().clone()
        for role, model in (("teacher", teacher), ("student", student))
        for k, v in model.state_dict().items()
    }


def _timing(
    data: RandomIQA, cfg: BenchConfig, t_start: float, t_end: float, weights: dict[str, torch.Tensor]
) -> RunTiming:
    fetched = [i for i, _ in data.fetches]
    if len(fetched) != cfg.total_steps * cfg.batch:
        raise RuntimeError(f"expected {cfg.total_steps * cfg.batch} item fetches, saw {len(fetched)}")
    batches = [fetched[k : k + cfg.batch] for k in range(0, len(fetched), cfg.batch)]
    bounds = [data.fetches[k * cfg.batch][1] for k in range(cfg.warmup, cfg.total_steps)] + [t_end]
    step_s = [b - a for a, b in itertools.pairwise(bounds)]
    return RunTiming(
        s_per_step=(t_end - bounds[0]) / cfg.steps,
        step_s=step_s,
        wall_s=t_end - t_start,
        batches=batches,
        weights=weights,
    )


def run_engine(cfg: BenchConfig, data: RandomIQA) -> RunTiming:
    """``Trainer.fit`` with MRKD for ``warmup + steps`` iterations, unmodified."""
    device = torch.device(cfg.device)
    teacher, student = build_models(cfg.depth, device)
    distiller = MRKD({"teacher": teacher, "student": student}, alpha=ALPHA, detach_teacher=False)
    cosine = ScheduleConfig(name="cosine", eta_min=ETA_MIN)
    optim = {
        role: OptimConfig(
            optimizer="sgd",
            lr=lr,
            momentum=MOMENTUM,
            weight_decay=WEIGHT_DECAY,
            schedule=cosine,
            clip_grad_norm=cfg.clip or None,
        )
        for role, lr in (("teacher", TEACHER_LR), ("student", STUDENT_LR))
    }
    train = TrainConfig(
        iterations=cfg.total_steps,
        batch_size=cfg.batch,
        num_workers=0,
        seed=MODEL_SEED,
        deterministic=cfg.device == "cpu",
        device=cfg.device,
        precision="fp32",
        log_every=10**9,
        eval_every=cfg.total_steps,
        progress=False,
    )
    trainer = Trainer(distiller, data, None, optim=optim, config=train, out_dir=None, tensorboard=False)
    data.start(cfg)
    t_start = time.perf_counter()
    trainer.fit()
    _sync(device)
    t_end = time.perf_counter()
    if trainer.step != cfg.total_steps or trainer.skipped:
        raise RuntimeError(f"engine ran {trainer.step} steps ({trainer.skipped} skipped), expected {cfg.total_steps}")
    return _timing(data, cfg, t_start, t_end, _state(teacher, student))


def run_hand(cfg: BenchConfig, data: RandomIQA, batches: list[list[int]]) -> RunTiming:
    """The same training written as a plain two-model PyTorch loop over ``batches``."""
    device = torch.device(cfg.device)
    teacher, student = build_models(cfg.depth, device)
    opt_t = torch.optim.SGD(teacher.parameters(), lr=TEACHER_LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    opt_s = torch.optim.SGD(student.parameters(), lr=STUDENT_LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    loader = DataLoader(data, batch_sampler=batches, num_workers=0, pin_memory=device.type == "cuda")
    teacher.train()
    student.train()
    total = cfg.total_steps
    data.start(cfg)
    t_start = time.perf_counter()
    for step, batch in enumerate(loader):
        x = batch["input"].to(device, non_blocking=True)
        y = batch["target"].to(device, non_blocking=True)
        for opt, lr0 in ((opt_t, TEACHER_LR), (opt_s, STUDENT_LR)):
            lr = eq6(lr0, ETA_MIN, step, total)
            for group in opt.param_groups:
                group["lr"] = lr
        q_t = teacher(x)
        q_s = student(x)
        loss = F.mse_loss(q_t, y) + F.mse_loss(q_s, y) + ALPHA * F.mse_loss(q_s, q_t)
        opt_t.zero_grad(set_to_none=True)
        opt_s.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.clip:
            torch.nn.utils.clip_grad_norm_(teacher.parameters(), cfg.clip)
            torch.nn.utils.clip_grad_norm_(student.parameters(), cfg.clip)
        opt_t.step()
        opt_s.step()
    _sync(device)
    t_end = time.perf_counter()
    return _timing(data, cfg, t_start, t_end, _state(teacher, student))


def compare_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], device: str) -> dict[str, Any]:
    """Whether two final states agree: bit-identical, max |difference| and ``torch.allclose`` per tensor."""
    if a.keys() != b.keys():
        raise AssertionError("the two loops trained different sets of tensors")
    rtol, atol = TOLERANCE[device]
    max_diff, identical, close = 0.0, True, True
    for k in a:
        x, y = a[k], b[k]
        identical = identical and torch.equal(x, y)
        if x.is_floating_point():
            max_diff = max(max_diff, float((x.double() - y.double()).abs().max()))
            close = close and torch.allclose(x, y, rtol=rtol, atol=atol)
        else:
            close = close and torch.equal(x, y)
    return {"bit_identical": identical, "allclose": close, "max_abs_diff": max_diff, "rtol": rtol, "atol": atol}


def _summary(runs: list[RunTiming]) -> dict[str, Any]:
    per_round = [r.s_per_step for r in runs]
    steps = [s for r in runs for s in r.step_s]
    return {
        "s_per_step_per_round": per_round,
        "median_s_per_step": statistics.median(per_round),
        "min_s_per_step": min(per_round),
        "max_s_per_step": max(per_round),
        "median_single_step_s": statistics.median(steps),
        # (max - min) / median over rounds: how far timing noise moves this loop's figure between rounds
        "spread": (max(per_round) - min(per_round)) / statistics.median(per_round),
        "wall_s_per_round": [r.wall_s for r in runs],
        "step_s_per_round": [r.step_s for r in runs],
    }


def benchmark(cfg: BenchConfig) -> dict[str, Any]:
    """Interleaved rounds of both loops; returns the results dict (raises if the loops' weights disagree)."""
    if cfg.device == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("--device cuda: CUDA is not available")
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    else:
        torch.use_deterministic_algorithms(True)
    data = RandomIQA(cfg.total_steps * cfg.batch, cfg.size)
    engine_runs: list[RunTiming] = []
    hand_runs: list[RunTiming] = []
    checks: list[dict[str, Any]] = []
    order: list[list[int]] | None = None
    for round_ in range(cfg.repeats):
        engine_first = round_ % 2 == 0 or order is None
        for which in ("engine", "hand") if engine_first else ("hand", "engine"):
            if which == "engine":
                run = run_engine(cfg, data)
                if order is None:
                    order = run.batches
                elif run.batches != order:
                    raise AssertionError("the engine drew different batches in different rounds")
                engine_runs.append(run)
            else:
                assert order is not None
                run = run_hand(cfg, data, order)
                if run.batches != order:
                    raise AssertionError("the hand loop did not see the engine's batches")
                hand_runs.append(run)
            gc.collect()
        checks.append(compare_weights(engine_runs[-1].weights, hand_runs[-1].weights, cfg.device))
        engine_runs[-1].weights, hand_runs[-1].weights = {}, {}
    engine, hand = _summary(engine_runs), _summary(hand_runs)
    ratio = engine["median_s_per_step"] / hand["median_s_per_step"]
    equivalence = {
        "bit_identical": all(c["bit_identical"] for c in checks),
        "allclose": all(c["allclose"] for c in checks),
        "max_abs_diff": max(c["max_abs_diff"] for c in checks),
        "rtol": checks[0]["rtol"],
        "atol": checks[0]["atol"],
    }
    return {
        "benchmark": "engine_overhead",
        "machine": machine_info(cfg.device),
        "config": {
            **asdict(cfg),
            "teacher_lr": TEACHER_LR,
            "student_lr": STUDENT_LR,
            "momentum": MOMENTUM,
            "weight_decay": WEIGHT_DECAY,
            "eta_min": ETA_MIN,
            "alpha": ALPHA,
        },
        "engine": engine,
        "hand": hand,
        "ratio": ratio,
        "paired_ratios": [e.s_per_step / h.s_per_step for e, h in zip(engine_runs, hand_runs)],
        "target": TARGET_RATIO,
        "passed": ratio <= TARGET_RATIO,
        # Round-to-round spread larger than the target's margin means noise, not the engine, decides PASS/MISS.
        "noisy": cfg.repeats > 1 and max(engine["spread"], hand["spread"]) > TARGET_RATIO - 1,
        "equivalence": equivalence,
    }


def format_table(res: dict[str, Any]) -> str:
    m, c, e, h = res["machine"], res["config"], res["engine"], res["hand"]
    eq = res["equivalence"]
    gpu = f", {m['gpu']}" if "gpu" in m else ""
    rows = [
        ("machine", f"{m['platform']}, {m['cpu_count']} CPUs, torch {m['torch']}, {m['threads']} threads{gpu}"),
        (
            "config",
            f"MRKD ResNet-{c['depth']} x2, {c['size']}px, batch {c['batch']}, {c['steps']} steps "
            f"(+{c['warmup']} warm-up), {c['repeats']} rounds, clip {c['clip']:g}, {c['device']}",
        ),
        (
            "engine s/step",
            f"{e['median_s_per_step']:.4f}  (min {e['min_s_per_step']:.4f}, max {e['max_s_per_step']:.4f})",
        ),
        (
            "hand s/step",
            f"{h['median_s_per_step']:.4f}  (min {h['min_s_per_step']:.4f}, max {h['max_s_per_step']:.4f})",
        ),
        (
            "ratio engine/hand",
            f"{res['ratio']:.4f}  (per round: {', '.join(f'{r:.4f}' for r in res['paired_ratios'])})",
        ),
        ("target", f"<= {res['target']:.2f}"),
        ("result", "PASS" if res["passed"] else "MISS"),
        (
            "noise",
            "n/a (one round)"
            if c["repeats"] < 2
            else f"round-to-round spread engine {e['spread']:.1%}, hand {h['spread']:.1%}"
            + (
                f" (> the {res['target'] - 1:.0%} margin: the verdict is within noise; rerun on an idle machine or "
                "with more --repeats)"
                if res["noisy"]
                else ""
            ),
        ),
        (
            "same weights",
            f"{'bit-identical' if eq['bit_identical'] else 'allclose'} "
            f"(max |diff| {eq['max_abs_diff']:.3g}, rtol {eq['rtol']:g}, atol {eq['atol']:g})",
        ),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def parse_args(argv: Sequence[str] | None) -> tuple[BenchConfig, Path | None]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--depth", type=int, help=f"ResNet depth (default {DEFAULTS['depth']})")
    p.add_argument("--size", type=int, help=f"image side in pixels (default {DEFAULTS['size']})")
    p.add_argument("--batch", type=int, help=f"batch size (default {DEFAULTS['batch']})")
    p.add_argument("--steps", type=int, help=f"measured steps per run (default {DEFAULTS['steps']})")
    p.add_argument("--repeats", type=int, help=f"interleaved rounds of both loops (default {DEFAULTS['repeats']})")
    p.add_argument(
        "--warmup", type=int, help=f"unmeasured steps before the measured ones (default {DEFAULTS['warmup']})"
    )
    p.add_argument("--clip", type=float, default=CLIP, help=f"gradient-norm clip per model, 0: off (default {CLIP})")
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--json", type=Path, help="write the results dict to this file")
    p.add_argument("--quick", action="store_true", help="smoke size: depth 10, 32px, batch 4, 5 steps, 1 round")
    add_force_argument(p)
    args = p.parse_args(argv)
    guard_outputs(p, args)
    values = size_options(p, args, DEFAULTS, QUICK)
    if args.clip < 0:
        p.error(f"--clip must be >= 0, got {args.clip}")
    return BenchConfig(**values, clip=args.clip, threads=args.threads, device=args.device, quick=args.quick), args.json


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the table (and write ``--json``); returns the results dict.

    Global torch state touched here (threads, deterministic mode, cuDNN flags, RNG states) is restored on return.
    """
    cfg, json_path = parse_args(argv)
    saved_threads = torch.get_num_threads()
    saved_det = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    saved_cudnn = (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic)
    try:
        with preserved_rng():
            torch.set_num_threads(cfg.threads)
            res = benchmark(cfg)
    finally:
        torch.set_num_threads(saved_threads)
        torch.use_deterministic_algorithms(saved_det[0], warn_only=saved_det[1])
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = saved_cudnn
    print(format_table(res))
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        write_text(json_path, json.dumps(res, indent=2) + "\n")
    eq = res["equivalence"]
    if not eq["allclose"]:
        raise AssertionError(
            f"engine and hand loop ended with different weights (max |diff| {eq['max_abs_diff']:.3g}, "
            f"rtol {eq['rtol']:g}, atol {eq['atol']:g}): they do not do the same math"
        )
    return res


if __name__ == "__main__":
    main(sys.argv[1:])
