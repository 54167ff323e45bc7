"""Cost of a MiPKD training step against a logits-KD step on the same teacher and student, measured in one run.

What is measured
----------------
One *step* is what the engine does per iteration minus its bookkeeping: ``distiller.training_step(batch)``, the sum
of the loss terms, ``backward``, and an Adam step over every trainable group (student, and for MiPKD the helpers).
Both distillers wrap the *same* teacher and student weights (built once after seeding; each distiller gets deep
copies), see the same batches (random LR/HR tensors, fixed seed) and run in interleaved rounds (logits KD first in
even rounds, MiPKD first in odd ones). MiPKD uses its recipe defaults (K stages, feature + block mixers, separate
encoders, 3D random mask).

* **time** — per distiller, the median over rounds of the mean seconds per step over ``--steps`` steps after
  ``--warmup`` untimed ones (CUDA synchronised at both ends); the ratio MiPKD / logits KD of those medians and the
  paired per-round ratios.
* **peak memory** — of one step (forward, backward, optimizer update): on CUDA ``torch.cuda.max_memory_allocated``
  after a reset, on CPU the peak of the bytes of tensor storages the step allocates, tracked per storage by
  :mod:`distill.deploy.cost`'s dispatch-mode tracker, plus the resident parameters, optimizer state and batch. Allocator
  caching and the Python heap are not counted.

Defaults: EDSR c64 b16 teacher → c16 b8 student (the paper's compounded ratios: 4x narrower, 2x shallower), x4,
LR 32x32, batch 8, K = 4, 10 steps after 2 warm-up, 3 rounds, 1 thread.

* **per term** — MiPKD again with its terms switched on one at a time (task + kd through the staged views; + feat;
  + ae; + block = the full method), every variant in the same interleaved rounds: a term's cost is its row minus
  the row above, in seconds per step and peak MiB, with each row's step / logits-KD ratio (median [min–max]).
* **before → after** — the full method with the mixers' mask mix left to plain autograd (as before the mask-only
  autograd function) beside the current one, in the same rounds. ``--no-breakdown`` times only the two steps.

``--quick`` is a seconds-long smoke run.
Run ``python -m benchmarks.mipkd_step_cost``; :func:`main` is importable and returns the results dict.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from benchmarks._common import add_force_argument, guard_outputs, machine_info, size_options
from distill.deploy.cost import LiveTensorBytes
from distill.distillers import MiPKD, SRLogitsKD
from distill.distillers import mipkd as mipkd_module
from distill.distillers.base import Distiller
from distill.models.sr import edsr
from distill.run.atomic import write_text
from distill.run.checkpoint import preserved_rng

DEFAULTS: dict[str, Any] = {
    "teacher_feat": 64,
    "teacher_blocks": 16,
    "student_feat": 16,
    "student_blocks": 8,
    "scale": 4,
    "size": 32,
    "batch": 8,
    "stages": 4,
    "steps": 10,
    "warmup": 2,
    "repeats": 3,
}
QUICK: dict[str, Any] = {
    "teacher_feat": 8,
    "teacher_blocks": 4,
    "student_feat": 4,
    "student_blocks": 2,
    "scale": 2,
    "size": 8,
    "batch": 2,
    "stages": 2,
    "steps": 2,
    "warmup": 1,
    "repeats": 1,
}
METHODS = ("logits_kd", "mipkd")
#: Per-term breakdown: MiPKD with its terms switched on one at a time (each row adds one term to the row above), and
#: the full method as it was before the mask-only mix (``mipkd_before``: the mix left to plain autograd arithmetic).
VARIANTS: dict[str, dict[str, Any]] = {
    "task+kd": {"feature_mixer": False, "block_mixer": False},
    "+feat": {"block_mixer": False, "ae_weight": 0.0},
    "+ae": {"block_mixer": False},
    "mipkd": {},
    "mipkd_before": {},
}
TERM_ROWS = (("task+kd", "logits_kd"), ("+feat", "task+kd"), ("+ae", "+feat"), ("mipkd", "+ae"))
TERM_NAMES = {"task+kd": "staged views (task + kd)", "+feat": "feat", "+ae": "ae", "mipkd": "block"}


@dataclass
class StepConfig:
    """The resolved settings of one run."""

    teacher_feat: int
    teacher_blocks: int
    student_feat: int
    student_blocks: int
    scale: int
    size: int
    batch: int
    stages: int
    steps: int
    warmup: int
    repeats: int
    threads: int
    device: str
    quick: bool
    breakdown: bool = True


def build_distillers(cfg: StepConfig, device: torch.device) -> dict[str, Distiller]:
    """Logits KD and MiPKD over deep copies of one seeded teacher/student pair."""
    torch.manual_seed(0)
    teacher = edsr(num_feat=cfg.teacher_feat, num_block=cfg.teacher_blocks, upscale=cfg.scale)
    student = edsr(num_feat=cfg.student_feat, num_block=cfg.student_blocks, upscale=cfg.scale)

    def pair() -> dict[str, nn.Module]:
        return {"teacher": copy.deepcopy(teacher), "student": copy.deepcopy(student)}

    out: dict[str, Distiller] = {"logits_kd": SRLogitsKD(pair()).to(device)}
    for name, kwargs in VARIANTS.items():
        if cfg.breakdown or name == "mipkd":
            out[name] = MiPKD(pair(), num_stages=cfg.stages, **kwargs).to(device)
    return out


@contextlib.contextmanager
def _as_before(method: str) -> Iterator[None]:
    """For ``mipkd_before``: the mixers' ``M·z_t + (1 − M)·z_s`` through plain autograd, as before ``_MaskMix``."""
    if method != "mipkd_before":
        yield
        return
    fast = mipkd_module._MaskMix
    mipkd_module._MaskMix = _PlainMix  # type: ignore[misc]
    try:
        yield
    finally:
        mipkd_module._MaskMix = fast  # type: ignore[misc]


