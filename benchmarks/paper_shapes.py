"""Every paper-scale recipe at its real input sizes: 2 training steps and the evaluation path, timed and projected.

    python -m benchmarks.paper_shapes [--recipes GLOB,...] [--device cpu|cuda] [--threads N] [--out DIR]

For each recipe (default: all of ``recipes/mrkd_*``, ``mipkd_*`` and ``cqd_cub_*``, teachers included) a child
process loads the recipe file unchanged except for what a proof at paper shapes needs, and runs it through the real
engine (:func:`distill.build.build_run` and ``Trainer.fit``):

* **data** — a synthetic stand-in written at the real image sizes: TID2013 and KADID-10k 512×384, LIVE Challenge
  500×500, CUB-200-2011 about 500×375, DIV2K-size HR (2040×1356) cut into the recipe's own patches, and test sets
  of Set5 (512×512), Set14 (720×576), B100 (481×321) and Urban100 (1024×768) sizes. Just enough images for one
  training batch of the recipe's own size and a few test items (2 per SR test set);
* **weights** — random: every ``*pretrained`` file is dropped (cost does not depend on the weights);
* **length** — ``train.iterations = 2``, evaluation after step 2 on every test split; ``num_workers = 0`` on CPU,
  the recipe's own on CUDA; the training set's reader ``--format`` (default ``files`` on CPU, ``store`` on CUDA:
  the prepared uint8 store of ``distill data prepare``, prepared on the stand-in first); on CUDA the engine's
  loader pins memory and copies without blocking; a cacheable teacher runs online (its forward is inside the step
  time, an upper bound for cached recipes).

``s/step`` is step 2 inside the step (device synchronised); ``e2e`` beside it is the wall time from step 1's end to
step 2's end: waiting for the loader (its workers and format), the copy to the device and the compute, what a
training step costs end to end (``benchmarks/_end_to_end.py``).

Printed per recipe: seconds per training step (step 2; step 1 includes warm-up), seconds of evaluation per test
item, peak memory (CPU: the child's peak RSS; CUDA: ``max_memory_allocated``), and two **projections** of the whole
recipe on the real dataset sizes (:data:`REAL_ITEMS`): the measured rate × the recipe's steps and evaluations
(``proj. here``), and a GPU time from the FLOPs counted on step 2 and on the evaluation
(``torch.utils.flop_counter``: convolutions/matmuls only) at ``--gpu-tflops`` × ``--utilisation`` — neither is a
measured wall time. A recipe that fails prints its one-line reason. ``main`` returns the rows.

A recipe whose batch does not fit this machine's memory (the child is killed with SIGKILL, the kernel's
out-of-memory kill) is measured again at half the batch, down to 1: the row says so, and its projections scale the
measured step time and FLOPs back to the recipe's batch (linear in the batch: an assumption, stated in the row).

``--out DIR`` keeps ``DIR/results.json`` up to date after every recipe; run again into the same folder and the
recipes it already holds are kept (``--rerun`` measures them again), so a long run can be stopped and continued. A
row marked ``"disturbed": "why"`` by hand (its run was paused, or shared the machine with a timing job) is measured
again on the next run and printed without its times until then. ``--from FILE`` prints a saved results file and
``--readme`` writes the markdown table into README.md's ``paper-shapes`` block.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._common import (  # noqa: E402
    add_force_argument,
    machine_info,
    machine_label,
    saved_result,
    write_readme_block,
)
from benchmarks._stand_ins import (  # noqa: E402
    CUB_SPLITS,
    PAPER_GLOBS,
    REAL_ITEMS,
    RECIPES,
    SR_SETS,
    dataset_family,
    paper_recipes,
    split_fraction,
    write_stand_in,
)
from distill.run.atomic import write_text  # noqa: E402

LOADER_RESULTS = ROOT / "benchmarks" / "results" / "loader_throughput_cpu.json"


# ----------------------------------------------------------------------------------------------- projections
def real_items(name: str, args: dict[str, Any]) -> int:
    """Items of the split ``args`` selects in the real dataset ``name``."""
    fam = dataset_family(name)
    if fam in REAL_ITEMS and fam != "div2k":
        return round(REAL_ITEMS[fam] * split_fraction(args))
    if fam == "div2k":
        return REAL_ITEMS["div2k"] * int(args.get("repeat", 1))
    if fam == "cub200":
        n = CUB_SPLITS.get(args.get("split", "train"), CUB_SPLITS["train"])
        if args.get("split", "train") == "train":
            n = round(n * (1 - float(args.get("val_fraction", 0))))
        return n * (2 if args.get("mode") == "union" else 1)
    if fam == "sr_benchmark":
        return SR_SETS.get(Path(str(args.get("root", ""))).name, (0, None))[0]
    raise ValueError(f"no real size known for dataset '{name}'")


def projection(recipe: Any, measured: dict[str, Any]) -> dict[str, float]:
    """Steps and evaluations of the unchanged recipe on the real data, at the measured rates and at GPU FLOP rate.

    A step measured at a smaller batch than the recipe's (memory fallback) is scaled up linearly to its batch."""
    cfg = recipe.train
    per_batch = cfg.batch_size / measured["batch_size"]
    n_train = real_items(recipe.data.train.name, recipe.data.train.args)
    per_epoch = n_train // cfg.batch_size if cfg.drop_last else math.ceil(n_train / cfg.batch_size)
    steps = cfg.iterations or cfg.epochs * per_epoch
    length = cfg.iterations or cfg.epochs
    n_evals = math.ceil(length / cfg.eval_every) if cfg.eval_every else 1
    eval_items = {s: real_items(spec.name, spec.args) for s, spec in recipe.data.eval.items()}
    eval_cpu = sum(eval_items[s] * measured["eval_s_per_item"][s] for s in eval_items)
    eval_flops = sum(eval_items[s] * measured["eval_flops_per_item"][s] for s in eval_items)
    return {
        "steps": steps,
        "evaluations": n_evals,
        "eval_items": sum(eval_items.values()),
        "here_h": (steps * measured["step_s"] * per_batch + n_evals * eval_cpu) / 3600,
        "step_flops": measured["step_flops"] * per_batch,
        "total_flops": steps * measured["step_flops"] * per_batch + n_evals * eval_flops,
    }


