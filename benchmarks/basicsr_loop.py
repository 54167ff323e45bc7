"""Engine overhead on super-resolution: ``Trainer.fit`` against BasicSR's own training loop, same model and batches.

What is measured
----------------
Both loops train the same EDSR (default: ``recipes/sr_teacher_quickstart.yaml``'s c32 b8 ×2, the smallest SR model
the project ships, where per-step Python overhead weighs most) from the same initial weights, with L1 and Adam
(betas 0.9/0.99) at a constant learning rate, on the same batches in the same order:

* **engine** — :class:`~distill.engine.Trainer` with the ``sr_supervised`` distiller, unmodified (``Trainer.fit``
  with no evaluation set and no output folder, progress bar off), for ``warmup + steps`` iterations;
* **basicsr** — ``basicsr.models.sr_model.SRModel`` driven the way ``basicsr/train.py`` drives it, per iteration:
  ``update_learning_rate(current_iter, warmup_iter=-1)``, ``feed_data({'lq', 'gt'})``,
  ``optimize_parameters(current_iter)`` (zero_grad, forward, ``L1Loss``, backward, ``Adam.step`` and its
  ``reduce_loss_dict`` log values), with ``MultiStepLR`` at a milestone past the run (constant lr, as the engine's).
  It reads the exact batches the engine drew, through a ``DataLoader`` over the same dataset.

The training set is the recipe's synthetic DIV2K layout (written under ``--data``), read once before timing so the
in-memory image caches are warm for both loops; ``num_workers=0``. The timing window of a run starts when the
first item of batch ``warmup`` is fetched and ends when the loop returns (``distiller_overhead``'s window); rounds
alternate which loop goes first. Printed: seconds per step of each loop (median over rounds), **engine / basicsr**
with the min–max of the per-round ratios (target ≤ 1.01 for this small model), the A/A control (the BasicSR loop
against itself: what noise alone reads) and the largest weight difference at the end (Adam's float32 arithmetic
in both; the same math gives equal or near-equal weights). Last, the engine's own Python time per step from a
cProfile'd run (self time of the functions in ``distill/engine/``): an upper bound on what the engine adds, free of
the timing noise that the per-round ratios carry.

Run ``python -m benchmarks.basicsr_loop`` (defaults: batch 4, 100 steps after 3 warm-up, 6 rounds, 1 thread) or
``--quick``;
:func:`main` returns the results dict.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from benchmarks._common import add_result_arguments, engine_share, machine_info, machine_label, publish, saved_result
from benchmarks.distiller_overhead import ROOT, Stamped, _window, prepare, run_engine, run_engine_same_batches
from distill._compat import import_basicsr
from distill.build import build_distiller
from distill.engine import seed_everything
from distill.recipe.config import Recipe
from distill.registry import load_plugins

TARGET = 1.01
RECIPE = ROOT / "recipes" / "sr_teacher_quickstart.yaml"
#: the engine side's overrides: a constant learning rate (BasicSR's MultiStepLR with its milestone past the run)
OVERRIDES = ("optim.student.schedule.name=constant", "optim.student.weight_decay=0.0")


def basicsr_model(recipe: Recipe, initial: dict[str, torch.Tensor]) -> Any:
    """BasicSR's ``SRModel`` for the recipe's EDSR, Adam and L1, with ``initial`` as its weights."""
    import logging

    import_basicsr()
    from basicsr.models.sr_model import SRModel

    logging.getLogger("basicsr").setLevel(logging.WARNING)  # SRModel logs the network; not part of a step
    args, optim = recipe.models["student"].args, recipe.optim["student"]
    network = dict(type="EDSR", num_in_ch=3, num_out_ch=3, img_range=255.0, rgb_mean=[0.4488, 0.4371, 0.4040])
    network |= {k: args[k] for k in ("num_feat", "num_block", "upscale", "res_scale")}
    opt = {
        "num_gpu": 0,
        "is_train": True,
        "dist": False,
        "network_g": network,
        "path": {"pretrain_network_g": None, "strict_load_g": True, "resume_state": None},
        "train": {
            "ema_decay": 0,
            "optim_g": {"type": "Adam", "lr": optim.lr, "weight_decay": 0.0, "betas": list(optim.betas)},
            "scheduler": {"type": "MultiStepLR", "milestones": [10**9], "gamma": 0.5},
            "pixel_opt": {"type": "L1Loss", "loss_weight": 1.0, "reduction": "mean"},
        },
    }
    model = SRModel(opt)
    model.net_g.load_state_dict(initial)
    return model


def run_basicsr(recipe: Recipe, data: Stamped, batches: list[list[int]]) -> tuple[float, dict[str, torch.Tensor]]:
    """``basicsr/train.py``'s inner loop over ``batches``; returns the end time and the final weights."""
    seed_everything(recipe.train.seed, recipe.train.deterministic)
    initial = build_distiller(recipe).models["student"].state_dict()  # the engine's initial weights
    model = basicsr_model(recipe, initial)
    loader = DataLoader(data, batch_sampler=batches, num_workers=0, generator=torch.Generator())
    data.fetches = []
    for current_iter, batch in enumerate(loader, start=1):
        model.update_learning_rate(current_iter, warmup_iter=-1)
        model.feed_data({"lq": batch["input"], "gt": batch["target"]})
        model.optimize_parameters(current_iter)
    return time.perf_counter(), {k: v.detach().clone() for k, v in model.net_g.state_dict().items()}