class _PlainMix:
    @staticmethod
    def apply(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return mask * a + (1 - mask) * b


def make_batches(cfg: StepConfig, device: torch.device) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(1234)
    hr = cfg.size * cfg.scale
    return [
        {
            "input": torch.rand(cfg.batch, 3, cfg.size, cfg.size, generator=g).to(device),
            "target": torch.rand(cfg.batch, 3, hr, hr, generator=g).to(device),
        }
        for _ in range(cfg.warmup + cfg.steps)
    ]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _step(distiller: Distiller, optimizer: torch.optim.Optimizer, batch: dict[str, torch.Tensor]) -> None:
    terms = distiller.training_step(batch)
    optimizer.zero_grad(set_to_none=True)
    sum(terms.values()).backward()  # type: ignore[union-attr]
    optimizer.step()


def _optimizer(distiller: Distiller) -> torch.optim.Optimizer:
    params = [p for group in distiller.param_groups().values() for p in group]
    return torch.optim.Adam(params, lr=1e-4, betas=(0.9, 0.99))


def time_steps(distiller: Distiller, batches: list[dict[str, torch.Tensor]], cfg: StepConfig) -> float:
    """Mean seconds per step over the measured steps (after the warm-up ones)."""
    device = batches[0]["input"].device
    optimizer = _optimizer(distiller)
    distiller.train()
    for batch in batches[: cfg.warmup]:
        _step(distiller, optimizer, batch)
    _sync(device)
    start = time.perf_counter()
    for batch in batches[cfg.warmup :]:
        _step(distiller, optimizer, batch)
    _sync(device)
    return (time.perf_counter() - start) / cfg.steps


def peak_step_memory(distiller: Distiller, batch: dict[str, torch.Tensor]) -> int:
    """Peak bytes of one training step (see the module docstring for what is counted on each device)."""
    device = batch["input"].device
    optimizer = _optimizer(distiller)
    distiller.train()
    _step(distiller, optimizer, batch)  # optimizer state exists from here on, as in any step after the first
    if device.type == "cuda":
        _sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        _step(distiller, optimizer, batch)
        _sync(device)
        return int(torch.cuda.max_memory_allocated(device))
    state = [t for s in optimizer.state.values() for t in s.values() if isinstance(t, torch.Tensor)]
    resident = [*distiller.parameters(), *distiller.buffers(), *state, *batch.values()]
    tracker = LiveTensorBytes(resident)
    with tracker:
        _step(distiller, optimizer, batch)
    seen = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in resident}
    return sum(seen.values()) + tracker.peak


