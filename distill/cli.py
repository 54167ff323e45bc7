"""``distill`` command line: run recipes, list registered components, write synthetic datasets.

User errors (bad recipe, missing data, diverging loss …) print one line and exit with status 2; ``--debug`` shows
the full traceback instead.
"""

from __future__ import annotations

import argparse
import logging
import sys
import typing
from collections.abc import Sequence
from pathlib import Path

from distill import __version__
from distill.errors import DistillError, one_line
from distill.registry import REGISTRIES


def _cmd_repeats(args: argparse.Namespace) -> int:
    from distill.recipe import load_recipe
    from distill.repeats import aggregate, run_repeats
    from distill.report import table

    seeds = _parse_seeds(args.seeds)
    recipe, _ = load_recipe(args.recipe, args.set or [])
    out = args.out or recipe.output.dir.format(name=recipe.name)
    runs = run_repeats(args.recipe, seeds, out, args.set or [])
    from distill.engine.distributed import is_main

    if not is_main():  # under torchrun, rank 0 alone reports
        return 0
    for split, by_role in runs[0]["results"].items():
        rows = []
        for role in by_role:
            aggs = [aggregate(runs, split, role, m) for m in recipe.eval.metrics]
            rows.append([role, *(f"{a} (median {a.median:.4f})" for a in aggs)])
        caption = f"{recipe.name} | split '{split}' | seeds {seeds} (split seed = train seed) | mean ± std over seeds"
        print(table(["model", *recipe.eval.metrics], rows, caption), end="\n\n")
    print(f"runs: {out}/seed*/")
    return 0


def _parse_seeds(text: str) -> list[int]:
    cells = [c.strip() for c in text.split(",")]
    try:
        seeds = [int(c) for c in cells]
    except ValueError:
        seeds = []
    if not seeds or min(seeds) < 0 or len(set(seeds)) < len(seeds):
        raise DistillError(f"--seeds {text!r}: expected distinct non-negative integers separated by commas, e.g. 0,1,2")
    return seeds