# ----------------------------------------------------------------------------------------------- one recipe
def _drop_weights(recipe: Any) -> None:
    for spec in recipe.models.values():
        for key, value in list(spec.args.items()):
            if "pretrained" in key and isinstance(value, (str, bool)):
                spec.args[key] = False if isinstance(value, bool) else None


def _sr_scale(recipe: Any) -> int:
    return int(recipe.data.train.args.get("scale", 4))


def run_one(path: Path, cache: Path, device: str, batch: int | None = None, fmt: str = "files") -> dict[str, Any]:
    """Build ``path`` on full-size stand-ins and run 2 steps + evaluation through the engine; the measurements.
    ``batch`` replaces the recipe's batch size (the memory fallback); ``fmt`` is the training set's ``format``
    (``store``: the stand-in is prepared first). On CUDA the recipe's own ``num_workers`` load the data."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from distill.build import build_run
    from distill.recipe.check import load_recipe

    recipe, _ = load_recipe(path)
    original, _ = load_recipe(path)
    _drop_weights(recipe)
    cfg = recipe.train
    cfg.batch_size = batch or cfg.batch_size
    scale = _sr_scale(recipe)
    recipe.data.root = write_stand_in(recipe.data.train.name, recipe.data.train.args, cfg.batch_size, cache, scale)
    recipe.data.synthetic = None
    if fmt != "files" and recipe.data.train.name != "dbcnn_distortions":
        from benchmarks.loader_throughput import _prepare

        if fmt == "store":
            _prepare(recipe.data.train.name, {**recipe.data.train.args, "root": recipe.data.root})
        recipe.data.train.args["format"] = fmt
    for spec in recipe.data.eval.values():
        if "root" in spec.args or dataset_family(spec.name) == "sr_benchmark":
            spec.args["root"] = write_stand_in(spec.name, spec.args, 2, cache, scale)
    cfg.iterations, cfg.epochs, cfg.eval_every, cfg.log_every = 2, None, 2, 1
    workers = cfg.num_workers if device == "cuda" else 0  # the real loader where a GPU waits for it
    cfg.num_workers, cfg.progress, cfg.checkpoint_every, cfg.device = workers, False, None, device
    cfg.teacher_cache = "online"
    recipe.output.tensorboard = False
    with tempfile.TemporaryDirectory(prefix="paper_shapes_") as out:
        run = build_run(recipe, out=out)
        trainer = run.trainer
        sync = torch.cuda.synchronize if trainer.device.type == "cuda" else (lambda: None)
        if trainer.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        step_times: list[float] = []
        step_ends: list[float] = []  # end to end: from one step's end to the next (loader wait, copy, compute)
        pinned: list[bool] = []
        step_flops: list[int] = []
        inner_step, inner_eval = trainer._train_step, trainer.evaluator.evaluate
        split_of = {id(ds): name for name, ds in trainer.eval_sets.items()}
        eval_s: dict[str, float] = {}
        eval_flops: dict[str, float] = {}

        def timed_step(batch: dict[str, Any]) -> Any:
            counter = FlopCounterMode(display=False) if step_times else None
            pinned.append(all(t.is_pinned() for t in batch.values() if isinstance(t, torch.Tensor)))
            sync()
            start = time.perf_counter()
            if counter is None:
                values = inner_step(batch)
            else:
                with counter:
                    values = inner_step(batch)
            sync()
            step_times.append(time.perf_counter() - start)
            step_ends.append(time.perf_counter())
            if counter is not None:
                step_flops.append(counter.get_total_flops())
            return values

        def timed_eval(distiller: Any, loader: Any, *args: Any, **kwargs: Any) -> Any:
            split = split_of.get(id(loader.dataset), "?")
            counter = FlopCounterMode(display=False)
            sync()
            start = time.perf_counter()
            with counter:
                res = inner_eval(distiller, loader, *args, **kwargs)
            sync()
            n = len(loader.dataset)
            eval_s[split] = (time.perf_counter() - start) / n
            eval_flops[split] = counter.get_total_flops() / n
            return res

        trainer._train_step = timed_step  # type: ignore[method-assign]
        trainer.evaluator.evaluate = timed_eval  # type: ignore[method-assign]
        trainer.fit()
    peak_cuda = torch.cuda.max_memory_allocated() if trainer.device.type == "cuda" else None
    measured = {
        "step_s": step_times[-1],
        "e2e_step_s": step_ends[-1] - step_ends[-2],
        "loader": {"num_workers": workers, "pin_memory": device == "cuda", "batch_pinned": pinned[-1]},
        "first_step_s": step_times[0],
        "step_flops": step_flops[-1] if step_flops else 0,
        "eval_s_per_item": eval_s,
        "eval_flops_per_item": eval_flops,
        "eval_items_run": {s: len(ds) for s, ds in trainer.eval_sets.items()},
        "batch_size": cfg.batch_size,
        "format": fmt,
        "train_input": _shape_of(run.train_set),
    }
    measured["projection"] = projection(original, measured)
    measured["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    measured["peak_cuda_bytes"] = peak_cuda
    return measured


def _shape_of(dataset: Any) -> list[int]:
    item = dataset[0]
    return list(item["input"].shape) if hasattr(item.get("input"), "shape") else []


# ------------------------------------------------------------------------------------------------ reporting
def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())


def _load_rows(results: Path, info: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Rows of an earlier run into the same ``--out`` — only when measured on the same device, threads and torch."""
    if not results.is_file():
        return {}
    saved = json.loads(results.read_text())
    same = {k: saved["machine"].get(k) for k in ("device", "threads", "torch")} == {
        k: info[k] for k in ("device", "threads", "torch")
    }
    if not same:
        print(f"{results}: measured on another device/threads/torch; measuring again", flush=True)
        return {}
    return {row["recipe"]: row for row in saved["rows"]}