def benchmark(cfg: StepConfig) -> dict[str, Any]:
    device = torch.device(cfg.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: CUDA is not available")
    distillers = build_distillers(cfg, device)
    methods = tuple(distillers)
    batches = make_batches(cfg, device)
    times: dict[str, list[float]] = {m: [] for m in methods}
    memory: dict[str, int] = {}
    for round_ in range(cfg.repeats):
        for method in methods if round_ % 2 == 0 else tuple(reversed(methods)):
            with _as_before(method):
                times[method].append(time_steps(copy.deepcopy(distillers[method]), batches, cfg))
    for method in methods:
        with _as_before(method):
            memory[method] = peak_step_memory(copy.deepcopy(distillers[method]), batches[0])
    medians = {m: statistics.median(v) for m, v in times.items()}
    vs_kd = {m: [a / b for a, b in zip(times[m], times["logits_kd"])] for m in methods}
    params = {
        m: {group: sum(p.numel() for p in ps) for group, ps in d.param_groups().items()} for m, d in distillers.items()
    }
    return {
        "benchmark": "mipkd_step_cost",
        "machine": machine_info(cfg.device),
        "config": asdict(cfg),
        "s_per_step": {m: {"median": medians[m], "per_round": times[m]} for m in methods},
        "time_ratio": medians["mipkd"] / medians["logits_kd"],
        "paired_ratios": vs_kd["mipkd"],
        "time_ratio_vs_logits_kd": {m: statistics.median(r) for m, r in vs_kd.items()},
        "time_ratio_spread": {m: [min(r), max(r)] for m, r in vs_kd.items()},
        "peak_memory_bytes": memory,
        "memory_ratio": memory["mipkd"] / memory["logits_kd"],
        "trainable_params": params,
    }


def _times(entry: dict[str, Any]) -> str:
    return f"{entry['median']:.4f} (rounds: " + ", ".join(f"{t:.4f}" for t in entry["per_round"]) + ")"


def format_table(res: dict[str, Any]) -> str:
    c, m = res["config"], res["machine"]
    mib = {k: v / 2**20 for k, v in res["peak_memory_bytes"].items()}
    rows = [
        (
            "machine",
            f"{m['platform']}, {m['cpu_count']} CPUs, torch {m['torch']}, {m['threads']} threads, {m['device']}",
        ),
        (
            "config",
            f"EDSR c{c['teacher_feat']} b{c['teacher_blocks']} -> c{c['student_feat']} b{c['student_blocks']}, "
            f"x{c['scale']}, LR {c['size']}px, batch {c['batch']}, K={c['stages']}, {c['steps']} steps "
            f"(+{c['warmup']} warm-up), {c['repeats']} rounds",
        ),
        *((f"{name} s/step", _times(res["s_per_step"][name])) for name in METHODS),
        ("time ratio", f"MiPKD / logits KD = {res['time_ratio']:.2f}"),
        ("peak memory", f"logits KD {mib['logits_kd']:.1f} MiB, MiPKD {mib['mipkd']:.1f} MiB"),
        ("memory ratio", f"MiPKD / logits KD = {res['memory_ratio']:.2f}"),
        ("trained params", ", ".join(f"{k}: {res['trainable_params'][k]}" for k in METHODS)),
    ]
    if "+ae" in res["s_per_step"]:
        rows += breakdown_rows(res)
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def breakdown_rows(res: dict[str, Any]) -> list[tuple[str, str]]:
    """Per-term time and memory: each term's row minus the row without it, all from the same rounds."""
    med, ratio, spread = res["s_per_step"], res["time_ratio_vs_logits_kd"], res["time_ratio_spread"]
    mem = res["peak_memory_bytes"]
    rows = [("per term", "added s/step and peak MiB; step / logits-KD step as median [min–max] over rounds")]
    for name, below in TERM_ROWS:
        lo, hi = spread[name]
        rows.append(
            (
                f"  {TERM_NAMES[name]}",
                f"{med[name]['median'] - med[below]['median']:+.4f} s, {(mem[name] - mem[below]) / 2**20:+.1f} MiB  "
                f"(step {ratio[name]:.2f} [{lo:.2f}–{hi:.2f}]× logits KD, "
                f"{mem[name] / mem['logits_kd']:.2f}× memory)",
            )
        )
    before, after = "mipkd_before", "mipkd"
    rows.append(
        (
            "before → after",
            f"time {ratio[before]:.2f} → {ratio[after]:.2f}× logits KD (after / before = "
            f"{med[after]['median'] / med[before]['median']:.3f}); memory {mem[before] / mem['logits_kd']:.2f} → "
            f"{mem[after] / mem['logits_kd']:.2f}× ({(mem[after] - mem[before]) / 2**20:+.1f} MiB)",
        )
    )
    return rows


def parse_args(argv: Sequence[str] | None) -> tuple[StepConfig, Path | None]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    for key, value in DEFAULTS.items():
        p.add_argument(f"--{key.replace('_', '-')}", type=int, dest=key, help=f"default {value}")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--json", type=Path, help="write the results dict to this file")
    p.add_argument("--quick", action="store_true", help="a seconds-long smoke run with tiny models")
    p.add_argument("--no-breakdown", action="store_true", help="time logits KD and full MiPKD only")
    add_force_argument(p)
    args = p.parse_args(argv)
    guard_outputs(p, args)
    values = size_options(p, args, DEFAULTS, QUICK)
    cfg = StepConfig(**values, threads=args.threads, device=args.device, quick=args.quick)
    cfg.breakdown = not args.no_breakdown
    return cfg, args.json


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the measurement, print the table (and write ``--json``); returns the results dict."""
    cfg, json_path = parse_args(argv)
    saved_threads = torch.get_num_threads()
    try:
        with preserved_rng():
            torch.set_num_threads(cfg.threads)
            res = benchmark(cfg)
    finally:
        torch.set_num_threads(saved_threads)
    print(format_table(res))
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        write_text(json_path, json.dumps(res, indent=2) + "\n")
    return res


if __name__ == "__main__":
    main(sys.argv[1:])
