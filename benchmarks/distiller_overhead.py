"""Engine overhead for every distiller, and what MRKD's second model costs, from the recipes users run.

What is measured
----------------
For each recipe (default: MRKD and its single-model baseline with ResNet-10s, ``mrkd_resnet10_cpu*.yaml``, and —
when they exist — the SR and CQD quickstarts), two loops train the same distiller from the same initial weights on
the same batches:

* **engine** — :class:`~distill.engine.Trainer` unmodified (``Trainer.fit`` with no evaluation set and no output
  folder, progress bar off), for ``warmup + steps`` iterations;
* **hand** — a plain PyTorch loop over the exact batches the engine drew: the same optimizers (one per trainable
  group), the group's learning rate set each step from the same closed-form schedule, ``distiller.training_step``
  for the loss terms, ``zero_grad`` / ``backward`` / per-group ``clip_grad_norm_`` / ``step``.

Both read the recipe's own dataset (synthetic stand-in written under ``--data``) with ``num_workers=0``; models are
built without their ``pretrained`` files (cost does not depend on the weights) and CQD's teacher runs online, so
both loops do the same per-step work (the cached path has its own benchmark, ``cqd_cache_speed``). Every item is
read once before timing, so datasets with in-memory caches are equally warm for both loops. The window
of a run starts when the first item of batch ``warmup`` is fetched and ends when the loop returns; rounds alternate
which loop goes first. Printed per recipe: seconds per step of each loop (median over rounds), **engine / hand**
(target ≤ 1.03) with the min–max of the per-round ratios, and whether both ended with the same weights
(bit-identical on CPU with deterministic kernels; recipes with stochastic distillers consume the global RNG
identically in both loops). Last, the engine's own time per step from a cProfile'd ``Trainer.fit``
(``_common.engine_share``: self time of the functions in ``distill/engine/``), an upper bound on what the engine adds
that, unlike the ratio, does not move with the machine's load.

The MRKD recipe trains two networks where its baseline trains one: **MRKD step / single-model step** is the ratio of
the hand-loop step times of ``mrkd_resnet10_cpu.yaml`` and ``mrkd_resnet10_cpu_baseline.yaml`` (same ResNet-10,
same data; the limit is 2.0 — two models' forward and backward), with the min–max over rounds of round r's ratio
(the two recipes run one after the other, so that spread includes the machine's drift between them).

Run ``python -m benchmarks.distiller_overhead`` (defaults: 20 steps after 3 warm-up, 4 rounds, 1 thread) or
``--quick``; :func:`main` returns the results dict.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from benchmarks._common import add_result_arguments, engine_share, machine_info, machine_label, publish, saved_result
from distill.build import build_dataset, build_distiller, ensure_data
from distill.data.base import DatasetWrapper
from distill.engine import Trainer, seed_everything
from distill.engine.optim import build_optimizer
from distill.engine.schedules import Schedule
from distill.recipe.check import load_recipe
from distill.recipe.config import Recipe
from distill.registry import load_plugins

ROOT = Path(__file__).resolve().parent.parent
RECIPES = ["mrkd_resnet10_cpu.yaml", "mrkd_resnet10_cpu_baseline.yaml", "quickstart_sr.yaml", "quickstart_cqd.yaml"]
TARGET = 1.03
MRKD_LIMIT = 2.0


class Stamped(DatasetWrapper):
    """A dataset that records which item was fetched and when (the timing window and the batches to replay)."""

    def __init__(self, inner: Dataset) -> None:
        super().__init__(inner)
        self.fetches: list[tuple[int, float]] = []

    def __getitem__(self, index: int) -> Any:
        self.fetches.append((index, time.perf_counter()))
        return self.inner[index]

    def __getattr__(self, name: str) -> Any:  # other attributes of the wrapped dataset
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)


def _weights(distiller: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in distiller.state_dict().items()}


def _window(data: Stamped, batch: int, warmup: int, steps: int, t_end: float) -> float:
    if len(data.fetches) != (warmup + steps) * batch:
        raise RuntimeError(f"expected {(warmup + steps) * batch} fetches, saw {len(data.fetches)}")
    return (t_end - data.fetches[warmup * batch][1]) / steps


def run_engine(recipe: Recipe, data: Stamped) -> tuple[float, list[list[int]], dict[str, torch.Tensor]]:
    cfg = recipe.train
    seed_everything(cfg.seed, cfg.deterministic)
    distiller = build_distiller(recipe)
    trainer = Trainer(distiller, data, None, optim=recipe.optim, config=cfg, out_dir=None, tensorboard=False)
    data.fetches = []
    trainer.fit()
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    t_end = time.perf_counter()
    fetched = [i for i, _ in data.fetches]
    batches = [fetched[k : k + cfg.batch_size] for k in range(0, len(fetched), cfg.batch_size)]
    return t_end, batches, _weights(distiller)


def run_engine_same_batches(
    recipe: Recipe, data: Stamped, batches: list[list[int]], label: str
) -> tuple[float, list[list[int]], dict[str, torch.Tensor]]:
    """:func:`run_engine`, checked to draw ``batches`` again (any batches when ``batches`` is empty: the first
    round records them for the other loops to replay)."""
    t_end, drawn, weights = run_engine(recipe, data)
    if batches and drawn != batches:
        raise RuntimeError(f"{label}: the engine drew different batches than in the first round")
    return t_end, drawn, weights


def run_hand(recipe: Recipe, data: Stamped, batches: list[list[int]]) -> tuple[float, dict[str, torch.Tensor]]:
    cfg = recipe.train
    seed_everything(cfg.seed, cfg.deterministic)
    distiller = build_distiller(recipe)
    groups = distiller.param_groups()
    optims = {g: build_optimizer(params, recipe.optim[g]) for g, params in groups.items()}
    total = len(batches)
    schedules = {g: Schedule(recipe.optim[g].lr, recipe.optim[g].schedule, total, total) for g in groups}
    if hasattr(data, "set_epoch"):
        data.set_epoch(0)
    if hasattr(data, "set_seed"):
        data.set_seed(cfg.seed)
    # a private generator, like the engine's: creating the iterator must not draw from the global RNG
    loader = DataLoader(data, batch_sampler=batches, num_workers=0, generator=torch.Generator())
    distiller.train()
    torch.manual_seed(cfg.seed)  # like Trainer.fit: the training steps' random draws start from the run seed
    data.fetches = []
    for step, batch in enumerate(loader):
        for g, opt in optims.items():
            for pg in opt.param_groups:
                pg["lr"] = schedules[g].lr(step)
        loss = sum(distiller.training_step(batch).values())
        for opt in optims.values():
            opt.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[union-attr]
        for g, opt in optims.items():
            if recipe.optim[g].clip_grad_norm:
                torch.nn.utils.clip_grad_norm_(groups[g], recipe.optim[g].clip_grad_norm)
            opt.step()
    return time.perf_counter(), _weights(distiller)


def prepare(path: Path, data_dir: Path, steps: int, warmup: int, extra: Sequence[str] = ()) -> tuple[Recipe, Stamped]:
    """The recipe set up for ``warmup + steps`` timed iterations (no teacher file, online teacher, no evaluation
    until the end) and its training set, written under ``data_dir`` if synthetic and read once to warm caches.

    ``extra`` are further ``--set`` overrides; they come last, so they win (e.g. ``train.device=cuda``).
    """
    overrides = [
        f"train.iterations={warmup + steps}", "train.epochs=null", "train.num_workers=0", "train.progress=false",
        "train.deterministic=true", "train.device=cpu", "train.precision=fp32", "train.teacher_cache=online", *extra,
    ]  # fmt: skip
    recipe, _ = load_recipe(path, overrides)
    for spec in recipe.models.values():  # cost does not depend on the weights: no teacher run needed
        if "pretrained" in spec.args:
            spec.args["pretrained"] = None
    if recipe.data.synthetic is not None:  # recipes on the same synthetic set share one copy
        args = json.dumps(recipe.data.synthetic.args, sort_keys=True).encode()
        recipe.data.root = str(data_dir / f"{recipe.data.synthetic.name}_{hashlib.md5(args).hexdigest()[:8]}")
        recipe.data.synthetic.root = recipe.data.root  # written there on purpose
    recipe.train.eval_every = warmup + steps
    ensure_data(recipe.data)
    data = Stamped(build_dataset(recipe.data.train, recipe.data))
    for i in range(len(data.inner)):  # fill in-memory image caches first, so no timed loop pays for decoding
        data.inner[i]
    return recipe, data


def bench_recipe(
    path: Path, data_dir: Path, steps: int, warmup: int, rounds: int, extra: Sequence[str] = ()
) -> dict[str, Any]:
    """Both loops on one recipe; ``extra`` are further ``--set`` overrides (e.g. a smaller synthetic set)."""
    recipe, data = prepare(path, data_dir, steps, warmup, extra)
    batch = recipe.train.batch_size
    engine_s, hand_s, same = [], [], []
    batches: list[list[int]] = []
    for r in range(rounds):
        order = ("engine", "hand") if r % 2 == 0 else ("hand", "engine")  # round 0: the engine draws the batches
        results: dict[str, Any] = {}
        for loop in order:
            if loop == "engine":
                t_end, batches, w = run_engine_same_batches(recipe, data, batches, f"{path.name}, round {r}")
                results["engine"] = (_window(data, batch, warmup, steps, t_end), w)
            else:
                t_end, w = run_hand(recipe, data, batches)
                results["hand"] = (_window(data, batch, warmup, steps, t_end), w)
        engine_s.append(results["engine"][0])
        hand_s.append(results["hand"][0])
        a, b = results["engine"][1], results["hand"][1]
        same.append(all(torch.equal(a[k], b[k]) for k in a))
    share = engine_share(lambda: run_engine(recipe, data), recipe.train.iterations)
    return {
        **share,
        "recipe": path.name,
        "distiller": recipe.distiller.name,
        "batch": batch,
        "engine_s_per_step": statistics.median(engine_s),
        "hand_s_per_step": statistics.median(hand_s),
        "engine_s_rounds": engine_s,
        "hand_s_rounds": hand_s,
        "ratio": statistics.median(engine_s) / statistics.median(hand_s),
        "paired_ratios": [e / h for e, h in zip(engine_s, hand_s)],
        "same_weights": all(same),
    }


def report(res: dict[str, Any]) -> str:
    cfg, m = res["config"], res["config"]["machine"]
    lines = [
        f"Engine vs hand-written loop, {cfg['steps']} steps after {cfg['warmup']} warm-up, median of {cfg['rounds']} "
        f"rounds | {machine_label(m)}, {m['threads']} threads, torch {m['torch']}",
        f"{'recipe':28} {'distiller':10} {'engine s/step':>13} {'hand s/step':>11} {'ratio':>6} "
        f"{'rounds min–max':>15} {'target':>6} same weights  engine's own time (cProfile)",
    ]
    for r in res["recipes"]:
        spread = f"{min(r['paired_ratios']):.3f}–{max(r['paired_ratios']):.3f}"
        lines.append(
            f"{r['recipe']:28} {r['distiller']:10} {r['engine_s_per_step']:13.4f} {r['hand_s_per_step']:11.4f} "
            f"{r['ratio']:6.3f} {spread:>15} {TARGET:6.2f} {'yes' if r['same_weights'] else 'NO':12}  "
            + (
                f"{r['engine_ms_per_step']:.3f} ms/step = {r['engine_ms_per_step'] / r['profiled_ms_per_step']:.2%}"
                if "engine_ms_per_step" in r
                else "-"
            )
        )
    if "mrkd_vs_single" in res:
        lo, hi = res["mrkd_vs_single_spread"]
        lines.append(
            f"MRKD step / single-model step (hand loops, same ResNet-10 and data): {res['mrkd_vs_single']:.3f} "
            f"(rounds {lo:.3f}–{hi:.3f}; limit {MRKD_LIMIT})"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipes", nargs="*", help="recipe files (default: the quickstarts that exist)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=4, help="even: each loop goes first equally often")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data", type=Path, help="folder for the synthetic sets (default: a temporary folder)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override for every recipe")
    parser.add_argument("--quick", action="store_true", help="3 steps after 1 warm-up, 1 round")
    add_result_arguments(parser)
    args = parser.parse_args(argv)
    saved = saved_result(parser, args)
    if saved is not None:
        publish(saved, args, "distiller-overhead", report)
        return saved
    if args.quick:
        args.steps, args.warmup, args.rounds = 3, 1, 1
    load_plugins()
    torch.set_num_threads(args.threads)
    paths = [Path(p) for p in args.recipes] or [
        ROOT / "recipes" / n for n in RECIPES if (ROOT / "recipes" / n).exists()
    ]
    cfg = {"steps": args.steps, "warmup": args.warmup, "rounds": args.rounds, "machine": machine_info()}
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = args.data or Path(tmp)
        rows = [bench_recipe(p, data_dir, args.steps, args.warmup, args.rounds, args.set) for p in paths]
    res: dict[str, Any] = {"config": cfg, "recipes": rows}
    by_name = {r["recipe"]: r for r in rows}
    if {"mrkd_resnet10_cpu.yaml", "mrkd_resnet10_cpu_baseline.yaml"} <= by_name.keys():
        two, one = by_name["mrkd_resnet10_cpu.yaml"], by_name["mrkd_resnet10_cpu_baseline.yaml"]
        res["mrkd_vs_single"] = two["hand_s_per_step"] / one["hand_s_per_step"]
        per_round = [a / b for a, b in zip(two["hand_s_rounds"], one["hand_s_rounds"])]  # round r of each recipe
        res["mrkd_vs_single_spread"] = [min(per_round), max(per_round)]
    publish(res, args, "distiller-overhead", report)
    return res


if __name__ == "__main__":
    main()
