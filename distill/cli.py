"""``distill`` command line: run recipes, list registered components, write synthetic datasets, convert weights.

User errors (bad recipe, missing data, diverging loss …) print one line and exit with status 2; ``--debug`` shows
the full traceback instead.
"""

from __future__ import annotations

import argparse
import sys
import typing
from collections.abc import Sequence
from pathlib import Path

from distill import __version__, quiet
from distill.deploy.zoo_commands import add_convert_parser, add_weights_parser
from distill.errors import DataError, DistillError, one_line
from distill.experiments.sweep import add_launcher_arguments
from distill.registry import REGISTRIES
from distill.run.layout import RunFolder


def _cmd_repeats(args: argparse.Namespace) -> int:
    from distill.experiments.repeats import aggregate, run_repeats
    from distill.experiments.sweep import run_with_launcher
    from distill.recipe.check import load_recipe
    from distill.registry import METRICS
    from distill.report.tables import fmt, metric_header, percent, table

    seeds = _parse_seeds(args.seeds)
    recipe, _ = load_recipe(args.recipe, args.set or [])
    out = args.out or recipe.output.dir.format(name=recipe.name)
    runs = run_with_launcher(lambda source: run_repeats(args.recipe, seeds, out, args.set or [], source=source), args)
    if runs is None:  # submitted to SLURM and still running
        return 0
    from distill.engine.distributed import is_main

    if not is_main():  # under torchrun, rank 0 alone reports
        return 0
    for split, by_role in runs[0]["results"].items():
        rows = []
        # the metrics evaluated (eval.metrics, or the task's default when it is null), in their order
        metrics = recipe.eval.metrics or [m for m in next(iter(by_role.values()))["overall"] if m in METRICS]
        for role in by_role:
            aggs = [aggregate(runs, split, role, m) for m in metrics]
            scales = [100.0 if percent(m) else 1.0 for m in metrics]
            cells = [f"{a.format(4, s)} (median {fmt(s * a.median)})" for a, s in zip(aggs, scales)]
            rows.append([role, *cells])
        caption = f"{recipe.name} | split '{split}' | seeds {seeds} (split seed = train seed) | mean ± std over seeds"
        headers = ["model", *(metric_header(m) for m in metrics)]
        print(table(headers, rows, caption), end="\n\n")
    print(f"runs: {out}/seed*/")
    from distill.report.html import write_report

    print(f"report: {write_report([RunFolder.of_seed(out, s).path for s in seeds], RunFolder(out).report_page)}")
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


#: what ``--quiet`` adds to the user's ``--set`` overrides
QUIET_SET = "train.progress=false"


def _quiet_applies(recipe: str, overrides: list[str]) -> bool:
    """``--quiet``'s override fits the recipe after the user's own; where it does not (``--set train=5``), the recipe
    check then reports the user's override, not one the user never typed."""
    from distill.recipe.files import apply_overrides, load_raw

    try:
        data, prov = load_raw(recipe)
        apply_overrides(data, overrides, prov)
    except Exception:  # the recipe or the user's overrides are wrong: the real check says how
        return True
    try:
        apply_overrides(data, [QUIET_SET], prov)
    except DistillError:
        return False
    return True