def _save_rows(results: Path, info: dict[str, Any], rows: dict[str, dict[str, Any]]) -> None:
    write_text(results, json.dumps({"machine": info, "rows": list(rows.values())}, indent=2))


def _duration(seconds: float) -> str:
    """``seconds`` as s, min, h or days, three significant figures."""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds:.3g} s"


def _gib(n: float | None) -> str:
    return "-" if n is None else f"{n / 2**30:.1f}"


def loader_bound(row: dict[str, Any], loader: dict[str, dict], rate: float) -> dict[str, Any] | None:
    """The recipe's GPU seconds per step: FLOP bound, loader bounds per format (``loader_throughput``'s saved
    rates at its worker count) and which wins (``None`` when the loader benchmark has no rate for this recipe)."""
    entry = loader.get(row["recipe"])
    step_flops = row.get("projection", {}).get("step_flops")
    if entry is None or step_flops is None:
        return None
    flop = step_flops / rate
    files, store = entry["loader_s"].get("files"), entry["loader_s"].get("store")
    return {
        "flop_s": flop,
        "files_s": files,
        "store_s": store,
        "step_files_s": max(flop, files or 0.0),
        "step_store_s": max(flop, store if store is not None else files or 0.0),
        "winner_files": "loader" if (files or 0) > flop else "FLOPs",
        "winner_store": "loader" if (store if store is not None else files or 0) > flop else "FLOPs",
    }


