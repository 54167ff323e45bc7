"""GPU training path: mixed precision, channels_last and ``torch.compile``, checked and timed through the engine.

What is measured
----------------
For each recipe (default: the MRKD quickstart, and the SR quickstart when it exists) the unmodified
:class:`~distill.engine.Trainer` trains ``warmup + steps`` iterations on CUDA under each variant:
``fp32``, ``bf16``, ``fp16`` (GradScaler), ``fp32 + channels_last``, ``bf16 + channels_last`` and
``bf16 + channels_last + compile``. Every variant starts from the same weights and sees the same batches.
Printed per variant: seconds per step over the measured window (the device is synchronised at both ends), the
speed-up over fp32, and the check — the loss terms of the last step are finite and the final weights differ from
fp32's by a relative L2 distance (reported; mixed precision is expected to differ a little, channels_last alone
hardly at all).

**End to end** (after the variants, and alone with ``--device cpu``): each recipe trains again through
``build_run`` and ``Trainer.fit`` with the real loader — its reader in each ``--formats`` (default ``store``,
prepared first, and ``files`` as the recipes read today), the recipe's own ``num_workers`` (or
``--workers``), pinned memory and non-blocking copies on CUDA — and prints seconds per step between step ends
(loader wait, copy and compute), the compute inside the step, the share spent waiting, and whether the batches
arrived pinned (:mod:`benchmarks._end_to_end`).

On a machine without CUDA the default run prints why it skipped and returns ``{"skipped": reason}``: CI never has a
GPU. ``--device cpu`` runs the end-to-end part on the CPU through the same code (the tests use it at tiny sizes,
with ``--set`` overrides). Run ``python -m benchmarks.gpu_path`` (20 steps after 5 warm-up) or ``--quick``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from benchmarks._common import add_force_argument, guard_outputs, machine_info
from benchmarks.distiller_overhead import ROOT, prepare, run_engine
from distill.registry import load_plugins
from distill.run.atomic import write_text

RECIPES = ["quickstart.yaml", "quickstart_sr.yaml"]
VARIANTS: dict[str, dict[str, Any]] = {
    "fp32": {"precision": "fp32"},
    "bf16": {"precision": "bf16"},
    "fp16": {"precision": "fp16"},
    "fp32 + channels_last": {"precision": "fp32", "channels_last": True},
    "bf16 + channels_last": {"precision": "bf16", "channels_last": True},
    "bf16 + channels_last + compile": {"precision": "bf16", "channels_last": True, "compile": True},
}


def run_variant(path: Path, data_dir: Path, steps: int, warmup: int, variant: dict[str, Any]) -> dict[str, Any]:
    """``Trainer.fit`` under one variant on CUDA: seconds per measured step and the final weights."""
    sets = [f"train.{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in variant.items()]
    recipe, data = prepare(path, data_dir, steps, warmup, ["train.device=cuda", "train.deterministic=false", *sets])
    t_end, _, weights = run_engine(recipe, data)
    start = data.fetches[warmup * recipe.train.batch_size][1]
    return {
        "s_per_step": (t_end - start) / steps,
        "finite": all(torch.isfinite(w).all().item() for w in weights.values() if w.is_floating_point()),
        "weights": {k: v.float() for k, v in weights.items() if v.is_floating_point()},
    }


def relative_distance(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    num = sum(float((a[k] - b[k]).pow(2).sum()) for k in a if a[k].is_floating_point())
    den = sum(float(a[k].pow(2).sum()) for k in a if a[k].is_floating_point())
    return (num / den) ** 0.5 if den else 0.0


def end_to_end_rows(
    paths: list[Path], args: argparse.Namespace, device: str
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Each recipe end to end through the real loader in each format: rows and printed lines."""
    from benchmarks._end_to_end import run_end_to_end

    rows: dict[str, dict[str, Any]] = {}
    lines = []
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    for path in paths:
        lines.append(
            f"{path.name} end to end ({device}): {'format':8} {'workers':>7} {'s/step':>8} {'compute':>8} "
            f"{'waiting':>8}  pinned"
        )
        for fmt in formats:
            try:
                r = run_end_to_end(path, args.data, device, args.steps, args.warmup, fmt, args.workers, args.set)
            except Exception as err:  # a format this dataset has no store for is reported, not hidden
                r = {"error": f"{type(err).__name__}: {err}".splitlines()[0]}
                lines.append(f"  {fmt:8} failed: {r['error']}")
            else:
                pinned = "yes" if r["batches_pinned"] else ("no (cpu)" if device == "cpu" else "NO")
                lines.append(
                    f"  {fmt:8} {r['num_workers']:>7} {r['e2e_s_per_step']:8.4f} {r['compute_s_per_step']:8.4f} "
                    f"{r['data_share']:8.0%}  {pinned}"
                )
            rows.setdefault(path.name, {})[fmt] = r
    return rows, lines


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipes", nargs="*", help="recipe files (default: the quickstarts that exist)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--data", type=Path, default=Path("data/gpu_path"), help="folder for the synthetic sets")
    parser.add_argument("--quick", action="store_true", help="3 steps after 2 warm-up")
    parser.add_argument("--json", help="write the results here too")
    parser.add_argument(
        "--device", default="cuda", choices=["cuda", "cpu"], help="cpu: only the end-to-end part, on the CPU"
    )
    parser.add_argument(
        "--formats", default="store,files", help="end-to-end reader formats, comma-separated (store is prepared first)"
    )
    parser.add_argument("--workers", type=int, help="end-to-end loader worker processes (default: the recipe's)")
    parser.add_argument("--set", action="append", default=[], help="recipe override for the end-to-end runs")
    add_force_argument(parser)
    args = parser.parse_args(argv)
    guard_outputs(parser, args)
    if args.quick:
        args.steps, args.warmup = 3, 2
    bad = [f for f in args.formats.split(",") if f.strip() not in ("store", "files", "torchvision")]
    if bad or not args.formats.strip():
        parser.error(f"--formats: comma-separated store, files or torchvision, got {args.formats!r}")
    if args.device == "cpu":
        load_plugins()
        defaults = [ROOT / "recipes" / n for n in RECIPES if (ROOT / "recipes" / n).exists()]
        rows, lines = end_to_end_rows([Path(p) for p in args.recipes] or defaults, args, "cpu")
        out = {"machine": machine_info(), "end_to_end": rows}
        print("\n".join(lines))
        if args.json:
            write_text(Path(args.json), json.dumps(out, indent=2))
        return out
    if not torch.cuda.is_available():
        reason = "no CUDA device on this machine: the GPU path (AMP, channels_last, compile) was not run"
        print(f"gpu_path: skipped — {reason}")
        return {"skipped": reason}
    load_plugins()
    defaults = [ROOT / "recipes" / n for n in RECIPES if (ROOT / "recipes" / n).exists()]
    out: dict[str, Any] = {"machine": machine_info("cuda"), "recipes": {}}
    lines = [f"GPU path on {out['machine']['gpu']}, torch {out['machine']['torch']}, {args.steps} steps"]
    for path in [Path(p) for p in args.recipes] or defaults:
        rows: dict[str, Any] = {}
        for name, variant in VARIANTS.items():
            try:
                rows[name] = run_variant(path, args.data, args.steps, args.warmup, variant)
            except Exception as err:  # a variant the GPU/toolchain cannot run is reported, not hidden
                rows[name] = {"error": f"{type(err).__name__}: {err}".splitlines()[0]}
        base = rows["fp32"]
        lines.append(f"{path.name}: {'variant':32} {'s/step':>8} {'speed-up':>8}  finite  rel. weight distance to fp32")
        for name, r in rows.items():
            if "error" in r:
                lines.append(f"  {name:32} failed: {r['error']}")
                continue
            ok = "error" not in base
            r["speedup"] = base["s_per_step"] / r["s_per_step"] if ok else None
            r["distance_to_fp32"] = relative_distance(base["weights"], r["weights"]) if ok else None
            speedup = f"{r['speedup']:8.2f}" if ok else f"{'n/a':>8}"
            distance = f"{r['distance_to_fp32']:.2e}" if ok else "n/a (fp32 failed)"
            finite = "yes" if r["finite"] else "NO"
            lines.append(f"  {name:32} {r['s_per_step']:8.4f} {speedup}  {finite:6}  {distance}")
        out["recipes"][path.name] = {n: {k: v for k, v in r.items() if k != "weights"} for n, r in rows.items()}
    e2e_rows, e2e_lines = end_to_end_rows([Path(p) for p in args.recipes] or defaults, args, "cuda")
    out["end_to_end"] = e2e_rows
    lines += e2e_lines
    print("\n".join(lines))
    if args.json:
        write_text(Path(args.json), json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