def _cmd_run(args: argparse.Namespace) -> int:
    from distill.build import run_recipe
    from distill.run.paths import check_output_dir

    if args.out:
        check_output_dir(args.out)

    if args.quiet and _quiet_applies(args.recipe, args.set or []):
        args.set = [*(args.set or []), QUIET_SET]  # after the user's: --quiet wins
    if args.seeds:
        return _cmd_repeats(args)
    if args.launcher != "inline" or args.collect_only:
        raise DistillError(f"--launcher {args.launcher} / --collect-only: only with --seeds (one run per seed)")

    from distill.engine.distributed import is_main

    resume = True if args.resume else "auto" if args.auto_resume else False
    run, result = run_recipe(args.recipe, args.set or [], args.out, resume, force=args.force)
    if not is_main():  # under torchrun, rank 0 alone reports
        return 0
    print(run.report(result))
    from distill.report.data import read_report_data

    comparison = run.task.data_report(read_report_data(run.out_dir))  # e.g. SR: bicubic beside the models
    if comparison:
        print(comparison, end="\n\n")
    for path in run.write_plots(result):
        print(f"plot: {path}")
    from distill.report.html import write_report

    report = write_report([run.out_dir], RunFolder(run.out_dir).report_page)
    print(f"report: {report}")
    from distill.engine.trackers import attach_artifacts

    attach_artifacts(run.out_dir, run.recipe.output, [report])  # to the W&B / MLflow runs of output.trackers
    print(f"run folder: {run.out_dir} (recipe.yaml, metrics.jsonl, results.json, student.pt, checkpoints/)")
    if result.skipped_steps:
        print(f"note: {result.skipped_steps} steps were skipped for non-finite losses (train.nonfinite: skip)")
    for split, files in result.corrupt_skipped.items():
        shown = ", ".join(files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
        print(f"note: {len(files)} corrupt images skipped in '{split}' (on_corrupt: skip): {shown}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from distill.report.html import write_report

    dirs = [Path(d) for d in args.runs]
    if args.out:
        out = Path(args.out)
    elif len(dirs) == 1:
        out = RunFolder(dirs[0]).report_page
    else:  # beside the first run, named after all of them
        out = dirs[0].parent / ("report_" + "_vs_".join(d.name for d in dirs) + ".html")
    from distill.run.safe_write import check_new_file

    # the default page is this command's own output (named after the runs): it is regenerated in place
    check_new_file(out, force=args.force, own_runs=dirs, replaceable=None if args.out else lambda _: True)
    print(f"wrote {write_report(dirs, out)}")
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
    from distill.data.synthetic_common import blame_args
    from distill.recipe.check import RecipeChecker
    from distill.recipe.config import ComponentSpec
    from distill.recipe.files import parse_override
    from distill.registry import WRITERS
    from distill.run.safe_write import check_new_folder

    parsed = [(item, *parse_override(item)) for item in args.set or []]
    given = {key: item for item, key, _ in parsed}
    spec = ComponentSpec(args.writer, {key: value for _, key, value in parsed})
    check_new_folder(args.out, "OUT", force=args.force)
    if args.force:  # the writer replaces a synthetic set written earlier, never a folder of other files
        spec.args["overwrite"] = True
    blame = {f"data.args.{key}": f"--set {item}" for key, item in given.items()}  # errors name the user's option
    RecipeChecker(blame, "distill data").component(WRITERS, spec, "data", skip=("out",))
    try:
        path = WRITERS.build(args.writer, out=args.out, **spec.args)
    except DataError as err:  # a value the writer refuses: name the option that gave it
        given_args = {k: v for k, v in spec.args.items() if k in given}
        raise blame_args(err, given_args, lambda k, _: f"--set {given[k]}") from None
    print(f"wrote synthetic {args.writer} set to {path}")
    return 0


def _cmd_data_fetch(args: argparse.Namespace) -> int:
    from distill.data.fetch import SOURCES, fetch_dataset

    if args.name is None:
        for src in SOURCES.values():
            where = "download by hand, then --archive" if any(a.url is None for a in src.archives) else "downloads"
            print(f"  {src.name.ljust(9)} {src.default_root.ljust(24)} {where}: {src.title}; {src.page}")
        return 0
    try:
        scales = [int(s) for item in args.scale or [] for s in str(item).split(",") if s.strip()]
    except ValueError:
        raise DistillError(f"--scale {','.join(args.scale)}: expected scales such as 4 or 2,3,4") from None
    result = fetch_dataset(args.name, args.root, args.archive or [], args.url, args.force, args.downloads, scales)
    if result.counts is None:
        print(f"{args.name}: in {result.root} (no '{SOURCES[args.name].reader}' reader registered: count skipped)")
    else:
        print(f"{args.name}: {', '.join(f'{label}: {n} items' for label, n in result.counts)} in {result.root}")
    kept = [a for a in result.archives if str(a.get("source", "")).startswith(("http://", "https://"))]
    if kept and not result.reused:
        size = sum(a["size"] for a in kept) / 1e6
        print(f"downloaded archives kept in {Path(kept[0]['path']).parent} ({size:.1f} MB); delete them to free space")
    return 0


def build_fetch_parser() -> argparse.ArgumentParser:
    fetch = _Parser(
        prog="distill data fetch",
        description="Download a real dataset from its official host (or take --archive), verify it, extract it "
        "safely and count its items with the dataset's reader. Without NAME: list the datasets.",
    )
    fetch.add_argument("name", nargs="?", help="dataset, e.g. tid2013 (no NAME: list them)")
    fetch.add_argument("root", nargs="?", help="folder to create (default: the recipes' data/<dataset> path)")
    fetch.add_argument("--archive", action="append", metavar="PATH", help="use an archive you already have")
    fetch.add_argument("--url", help="mirror: the archive's URL, or a base URL ending in / that serves its file names")
    fetch.add_argument(
        "--force",
        action="store_true",
        help="replace ROOT when it holds an earlier fetch or a synthetic stand-in (or put ROOT inside a run folder)",
    )
    fetch.add_argument("--downloads", help="folder for the archives (default: ROOT/../downloads)")
    fetch.add_argument("--scale", action="append", help="div2k: only these LR scales, e.g. 4 or 2,3 (repeatable)")
    _add_debug(fetch, False)
    fetch.set_defaults(fn=_cmd_data_fetch, interrupt_hint="re-run the same command to resume the download")
    return fetch


def _cmd_data_prepare(args: argparse.Namespace) -> int:
    from distill.data.prepare import prepare_dataset
    from distill.recipe.files import parse_override

    done = prepare_dataset(args.name, args.root, dict(parse_override(item) for item in args.set or []))
    print(f"{args.name}: {done['files']} images in the store {done['folder']} ({done['stored']} decoded now, "
          f"{done['kept']} already there; {done['bytes'] / 1e9:.2f} GB); read it with format: store")  # fmt: skip
    return 0


def build_prepare_parser() -> argparse.ArgumentParser:
    prep = _Parser(
        prog="distill data prepare",
        description="Decode a dataset's images once into a uint8 memory-mapped store in ROOT/distill_store, read by "
        "its reader with format: store. Resumable: run it again to continue or to add another split/scale.",
    )
    prep.add_argument("name", help="div2k, sr_benchmark, kadid10k, tid2013, livec or cub200")
    prep.add_argument("root", help="the dataset's folder (its official layout)")
    prep.add_argument("--set", action="append", metavar="KEY=VALUE", help="div2k: split=train, scale=4 (or 2,3,4)")
    _add_debug(prep, False)
    prep.set_defaults(fn=_cmd_data_prepare, interrupt_hint="re-run the same command to continue the preparation")
    return prep


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Parse ``argv``; ``[--debug] data fetch …`` goes to its own parser (``data WRITER OUT`` stays as it was)."""
    head = 0
    while head < len(argv) and argv[head].startswith("-") and argv[head] in ("--debug",):
        head += 1
    if argv[head : head + 2] == ["data", "fetch"]:
        args = build_fetch_parser().parse_args(argv[head + 2 :])
        args.debug = args.debug or "--debug" in argv[:head]
        return args
    if argv[head : head + 2] == ["data", "prepare"]:
        args = build_prepare_parser().parse_args(argv[head + 2 :])
        args.debug = args.debug or "--debug" in argv[:head]
        return args
    return parser.parse_args(argv)


def _cmd_predict(args: argparse.Namespace) -> int:
    from distill.deploy.model import predict_with_task
    from distill.tasks import PredictOptions

    if args.batch_size < 1:
        raise DistillError(f"--batch-size {args.batch_size}: expected a positive integer")
    options = PredictOptions(
        args.batch_size, args.device, args.self_ensemble, tile=args.tile, tile_overlap=args.tile_overlap
    )
    task, out = predict_with_task(args.checkpoint, args.inputs, args.out, options, force=args.force)
    print(f"wrote {out} ({task.writes})")
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    import json

    from distill.deploy.evaluate import render, run_eval, to_json
    from distill.run.safe_write import check_new_file, check_new_folder, write_checked_text

    if args.json:
        check_new_file(args.json, "--json", force=args.force)
    if args.save_images:
        check_new_folder(args.save_images, "--save-images", force=args.force)
    ensemble = True if args.self_ensemble else None
    options = {"tile": args.tile, "tile_overlap": args.tile_overlap}
    ref, rows = run_eval(
        args.model, args.datasets, device=args.device, batch_size=args.batch_size, self_ensemble=ensemble,
        save_images=args.save_images, **options,
    )  # fmt: skip
    print(render(ref, rows, **options))
    if args.save_images:
        print(f"images: {args.save_images}/<dataset>/")
    if args.json:
        write_checked_text(args.json, json.dumps(to_json(ref, rows, **options), indent=2, default=float) + "\n")
        print(f"wrote {args.json}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from distill.deploy.model import export_model
    from distill.run.safe_write import check_new_file, check_new_folder, run_folder_of

    suffix = {"torchscript": ".ts", "pt2": ".pt2", "onnx": ".onnx", "safetensors": ".safetensors", "hf": "_hf"}
    out = args.out or str(Path(args.checkpoint).with_suffix("")) + suffix[args.format]
    own = [r for r in [run_folder_of(args.checkpoint)] if r]
    if args.format == "hf":  # a folder: model.safetensors, config.json, recipe.yaml, README.md (model card)
        from distill.run.model_files import HUB_FILES

        check_new_folder(out, "--out", force=args.force, files=HUB_FILES, own_runs=own)
    else:
        check_new_file(out, force=args.force, own_runs=own)
    if args.size < 1:
        raise DistillError(f"--size {args.size}: expected a positive side length in pixels, e.g. 64")
    path, diff = export_model(args.checkpoint, args.format, out, size=args.size)
    print(f"wrote {path} ({args.format}); max |difference| to the checkpoint on sample inputs: {diff:.2e}")
    return 0


def _cmd_profile(args: argparse.Namespace) -> int:
    import json
    import time

    import torch

    from distill.deploy.cost import example_input, models_of, profile_models, profile_table

    if args.threads < 1 or args.repeats < 1 or args.warmup < 0:
        raise DistillError("distill profile: --threads and --repeats must be at least 1, --warmup at least 0")
    if args.json:
        from distill.run.safe_write import check_new_file

        check_new_file(args.json, "--json", force=args.force)
    torch.set_num_threads(args.threads)
    models, reference = models_of(args.target)
    shape = _parse_shape(args.shape) if args.shape else None
    example = example_input(next(reversed(models.values())), shape, args.batch, args.device)
    started = time.perf_counter()

    def progress(done: int, total: int) -> None:  # a line for profiles that take more than a few seconds
        elapsed = time.perf_counter() - started
        if elapsed > 3 and done < total:
            left = elapsed / done * (total - done)
            print(f"\rprofiling: round {done}/{total}, about {left:.0f} s left ", end="", file=sys.stderr, flush=True)
        elif done == total and elapsed > 3:
            print(file=sys.stderr)

    profiles = profile_models(models, example, warmup=args.warmup, repeats=args.repeats, progress=progress)
    print(profile_table(profiles, reference))
    if args.json:
        from distill.run.safe_write import write_checked_text

        write_checked_text(args.json, json.dumps([p.as_dict() for p in profiles], indent=2) + "\n")
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


def _add_tile(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tile",
        type=int,
        help="SR: super-resolve in overlapping tiles of N input pixels (bounds memory on large "
        "images; a SwinIR model needs a multiple of its window)",
    )
    parser.add_argument("--tile-overlap", type=int, default=32, help="SR: pixels shared by neighbouring tiles")


def _add_force(parser: argparse.ArgumentParser, text: str = "") -> None:
    parser.add_argument(
        "--force",
        action="store_true",
        help=text or "replace an existing output file, or write into another run's folder (never a read-only file)",
    )


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
        "--auto-resume", action="store_true", help="continue the run when the folder has a checkpoint, else start it"
    )
    run.add_argument(
        "--quiet", action="store_true", help="no progress bar or evaluation lines while training (train.progress=false)"
    )
    run.add_argument(
        "--seeds", help="comma-separated seeds: one run per seed (train and split seed), then mean ± std and median"
    )
    _add_force(run, "start afresh in a folder that holds another run (its files are deleted once the new run starts)")
    add_launcher_arguments(run)
    run.set_defaults(fn=_cmd_run)

    rep = sub.add_parser("report", help="one self-contained HTML page of one or more run folders, side by side")
    rep.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run folders written by `distill run`")
    rep.add_argument(
        "--out", help="HTML file (default: RUN_DIR/report.html, or report_A_vs_B.html beside the first run)"
    )
    _add_force(rep)
    rep.set_defaults(fn=_cmd_report)

    lst = sub.add_parser("list", help="list registered components")
    lst.add_argument("kind", nargs="?", help=f"one of: {', '.join(REGISTRIES)}")
    lst.set_defaults(fn=_cmd_list)

    data = sub.add_parser(
        "data",
        help="write a synthetic dataset in an official layout; `distill data fetch NAME [ROOT]` gets the real one",
    )
    data.add_argument("writer", help="synthetic writer, e.g. kadid10k (see `distill list writers`)")
    data.add_argument("out", help="folder to write")
    data.add_argument("--set", action="append", metavar="KEY=VALUE", help="writer option, e.g. n_refs=8")
    _add_force(data, "replace a synthetic set written earlier (a folder of other files is never replaced)")
    data.set_defaults(fn=_cmd_data)
    add_convert_parser(sub)  # distill/deploy/zoo_commands.py: convert FORMAT FILE [OUT], weights list|fetch NAME
    add_weights_parser(sub)
    pred = sub.add_parser(
        "predict", help="run a trained student on images: IQA scores / classes to CSV, SR upscaled PNGs"
    )
    pred.add_argument(
        "checkpoint", help="student.pt or checkpoints/last.pt of a run, an exported .safetensors/model folder, hf:ID"
    )
    pred.add_argument("inputs", nargs="+", help="image files, folders or glob patterns")
    pred.add_argument(
        "--out",
        help="CSV file (IQA, classification) or folder (SR); default: beside the one input, named after it "
        "(photos/ -> photos_scores.csv, photos_classes.csv or photos_x4/)",
    )
    pred.add_argument("--self-ensemble", action="store_true", help="SR: average the 8 flips/rotations")
    _add_tile(pred)
    pred.add_argument("--batch-size", type=int, default=16)
    pred.add_argument("--device", default="cpu")
    _add_force(pred)
    pred.set_defaults(fn=_cmd_predict)

    ev = sub.add_parser("eval", help="score a model on datasets with its task's metrics (no training)")
    ev.add_argument("model", help="student.pt, a run folder, zoo:NAME or RECIPE.yaml:ROLE")
    ev.add_argument(
        "datasets", nargs="*", metavar="DATASET",
        help="a split of the model's run (default: all of them), RECIPE.yaml:SPLIT, a dataset name (set5, tid2013), "
        "NAME:ROOT or a folder in an official layout",
    )  # fmt: skip
    ev.add_argument("--json", help="also write the results to this file (refused if it exists, unless --force)")
    ev.add_argument("--force", action="store_true", help="replace the --json file")
    ev.add_argument("--save-images", metavar="DIR", help="SR: write the outputs to DIR/<dataset>/<name>.png")
    ev.add_argument("--self-ensemble", action="store_true", help="SR: average the 8 flips/rotations")
    _add_tile(ev)
    ev.add_argument("--batch-size", type=int, default=16, help="for datasets outside a recipe (SR: 1)")
    ev.add_argument("--device", default="cpu")
    ev.set_defaults(fn=_cmd_eval)

    exp = sub.add_parser("export", help="export the student alone, checked against the checkpoint")
    exp.add_argument("checkpoint", help="student.pt or checkpoints/last.pt of a run")
    exp.add_argument(
        "--format",
        choices=["torchscript", "pt2", "onnx", "safetensors", "hf"],
        default="torchscript",
        help="hf: a model folder (model.safetensors, config.json, recipe.yaml, model card README.md)",
    )
    exp.add_argument("--out", help="output file or hf folder (default: beside the checkpoint)")
    exp.add_argument("--size", type=int, default=64, help="side of the sample inputs used to trace and check")
    _add_force(exp)
    exp.set_defaults(fn=_cmd_export)

    prof = sub.add_parser("profile", help="parameters, FLOPs, latency and peak memory, teacher vs student")
    prof.add_argument("target", help="a recipe YAML, student.pt or checkpoints/last.pt")
    prof.add_argument("--shape", help="C,H,W of one input (default: the model's profile_input_shape or 3,224,224)")
    prof.add_argument("--batch", type=int, default=1)
    prof.add_argument("--device", default="cpu")
    prof.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: single-stream latency)")
    prof.add_argument("--warmup", type=int, default=3, help="untimed passes of each model first")
    prof.add_argument("--repeats", type=int, default=20, help="interleaved timed rounds (median, ± half IQR)")
    prof.add_argument("--json", help="also write the profiles to this JSON file")
    _add_force(prof, "replace an existing --json file")
    prof.set_defaults(fn=_cmd_profile)
    for command in sub.choices.values():  # `--debug` anywhere on the command line, before or after the command
        _add_debug(command, argparse.SUPPRESS)
    return parser


def _refuse_empty(args: argparse.Namespace, argv: Sequence[str]) -> None:
    """An argument given as an empty string (``--out ""``, a shell variable that was unset) is an error, not a
    silent "not given" that would write to the default place."""
    for dest, value in vars(args).items():
        values = value if isinstance(value, list) else [value]
        if any(isinstance(v, str) and not v.strip() for v in values):
            flag = f"--{dest.replace('_', '-')}"
            name = flag if any(a == flag or a.startswith(f"{flag}=") for a in argv) else dest.upper()
            raise DistillError(f"{name}: got an empty value; give a path or value (or leave it out)")


def _refuse_bad_device(args: argparse.Namespace) -> None:
    """``--device`` of predict, eval and profile: one line before any model is loaded, as ``train.device`` is."""
    name = getattr(args, "device", None)
    if isinstance(name, str):
        from distill.recipe.check import device_error

        if (problem := device_error(name, here=True)) is not None:
            raise DistillError(f"--device: {problem}")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:  # building the parser imports torch (seconds): a Ctrl-C there is a line, not a traceback from torch
        parser = build_parser()
        args = _parse(parser, argv)
    except KeyboardInterrupt:
        import shlex

        print(f"distill: interrupted while starting, nothing was done; start it again with: distill {shlex.join(argv)}",
              file=sys.stderr)  # fmt: skip
        return 130
    quiet.install(args.debug)  # libraries' warnings and INFO logs only with --debug (distill/quiet.py)
    try:
        _refuse_empty(args, argv)
        _refuse_bad_device(args)
        return int(args.fn(args))
    except DistillError as err:
        if args.debug:
            raise
        dist = sys.modules.get("distill.engine.distributed")  # imported only by commands that train
        rank = dist.rank() if dist is not None else 0
        print(f"distill: error: {'' if rank == 0 else f'[rank {rank}] '}{one_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:  # a signal during training saved a checkpoint (engine/interrupt.py)
        from distill.run.interrupted import interrupted_line  # imports no torch (whose import Ctrl-C may have cut)

        dist = sys.modules.get("distill.engine.distributed")
        if dist is None or dist.rank() == 0:
            print(
                interrupted_line(err, argv, getattr(args, "interrupt_hint", None), args.fn is _cmd_run), file=sys.stderr
            )
        return int(getattr(err, "exit_code", 130))
    finally:
        dist = sys.modules.get("distill.engine.distributed")
        if dist is not None:  # leave torchrun's process group cleanly
            dist.cleanup()


if __name__ == "__main__":
    sys.exit(main())