def _cmd_run(args: argparse.Namespace) -> int:
    from distill.build import run_recipe
    from distill.paths import check_output_dir

    if args.out:
        check_output_dir(args.out)

    if args.seeds:
        return _cmd_repeats(args)

    from distill.engine.distributed import is_main

    run, result = run_recipe(args.recipe, args.set or [], args.out, args.resume)
    if not is_main():  # under torchrun, rank 0 alone reports
        return 0
    print(run.report(result))
    for path in run.write_plots(result):
        print(f"plot: {path}")
    print(f"run folder: {run.out_dir} (recipe.yaml, metrics.jsonl, results.json, student.pt, checkpoints/)")
    if result.skipped_steps:
        print(f"note: {result.skipped_steps} steps were skipped for non-finite losses (train.nonfinite: skip)")
    for split, files in result.corrupt_skipped.items():
        shown = ", ".join(files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
        print(f"note: {len(files)} corrupt images skipped in '{split}' (on_corrupt: skip): {shown}")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from distill.registry import REGISTRIES

    kinds = [args.kind] if args.kind else list(REGISTRIES)
    for kind in kinds:
        if kind not in REGISTRIES:
            raise DistillError(f"unknown kind '{kind}'; choose one of: {', '.join(REGISTRIES)}")
        registry = REGISTRIES[kind]
        names = registry.names()
        print(f"{kind}:")
        width = max((len(n) for n in names), default=0)
        for name in names:
            print(f"  {name.ljust(width)}  {registry.describe(name)}")
    return 0


def _cmd_data(args: argparse.Namespace) -> int:
    from distill.config import ComponentSpec
    from distill.recipe import RecipeChecker, parse_override
    from distill.registry import WRITERS

    spec = ComponentSpec(args.writer, dict(parse_override(item) for item in args.set or []))
    RecipeChecker({k: "--set" for k in spec.args}, "distill data").component(WRITERS, spec, "data", skip=("out",))
    path = WRITERS.build(args.writer, out=args.out, **spec.args)
    print(f"wrote synthetic {args.writer} set to {path}")
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from distill.deploy import predict

    if args.batch_size < 1:
        raise DistillError(f"--batch-size {args.batch_size}: expected a positive integer")

    task, out = predict(
        args.checkpoint, args.inputs, args.out, args.batch_size, args.device, self_ensemble=args.self_ensemble
    )
    what = {"iqa": "path,score", "sr": "one PNG per image", "classify": "path,label,probability"}[task]
    print(f"wrote {out} ({what})")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from distill.deploy import export_model
    from distill.paths import check_output_file

    suffix = {"torchscript": ".ts", "pt2": ".pt2", "onnx": ".onnx"}[args.format]
    out = args.out or str(Path(args.checkpoint).with_suffix("")) + suffix
    check_output_file(out)
    if args.size < 1:
        raise DistillError(f"--size {args.size}: expected a positive side length in pixels, e.g. 64")
    path, diff = export_model(args.checkpoint, args.format, out, size=args.size)
    print(f"wrote {path} ({args.format}); max |difference| to the checkpoint on sample inputs: {diff:.2e}")
    return 0


def _cmd_profile(args: argparse.Namespace) -> int:
    import json

    import torch

    from distill.profile import example_input, models_of, profile_models, profile_table

    if args.threads:
        torch.set_num_threads(args.threads)
    models, reference = models_of(args.target)
    shape = _parse_shape(args.shape) if args.shape else None
    example = example_input(next(reversed(models.values())), shape, args.batch, args.device)
    profiles = profile_models(models, example, warmup=args.warmup, repeats=args.repeats)
    print(profile_table(profiles, reference))
    if args.json:
        Path(args.json).write_text(json.dumps([p.as_dict() for p in profiles], indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


def _parse_shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise DistillError(f"--shape {text!r}: expected C,H,W of one input, e.g. 3,224,224")
    return shape


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (``distill: error: ...``, exit 2) and ``--debug`` on every command."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"distill: error: {self.prog}: {message} (see {self.prog} --help)\n")


def _add_debug(parser: argparse.ArgumentParser, default: typing.Any) -> None:
    parser.add_argument("--debug", action="store_true", default=default, help="show full tracebacks for errors")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="distill", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"distill {__version__}")
    _add_debug(parser, False)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="train a recipe")
    run.add_argument("recipe", help="recipe YAML file, e.g. recipes/quickstart.yaml")
    run.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a recipe key (repeatable)")
    run.add_argument("--out", help="run folder (default: output.dir of the recipe)")
    run.add_argument("--resume", action="store_true", help="continue the run in the output folder")
    run.add_argument(
        "--seeds", help="comma-separated seeds: one run per seed (train and split seed), then mean ± std and median"
    )
    run.set_defaults(fn=_cmd_run)

    lst = sub.add_parser("list", help="list registered components")
    lst.add_argument("kind", nargs="?", help=f"one of: {', '.join(REGISTRIES)}")
    lst.set_defaults(fn=_cmd_list)

    data = sub.add_parser("data", help="write a synthetic dataset in an official layout")
    data.add_argument("writer", help="synthetic writer, e.g. kadid10k (see `distill list writers`)")
    data.add_argument("out", help="folder to write")
    data.add_argument("--set", action="append", metavar="KEY=VALUE", help="writer option, e.g. n_refs=8")
    data.set_defaults(fn=_cmd_data)
    pred = sub.add_parser(
        "predict", help="run a trained student on images: IQA scores / classes to CSV, SR upscaled PNGs"
    )
    pred.add_argument("checkpoint", help="student.pt or checkpoints/last.pt of a run")
    pred.add_argument("inputs", nargs="+", help="image files, folders or glob patterns")
    pred.add_argument(
        "--out", help="CSV file (IQA, classification; default predictions.csv) or folder (SR; default predictions/)"
    )
    pred.add_argument("--self-ensemble", action="store_true", help="SR: average the 8 flips/rotations")
    pred.add_argument("--batch-size", type=int, default=16)
    pred.add_argument("--device", default="cpu")
    pred.set_defaults(fn=_cmd_predict)

    exp = sub.add_parser("export", help="export the student alone, checked against the checkpoint")
    exp.add_argument("checkpoint", help="student.pt or checkpoints/last.pt of a run")
    exp.add_argument("--format", choices=["torchscript", "pt2", "onnx"], default="torchscript")
    exp.add_argument("--out", help="output file (default: beside the checkpoint)")
    exp.add_argument("--size", type=int, default=64, help="side of the sample inputs used to trace and check")
    exp.set_defaults(fn=_cmd_export)

    prof = sub.add_parser("profile", help="parameters, FLOPs, latency and peak memory, teacher vs student")
    prof.add_argument("target", help="a recipe YAML, student.pt or checkpoints/last.pt")
    prof.add_argument("--shape", help="C,H,W of one input (default: the model's profile_input_shape or 3,224,224)")
    prof.add_argument("--batch", type=int, default=1)
    prof.add_argument("--device", default="cpu")
    prof.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    prof.add_argument("--warmup", type=int, default=2)
    prof.add_argument("--repeats", type=int, default=10)
    prof.add_argument("--json", help="also write the profiles to this JSON file")
    prof.set_defaults(fn=_cmd_profile)
    for command in sub.choices.values():  # `--debug` anywhere on the command line, before or after the command
        _add_debug(command, argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.fn(args))
    except DistillError as err:
        if args.debug:
            raise
        dist = sys.modules.get("distill.engine.distributed")  # imported only by commands that train
        rank = dist.rank() if dist is not None else 0
        print(f"distill: error: {'' if rank == 0 else f'[rank {rank}] '}{one_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("distill: interrupted; resume with `distill run RECIPE --out DIR --resume`", file=sys.stderr)
        return 130
    finally:
        dist = sys.modules.get("distill.engine.distributed")
        if dist is not None:  # leave torchrun's process group cleanly
            dist.cleanup()


if __name__ == "__main__":
    sys.exit(main())