def bench(recipe_path: Path, data_dir: Path, steps: int, warmup: int, rounds: int, batch: int) -> dict[str, Any]:
    recipe, data = prepare(recipe_path, data_dir, steps, warmup, (*OVERRIDES, f"train.batch_size={batch}"))
    batch = recipe.train.batch_size
    times: dict[str, list[float]] = {"engine": [], "basicsr": [], "control": []}
    batches: list[list[int]] = []
    max_diff = 0.0
    for r in range(rounds):
        order = ["engine", "basicsr", "control"]
        order = order[r % 3 :] + order[: r % 3] if r else order  # round 0: the engine draws the batches
        weights: dict[str, dict[str, torch.Tensor]] = {}
        for loop in order:
            if loop == "engine":
                t_end, batches, w = run_engine_same_batches(recipe, data, batches, f"{recipe_path.name}, round {r}")
                weights["engine"] = {k.removeprefix("models.student."): v for k, v in w.items()}
            else:
                t_end, weights[loop] = run_basicsr(recipe, data, batches)
            times[loop].append(_window(data, batch, warmup, steps, t_end))
        a, b = weights["engine"], weights["basicsr"]
        max_diff = max(max_diff, max(float((a[k] - b[k]).abs().max()) for k in b))
    share = engine_share(lambda: run_engine(recipe, data), recipe.train.iterations)
    ratios = [e / b for e, b in zip(times["engine"], times["basicsr"])]
    control = [c / b for c, b in zip(times["control"], times["basicsr"])]
    return {
        "recipe": recipe_path.name,
        "model": {k: recipe.models["student"].args[k] for k in ("num_feat", "num_block", "upscale")},
        "batch": batch,
        "train_input": list(data.inner[0]["input"].shape),
        "engine_s_per_step": statistics.median(times["engine"]),
        "basicsr_s_per_step": statistics.median(times["basicsr"]),
        "ratio": statistics.median(times["engine"]) / statistics.median(times["basicsr"]),
        "paired_ratios": ratios,
        "control_ratio": statistics.median(times["control"]) / statistics.median(times["basicsr"]),
        "control_paired": control,
        "max_weight_diff": max_diff,
        **share,
        "times": times,
    }


def report(res: dict[str, Any]) -> str:
    m, r = res["machine"], res["result"]
    model = r["model"]
    return "\n".join([
        f"Engine vs BasicSR's training loop: EDSR c{model['num_feat']} b{model['num_block']} x{model['upscale']}, "
        f"batch {r['batch']} of {'x'.join(map(str, r['train_input']))} LR patches, L1 + Adam, constant lr; "
        f"{res['steps']} steps after {res['warmup']} warm-up, median of {res['rounds']} interleaved rounds; "
        f"{machine_label(m)}, {m['threads']} threads, torch {m['torch']} (synthetic DIV2K layout)",
        f"engine   {r['engine_s_per_step'] * 1e3:8.2f} ms/step",
        f"basicsr  {r['basicsr_s_per_step'] * 1e3:8.2f} ms/step",
        f"engine / basicsr = {r['ratio']:.3f} (per round {min(r['paired_ratios']):.3f}–{max(r['paired_ratios']):.3f};"
        f" target ≤ {TARGET})",
        f"A/A control, basicsr / basicsr = {r['control_ratio']:.3f} (per round {min(r['control_paired']):.3f}–"
        f"{max(r['control_paired']):.3f}): what noise alone reads",
        f"engine bookkeeping (cProfile self time of distill/engine/, an upper bound): {r['engine_ms_per_step']:.3f} "
        f"ms/step = {r['engine_ms_per_step'] / r['profiled_ms_per_step']:.2%} of the profiled step",
        f"largest weight difference at the end: {r['max_weight_diff']:.2e}",
    ])  # fmt: skip


def markdown(res: dict[str, Any]) -> str:
    """README's block: the report's lines as a list, with the command that wrote them."""
    return "\n".join(
        ["`python -m benchmarks.basicsr_loop` (written by its `--readme`):", ""]
        + [f"- {line}" for line in report(res).splitlines()]
    )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", type=Path, default=RECIPE, help="an sr_supervised EDSR recipe")
    parser.add_argument("--batch", type=int, default=4, help="batch size (4: ~30 ms steps, where overhead shows)")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=6, help="interleaved rounds; the order rotates")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data", type=Path, help="folder for the synthetic set (default: a temporary folder)")
    parser.add_argument("--quick", action="store_true", help="4 steps after 1 warm-up, 3 rounds")
    add_result_arguments(parser)
    args = parser.parse_args(argv)
    saved = saved_result(parser, args)
    if saved is not None:
        publish(saved, args, "basicsr-loop", report, markdown)
        return saved
    if args.quick:
        args.steps, args.warmup, args.rounds = 4, 1, 3
    if min(args.steps, args.rounds, args.threads, args.batch) < 1 or args.warmup < 0:
        parser.error("--batch, --steps, --rounds and --threads must be at least 1, --warmup at least 0")
    load_plugins()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        result = bench(args.recipe, args.data or Path(tmp), args.steps, args.warmup, args.rounds, args.batch)
    res = {"machine": machine_info(), "steps": args.steps, "warmup": args.warmup, "rounds": args.rounds}
    res["result"] = result
    publish(res, args, "basicsr-loop", report, markdown)
    return res


if __name__ == "__main__":
    main()