def _bound_cell(b: dict[str, Any] | None, steps: int) -> list[str]:
    """Cells: FLOP / loader s per step, the winner (files → store) and the projected training time with each."""
    if b is None:
        return ["-", "-", "-"]
    ms = lambda s: "-" if s is None else f"{s * 1e3:.3g}"  # noqa: E731
    return [
        f"{ms(b['flop_s'])} / {ms(b['files_s'])} / {ms(b['store_s'])}",
        f"{b['winner_files']} → {b['winner_store']}",
        f"{_duration(steps * b['step_files_s'])} → {_duration(steps * b['step_store_s'])}",
    ]


def report(rows: list[dict[str, Any]], gpu_tflops: float, utilisation: float, info: dict[str, Any],
           loader: dict[str, dict] | None = None, loader_workers: int = 8) -> str:  # fmt: skip
    from distill.report.tables import table

    rate = gpu_tflops * 1e12 * utilisation
    loader = loader or {}
    body = []
    for r in rows:
        if "error" in r:
            body.append([r["recipe"], "FAILED: " + r["error"], *[""] * 10])
            continue
        if "disturbed" in r:
            body.append([r["recipe"], "completed; timing disturbed: " + r["disturbed"], *[""] * 10])
            continue
        p = r["projection"]
        body.append([
            r["recipe"],
            _batch_cell(r, "x"),
            f"{r['step_s']:.2f}" + (f" (e2e {r['e2e_step_s']:.2f})" if "e2e_step_s" in r else ""),
            " ".join(f"{s} {v:.2f}" for s, v in r["eval_s_per_item"].items()),
            _gib(r["peak_rss_bytes"]),
            _gib(r["peak_cuda_bytes"]),
            f"{p['steps']} / {p['evaluations']}x{p['eval_items']}",
            _duration(p["here_h"] * 3600),
            _duration(p["total_flops"] / rate),
            *_bound_cell(loader_bound(r, loader, rate), p["steps"]),
        ])  # fmt: skip
    gpu = f"proj. GPU @{utilisation:.0%} of {gpu_tflops:g} TFLOP/s"
    headers = ["recipe", "batch x input", "s/step", "eval s/item", "peak RSS GiB", "peak CUDA GiB",
               "steps / evals x items", "proj. here", gpu, f"GPU ms/step FLOP / loader@{loader_workers} files / store",
               "bound files → store", "train time files → store"]  # fmt: skip
    caption = (
        f"Paper recipes at paper shapes (synthetic full-size stand-ins, random weights, 2 steps + evaluation through "
        f"the engine; num_workers {'0' if info['device'] == 'cpu' else 'as the recipe'}; teacher online). "
        f"Measured on {info['device']} ({machine_label(info)}, "
        f"{info['threads']} threads, torch {info['torch']}). 'proj. here' = measured "
        "step-2 time x the recipe's steps + measured s/item x real test items x evaluations: a PROJECTION, not a "
        "measured wall time. 'proj. GPU' = counted FLOPs (conv/matmul only, torch.utils.flop_counter) / the stated "
        "sustained rate: a PROJECTION and a lower bound (data loading, element-wise and memory-bound ops are not in "
        "it; small-patch SR training is dominated by them)." + LOADER_NOTE.format(w=loader_workers)
    )
    return table(headers, body, caption)


