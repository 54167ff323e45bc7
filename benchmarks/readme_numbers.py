"""The README's quickstart numbers and the band a run on another machine lands in (``benchmarks.readme_numbers``).

It runs ``recipes/quickstart.yaml`` exactly as README command 1 does, but with fresh synthetic data and a fresh run
folder in a temporary directory (what a fresh clone gets) and a fixed thread count, once per ``--seeds`` value
(``train.seed``; the split stays split_seed 0, so every seed is scored on the same test images).

The numbers are bit-identical on one machine for a given torch build and thread count, but not across CPUs: another
CPU rounds differently, and from there training takes a different path, as another seed would. So the README states
what they are:

* seed 0 (what command 1 runs) on every machine that was measured, with its CPU;
* mean ± std over the seeds measured on one machine;
* the band a run of command 1 is expected to land in: the seeds' mean ± 2 std, widened to include every recorded
  seed-0 value;
* whether the models are clearly informative (issue 27): every measured seed's SRCC of both models at least
  ``INFORMATIVE_SRCC`` (0.7, decided before the measurement). A constant predictor has SRCC 0; for scale, the block
  also gives two predictors made from the training labels alone, scored on the same test images: the training mean
  of the image's distortion type, and of its type and level (what a model that recognised both exactly would
  predict without looking at the content);
* the CPU time of each seed's run (process time, all threads, writing the synthetic set included).

``--json FILE`` saves a measurement (the machine, with its CPU model, and every seed's numbers);
``--from FILE [FILE ...] --readme`` writes the block between the ``<!-- readme-numbers:quickstart -->`` markers from
saved measurements, without training. ``--check`` trains seed 0 here and exits 1 when a number falls outside the
band of the saved measurements (``--from``, default every ``benchmarks/results/quickstart_*.json``); it also says
whether the run equals a saved seed-0 run exactly.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from benchmarks._common import machine_info, machine_label, write_readme_block
from distill.run.atomic import write_text

ROOT = Path(__file__).resolve().parent.parent
RECIPE = ROOT / "recipes" / "quickstart.yaml"
RESULTS = ROOT / "benchmarks" / "results"
COLUMNS = (("srcc", "SRCC"), ("plcc", "PLCC"))
#: The band is the seeds' mean ± this many standard deviations (widened to every recorded seed-0 value).
BAND_STDS = 2.0
#: Issue 27's "clearly informative", decided before measuring: every seed's SRCC (teacher and student) at least this.
INFORMATIVE_SRCC = 0.7


def quickstart_results(work: Path, threads: int, seed: int = 0) -> tuple[dict[str, Any], Any]:
    """Train the quickstart in ``work`` (fresh data, fresh run folder) with ``train.seed = seed``; its results and
    run."""
    from distill.build import run_recipe

    torch.set_num_threads(threads)
    data = work / "kadid10k_synthetic"
    overrides = [
        f"data.root={data}",
        f"data.synthetic.root={data}",
        "train.progress=false",
        "output.tensorboard=false",
        f"train.seed={seed}",
    ]
    run, result = run_recipe(RECIPE, overrides, work / f"run_seed{seed}")
    return result.results, run


def label_references(train: Any, test: Any) -> dict[str, float]:
    """SRCC on the test images of two predictors built from the training labels alone: the mean label of the image's
    distortion type, and of its type and level (ties broken by nothing: SRCC's average ranks)."""
    from scipy.stats import spearmanr

    out = {}
    for name, key in (("type", lambda s: s.distortion), ("type and level", lambda s: (s.distortion, s.level))):
        groups: dict[Any, list[float]] = {}
        for sample in train.samples:
            groups.setdefault(key(sample), []).append(float(sample.score))
        overall = statistics.fmean(float(s.score) for s in train.samples)
        pred = [statistics.fmean(groups[key(s)]) if key(s) in groups else overall for s in test.samples]
        out[name] = float(spearmanr(pred, [float(s.score) for s in test.samples])[0])
    return out


def describe(run: Any, results: dict[str, Any]) -> dict[str, Any]:
    """What the numbers are numbers of: data, split, selection, the models' learning rates (saved with them)."""
    recipe = run.recipe
    split = next(iter(results))
    spec = recipe.data.eval[split].args
    synthetic = recipe.data.synthetic.args if recipe.data.synthetic else {}
    return {
        "split": split,
        "n": len(run.eval_sets[split]),
        "n_refs": synthetic.get("n_refs"),
        "n_types": len(synthetic.get("distortions") or []),
        "split_mode": spec.get("split_mode", "by_reference"),
        "split_seed": spec.get("split_seed", 0),
        "selection": "last" if recipe.eval.selection == "last" else f"best {recipe.eval.select_split}",
        "lr": {role: recipe.optim[role].lr for role in results[split] if role in recipe.optim},
        "optimizer": {role: recipe.optim[role].optimizer for role in results[split] if role in recipe.optim},
        "epochs": recipe.train.epochs,
        "label_references": label_references(run.train_set, run.eval_sets[split]),
    }


def measure(seeds: Sequence[int], threads: int, keep: Path | None = None) -> dict[str, Any]:
    """Train every seed; the saved form: ``{machine, threads, setup, seeds: {seed: {role: {metric: value}}}}``."""
    out: dict[str, Any] = {"machine": machine_info(), "threads": threads, "seeds": {}, "cpu_seconds": {}}
    for seed in seeds:
        with tempfile.TemporaryDirectory(prefix="readme_numbers_") as tmp:
            started = time.process_time()
            results, run = quickstart_results(keep or Path(tmp), threads, seed)
            out["cpu_seconds"][str(seed)] = round(time.process_time() - started, 1)
            out.setdefault("setup", describe(run, results))
            split = next(iter(results))
            out["seeds"][str(seed)] = {
                role: {m: float(res["overall"][m]) for m, _ in COLUMNS} for role, res in results[split].items()
            }
    out["machine"] = machine_info() | {"threads": threads}
    return out


def _finite(values: Sequence[float | None]) -> list[float]:
    return [float(v) for v in values if v is not None and v == v]


def band(measurements: Sequence[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Per (role, metric): the seed-0 values, the seeds' mean and std (from the measurement with the most seeds), and
    the band ``[low, high]`` a run of command 1 is expected to land in: every recorded seed-0 value widened by the
    margin, which is the larger of ``BAND_STDS`` × the seeds' std and the largest difference between two CPUs'
    seed-0 values over all numbers (one CPU rounds differently from another, and training then takes another path)."""
    spread_source = max(measurements, key=lambda m: len(m["seeds"]))
    roles = list(spread_source["seeds"][next(iter(spread_source["seeds"]))])
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for role in roles:
        for metric, _ in COLUMNS:
            per_machine = [m["seeds"]["0"].get(role, {}).get(metric) for m in measurements if "0" in m["seeds"]]
            seed0 = _finite(per_machine)
            values = _finite([s.get(role, {}).get(metric) for s in spread_source["seeds"].values()])
            mean = statistics.fmean(values) if values else float("nan")
            std = statistics.stdev(values) if len(values) > 1 else float("nan")
            rows[role, metric] = {"seed0": seed0, "per_machine": per_machine, "mean": mean, "std": std}
            rows[role, metric]["n"] = len(values)
    machines = max((max(r["seed0"]) - min(r["seed0"]) for r in rows.values() if len(r["seed0"]) > 1), default=0.0)
    for r in rows.values():
        margin = max(machines, BAND_STDS * r["std"] if r["n"] > 1 else 0.0)
        r["machines"], r["margin"] = machines, margin
        r["low"], r["high"] = min(r["seed0"]) - margin, max(r["seed0"]) + margin
    return rows


def render_table(measurements: Sequence[dict[str, Any]]) -> str:
    """The markdown block that goes between the markers, from saved measurements."""
    first = max(measurements, key=lambda m: len(m["seeds"]))
    setup, threads = first["setup"], first["threads"]
    several = len(first["seeds"]) > 1
    lines = [
        f"`recipes/quickstart.yaml` (README command 1): synthetic KADID-10k layout ({setup['n_refs']} references, "
        f"{setup['n_types']} distortion types, objective pseudo-MOS), split `{setup['split_mode']}` with split_seed "
        f"{setup['split_seed']}, seed 0, selection `{setup['selection']}`, split '{setup['split']}' n = "
        f"{setup['n']}; torch {first['machine']['torch']}, {threads} thread{'s' if threads > 1 else ''}. Written by "
        "`python -m benchmarks.readme_numbers --from benchmarks/results/quickstart_*.json --readme`.",
        "",
    ]
    seed0 = [m for m in measurements if "0" in m["seeds"]]
    header = ["model", "metric", *(f"seed 0 on {machine_label(m['machine'])}" for m in seed0)]
    if several:
        header.append(f"seeds {', '.join(sorted(first['seeds'], key=int))} on {machine_label(first['machine'])}")
    header.append("a run of command 1 is expected in")
    lines += ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    stats = band(measurements)
    for (role, metric), s in stats.items():
        lr, optimizer = setup["lr"].get(role), setup.get("optimizer", {}).get(role)
        label = f"{role} ({f'{optimizer} ' if optimizer else ''}lr {lr:g})" if lr is not None else role
        cells = [label, dict(COLUMNS)[metric], *("–" if v is None else f"{v:.3f}" for v in s["per_machine"])]
        if several:
            cells.append(f"{s['mean']:.3f} ± {s['std']:.3f}")
        cells.append(f"{s['low']:.3f}–{s['high']:.3f}")
        lines.append("| " + " | ".join(cells) + " |")
    sources = [f"{machine_label(m['machine'])}: {m['source']}" for m in measurements if m.get("source")]
    machines = next(iter(stats.values()))["machines"]
    how = (
        f"every recorded seed-0 value ± the larger of {BAND_STDS:g} × the seeds' std and the largest difference "
        "between two CPUs"
        if several
        else "every recorded seed-0 value ± the largest difference between two CPUs over all four numbers"
    )
    lines += [
        "",
        "One CPU, torch build and thread count give the same numbers on every rerun; another CPU rounds differently "
        "and training takes a different path from the first steps"
        + (f", so seed 0 differed by up to {machines:.3f} between the {len(seed0)} CPUs above. " if machines else ". ")
        + f"The last column is {how}"
        + ("" if several else f" ({machines:.3f}); it rests on {len(seed0)} machines, so a new one may fall outside")
        + ". `python -m benchmarks.readme_numbers --check` trains seed 0 and fails outside it.",
    ]
    lines += informative_lines(first, stats)
    if sources:
        lines += ["", *(f"- {line}" for line in sources)]
    return "\n".join(lines)


def informative_lines(first: dict[str, Any], stats: dict[tuple[str, str], dict[str, Any]]) -> list[str]:
    """Issue 27's verdict (every seed's SRCC at least ``INFORMATIVE_SRCC``), the label-only predictors for scale and
    the CPU time per run, from the measurement with the most seeds (nothing for measurements that predate them)."""
    setup, lines = first["setup"], []
    srcc = {role: [v[role]["srcc"] for v in first["seeds"].values() if role in v] for role, m in stats if m == "srcc"}
    lowest = ", ".join(f"{role} {min(values):.3f}" for role, values in srcc.items())
    verdict = all(min(v) >= INFORMATIVE_SRCC for v in srcc.values())
    lines += [
        "",
        f"Clearly informative (issue 27: every measured seed's SRCC of both models at least {INFORMATIVE_SRCC:g}): "
        f"**{'yes' if verdict else 'no'}**; the lowest over the {len(first['seeds'])} measured seed(s): {lowest}.",
    ]
    refs = setup.get("label_references")
    if refs:
        lines[-1] += (
            f" For scale, on the same {setup['n']} test images: a constant predictor has SRCC 0; predicting the "
            f"training mean label of the image's distortion type gives {refs['type']:.3f}, of its type and level "
            f"{refs['type and level']:.3f} (the training labels alone, no image content)."
        )
    cpu = first.get("cpu_seconds")
    if cpu:
        shown = ", ".join(f"seed {k} {v / 60:.1f}" for k, v in sorted(cpu.items(), key=lambda kv: int(kv[0])))
        lines[-1] += (
            f" CPU minutes per run ({first['threads']} thread{'s' if first['threads'] > 1 else ''}, process time "
            f"on {machine_label(first['machine'])}, load {first['machine'].get('load_1min')} at the end, writing the "
            f"synthetic set included): {shown}."
        )
    return lines


def check(measured: dict[str, Any], saved: Sequence[dict[str, Any]]) -> tuple[bool, list[str]]:
    """Whether a fresh seed-0 run is inside the band of ``saved``, and one line per number saying so."""
    stats = band(saved)
    ok, lines = True, []
    run = measured["seeds"]["0"]
    for (role, metric), s in stats.items():
        value = run.get(role, {}).get(metric)
        inside = value is not None and s["low"] <= value <= s["high"]
        ok &= inside
        shown = "missing" if value is None else f"{value:.4f}"
        lines.append(
            f"{role:8} {metric:5} {shown}  band {s['low']:.3f}–{s['high']:.3f}  {'inside' if inside else 'OUTSIDE'}"
        )
    same = [m for m in saved if m["seeds"].get("0") == run]
    lines.append(
        f"equal to the saved seed-0 run of {machine_label(same[0]['machine'])}"
        if same
        else f"not equal to any saved seed-0 run (this CPU: {machine_label(measured['machine'])})"
    )
    return ok, lines


def load(paths: Sequence[Path]) -> list[dict[str, Any]]:
    """Saved measurements; a missing or unreadable file is a one-line error."""
    out = []
    for path in paths:
        try:
            out.append(json.loads(path.read_text()))
        except (OSError, ValueError) as exc:
            raise SystemExit(f"{path}: cannot read a saved measurement ({exc})") from None
    if not out:
        raise SystemExit(f"no saved measurement: give --from FILE (none matched {RESULTS}/quickstart_*.json)")
    return out


def saved_threads(saved: Sequence[dict[str, Any]], default: int = 2) -> int:
    """The thread count of a saved measurement made on this CPU model (its seed 0 is then reproduced bit for bit),
    else ``default``."""
    here = machine_info()["cpu_model"]
    for measurement in saved:
        if measurement.get("machine", {}).get("cpu_model") == here and measurement.get("threads"):
            return int(measurement["threads"])
    return default


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0", help="train seeds to run, comma-separated (default 0)")
    parser.add_argument(
        "--threads",
        type=int,
        help="torch threads (the numbers depend on it); default 2, and for --check the thread count of a saved "
        "measurement from this CPU model, so that the check can reproduce it exactly",
    )
    parser.add_argument("--json", type=Path, help="save the measurement here")
    parser.add_argument("--from", dest="saved", type=Path, nargs="+", help="saved measurements (--json files)")
    parser.add_argument("--readme", action="store_true", help="write the block into README.md (needs --from)")
    parser.add_argument("--check", action="store_true", help="train seed 0 and judge it by the saved band")
    parser.add_argument("--keep", type=Path, help="train in this folder and keep it (default: a temporary folder)")
    args = parser.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be at least 1")
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--seeds {args.seeds}: expected integers separated by commas")
    if args.readme and not args.saved:
        parser.error("--readme writes from saved measurements: give --from FILE [FILE ...]")
    if args.saved and not args.check:
        block = render_table(load(args.saved))
        if args.readme:
            write_readme_block("quickstart", block)
        print(block)
        return 0
    if args.check:
        saved = load(args.saved or sorted(RESULTS.glob("quickstart_*.json")))
        threads = args.threads or saved_threads(saved)
        print(f"training seed 0 with {threads} torch thread{'s' if threads > 1 else ''}")
        measured = measure([0], threads, args.keep)
        if args.json is not None:  # what this machine printed, to add to the saved measurements
            write_text(args.json, json.dumps(measured, indent=2) + "\n")
        ok, lines = check(measured, saved)
        print("\n".join(lines))
        print("inside the README's band" if ok else "OUTSIDE the README's band: the code changed what it trains")
        return 0 if ok else 1
    measured = measure(seeds, args.threads or 2, args.keep)
    if args.json is not None:
        write_text(args.json, json.dumps(measured, indent=2) + "\n")
    print(json.dumps(measured["seeds"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