LOADER_NOTE = (
    " 'GPU ms/step' = the FLOP bound beside the loader bound at {w} worker processes (recipe batch / ({w} x one "
    "worker's items/s), measured by benchmarks/loader_throughput.py on full-size stand-ins; 'files' as the recipes "
    "read today, 'store' with format: store); a step takes at least the larger, so 'bound' names the one that wins and "
    "'train time' = training steps x max(FLOP, loader) per step (evaluation not included): PROJECTIONS."
)


def _e2e(row: dict[str, Any]) -> str:
    """`` (e2e S)`` where the row has the end-to-end step time (rows saved before it was measured have none)."""
    return f" (e2e {row['e2e_step_s']:.1f})" if "e2e_step_s" in row else ""


def _batch_cell(row: dict[str, Any], times: str) -> str:
    """``batch × input``; a memory-fallback row says that the recipe's batch did not fit here."""
    cell = times.join(map(str, [row["batch_size"], *row["train_input"]]))
    if "memory_fallback" in row:
        cell += f" (recipe batch {row['recipe_batch_size']} ran out of memory here; projections scaled to it)"
    return cell


def coverage(rows: list[dict[str, Any]]) -> str:
    """One line: how many paper recipes these rows cover, how they ended, and which are missing."""
    names = {r["recipe"] for r in rows}
    every = paper_recipes()
    missing = [n for n in every if n not in names]
    failed = sum("error" in r for r in rows)
    disturbed = sum("disturbed" in r for r in rows)
    line = (
        f"Coverage: {len(names & set(every))} of the {len(every)} paper recipes ({', '.join(PAPER_GLOBS)}) are in "
        f"these results: {len(rows) - failed} completed 2 steps and the evaluation ({disturbed} of them with "
        f"disturbed timings), {failed} failed."
    )
    return line + (f" Not measured here: {', '.join(missing)}." if missing else " None is missing.")


def markdown(rows: list[dict[str, Any]], gpu_tflops: float, utilisation: float, info: dict[str, Any],
             loader: dict[str, dict] | None = None, loader_workers: int = 8) -> str:  # fmt: skip
    """The README's block: one markdown row per recipe (failures with their reason), caption with the machine."""
    rate = gpu_tflops * 1e12 * utilisation
    loader = loader or {}
    head = ("| recipe | batch × input | s/step | eval s/item | peak RSS GiB | steps / evals × test items | proj. here "
            f"| proj. GPU (FLOPs @{utilisation:.0%} of {gpu_tflops:g} TFLOP/s) | GPU ms/step: FLOP / loader@"
            f"{loader_workers} files / store | bound: files → store | train time: files → store "
            "| measured |")  # fmt: skip
    lines = [
        f"`python -m benchmarks.paper_shapes --threads {info['threads']}` on {info['device']} "
        f"({machine_label(info)}, {info['threads']} threads, torch {info['torch']}); "
        f"{len(rows)} recipes, {sum('error' in r for r in rows)} failed. Written by `python -m benchmarks.paper_shapes "
        "--from benchmarks/results/paper_shapes_cpu.json --readme`." + LOADER_NOTE.format(w=loader_workers),
        "",
        head,
        "|---" * head.count(" | ") + "|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['recipe']} | FAILED: {r['error']} |" + " |" * 10 + f" {r.get('finished', '')} |")
            continue
        if "disturbed" in r:  # completed, but its times are not the recipe's: shown without them
            lines.append(
                f"| {r['recipe']} | {_batch_cell(r, '×')} | completed; timing "
                f"disturbed ({r['disturbed']}) | | {_gib(r['peak_rss_bytes'])} |" + " |" * 6 + f" {r['finished']} |"
            )
            continue
        p = r["projection"]
        evals = ", ".join(f"{s} {v:.2f}" for s, v in r["eval_s_per_item"].items())
        lines.append(
            f"| {r['recipe']} | {_batch_cell(r, '×')} | {r['step_s']:.1f}{_e2e(r)} | "
            f"{evals} | {_gib(r['peak_rss_bytes'])} | {p['steps']} / {p['evaluations']} × {p['eval_items']} | "
            f"{_duration(p['here_h'] * 3600)} | {_duration(p['total_flops'] / rate)} | "
            + " | ".join(_bound_cell(loader_bound(r, loader, rate), p["steps"]))
            + f" | {r.get('finished', '')} |"
        )
    return "\n".join([*lines, "", coverage(rows)])


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--recipes",
        default=",".join(PAPER_GLOBS),
        help="comma-separated names or globs under recipes/ (.yaml optional), run in this order",
    )
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, help="folder for the stand-ins and results.json (default: temporary)")
    parser.add_argument("--gpu-tflops", type=float, default=495.0, help="GPU peak for the projection (H100 TF32)")
    parser.add_argument("--utilisation", type=float, default=0.3, help="share of the peak the projection assumes")
    parser.add_argument(
        "--loader",
        type=Path,
        default=LOADER_RESULTS,
        help="loader_throughput results for the loader bound (default: %(default)s)",
    )
    parser.add_argument("--loader-workers", type=int, default=8, help="worker processes of the loader bound")
    parser.add_argument(
        "--rerun", action="store_true", help="measure again the recipes --out's results.json already holds"
    )
    parser.add_argument(
        "--from", dest="saved", type=Path, help="print the table of this results.json instead of measuring"
    )
    parser.add_argument(
        "--readme", action="store_true", help="also write the table into README.md's paper-shapes block"
    )
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)  # child mode: one recipe, JSON on stdout
    parser.add_argument("--batch", type=int, help=argparse.SUPPRESS)  # child mode: the memory fallback's batch
    parser.add_argument(
        "--format",
        choices=["files", "store", "torchvision"],
        help="the training set's reader format (store: prepared on the stand-in first); "
        "default files on cpu, store on cuda",
    )
    add_force_argument(parser)
    args = parser.parse_args(argv)
    args.format = args.format or ("store" if args.device == "cuda" else "files")  # the real format where a GPU waits
    if args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    saved = saved_result(parser, args)
    if saved is not None:
        return _print(saved["rows"], args, saved["machine"])
    out = args.out or Path(tempfile.mkdtemp(prefix="paper_shapes_"))
    cache = out / "stand_ins"
    cache.mkdir(parents=True, exist_ok=True)
    if args.one is not None:
        import torch

        torch.set_num_threads(args.threads)
        try:
            row: dict[str, Any] = run_one(args.one, cache, args.device, args.batch, args.format)
        except Exception as err:  # reported as the recipe's one-line reason
            traceback.print_exc(file=sys.stderr)
            row = {"error": f"{type(err).__name__}: {' '.join(str(err).split())}"[:300]}
        print("PAPER_SHAPES_ROW " + json.dumps(row))
        return [row]
    globs = [g.strip() if g.strip().endswith(".yaml") else g.strip() + ".yaml" for g in args.recipes.split(",")]
    unmatched = [g for g in globs if not any(RECIPES.glob(g))]
    if unmatched:
        parser.error(f"--recipes: no recipe under {RECIPES} matches {', '.join(unmatched)}")
    paths = list(dict.fromkeys(p for g in globs for p in sorted(RECIPES.glob(g))))
    info = machine_info(args.device)
    info["threads"] = args.threads
    results = out / "results.json"
    done = _load_rows(results, info) if not args.rerun else {}
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "PYTHONPATH": str(ROOT)}
    for path in paths:
        if path.stem in done and not {"error", "disturbed"} & set(done[path.stem]):
            print(f"{path.stem}: kept from {results}", flush=True)
            continue
        started = time.perf_counter()
        row = measure_with_fallback(path, out, args, env)
        row = {"recipe": path.stem, "wall_s": time.perf_counter() - started, "finished": _now(), **row}
        done[path.stem] = row
        _save_rows(results, info, done)  # after every recipe: a killed run keeps what it measured
        print(json.dumps(row), flush=True)
    return _print([done[p.stem] for p in paths], args, info)


def _memory_gib() -> float:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30


def run_child(path: Path, out: Path, args: argparse.Namespace, env: dict[str, str], batch: int | None) -> dict:
    """One recipe in a child process: its measurements, or ``{"error": ...}`` (``"killed": True`` on SIGKILL)."""
    cmd = [sys.executable, "-m", "benchmarks.paper_shapes", "--one", str(path), "--out", str(out),
           "--device", args.device, "--threads", str(args.threads), "--format", args.format]  # fmt: skip
    cmd += ["--batch", str(batch)] if batch else []
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("PAPER_SHAPES_ROW ")), None)
    if line is not None:
        return json.loads(line.removeprefix("PAPER_SHAPES_ROW "))
    if proc.returncode == -9:  # SIGKILL: on a machine to itself, the kernel's out-of-memory kill
        return {"error": f"killed (SIGKILL: out of memory on this {_memory_gib():.1f} GiB machine)", "killed": True}
    tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    return {"error": f"child exited {proc.returncode}: {tail}"[:300]}


def measure_with_fallback(path: Path, out: Path, args: argparse.Namespace, env: dict[str, str]) -> dict:
    """:func:`run_child` at the recipe's batch, then at half the batch after each out-of-memory kill (down to 1)."""
    from distill.recipe.check import load_recipe

    asked = load_recipe(path)[0].train.batch_size
    batch, row = asked, run_child(path, out, args, env, None)
    while row.pop("killed", False) and batch > 1:
        batch //= 2
        print(f"{path.stem}: batch {batch * 2} ran out of memory; measuring at batch {batch}", flush=True)
        row = run_child(path, out, args, env, batch)
    row.pop("killed", None)
    if batch != asked and "error" not in row:
        row["recipe_batch_size"] = asked
        row["memory_fallback"] = (
            f"batch {asked} ran out of this {_memory_gib():.1f} GiB machine's memory (SIGKILL); measured at batch "
            f"{batch}, step time and FLOPs scaled x{asked / batch:g} (linear in the batch) for the projections"
        )
    return row


def _print(rows: list[dict[str, Any]], args: argparse.Namespace, info: dict[str, Any]) -> list[dict[str, Any]]:
    loader = _loader_rates(args)
    print(report(rows, args.gpu_tflops, args.utilisation, info, loader, args.loader_workers))
    print(coverage(rows))
    if args.readme:
        write_readme_block(
            "paper-shapes", markdown(rows, args.gpu_tflops, args.utilisation, info, loader, args.loader_workers)
        )
    return rows


def _loader_rates(args: argparse.Namespace) -> dict[str, dict]:
    """Recipe → loader bounds from ``--loader`` (``{}`` when that file is missing: the columns print '-')."""
    from benchmarks.loader_throughput import recipe_bounds

    path = getattr(args, "loader", LOADER_RESULTS)
    if args.loader_workers < 1:
        raise SystemExit(f"--loader-workers must be at least 1, got {args.loader_workers}")
    return recipe_bounds(loader_path=path, workers=args.loader_workers, gpu_tflops=args.gpu_tflops,
                         utilisation=args.utilisation)  # fmt: skip


if __name__ == "__main__":
    main()
