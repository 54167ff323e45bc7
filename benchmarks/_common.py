"""What the benchmarks share: the machine description, a robust timer, and the table benchmarks' launcher wiring."""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from distill import quiet
from distill.experiments.sweep import RunSource, add_launcher_arguments, run_with_launcher
from distill.run.atomic import write_text

__all__ = [
    "README",
    "RESULTS_DIR",
    "add_launcher_arguments",
    "add_result_arguments",
    "block_file",
    "cpu_model",
    "engine_share",
    "machine_info",
    "machine_label",
    "median_seconds",
    "publish",
    "readme_block",
    "render_tables",
    "write_readme_block",
]

README = Path(__file__).resolve().parent.parent / "README.md"
#: Saved measurements (``--json`` files) that the README's and docs' blocks are rendered from.
RESULTS_DIR = Path(__file__).resolve().parent / "results"

#: What a comparison prints instead of a verdict when a side has a single seed (nothing to judge a difference by).
SMOKE_VERDICT = "smoke: not a result (one seed, so no spread to judge a difference against; use --seeds 2 or more)"


def cpu_model() -> str:
    """The CPU's model name (``model name`` of /proc/cpuinfo on Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name") and ":" in line:
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def machine_info(device: str = "cpu") -> dict[str, Any]:
    """Platform, CPU model and count, load, torch version and threads (and the GPU's name on CUDA) — printed and
    saved with every measurement, because a speed figure holds for the CPU that measured it."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_model": cpu_model(),
        "load_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "device": device,
    }
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name()
    return info


def machine_label(info: Mapping[str, Any]) -> str:
    """``AMD EPYC (x86_64, 2 CPUs)`` — the CPU a saved measurement ran on; results saved before the model name was
    recorded say so instead of guessing."""
    count = f", {info['cpu_count']} CPUs" if info.get("cpu_count") else ""
    if not info.get("cpu_model"):
        return f"an {info.get('processor', '?')} CPU, model not recorded{count.replace(',', ';', 1)}"
    return f"{info['cpu_model']} ({info.get('processor', '?')}{count})"


def median_seconds(fn: Callable[[], Any], repeats: int, warmup: int = 1, sync: bool = False) -> float:
    """Median wall time of ``fn()`` over ``repeats`` calls after ``warmup`` untimed ones."""
    times = []
    for i in range(warmup + repeats):
        if sync:
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if sync:
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def size_options(
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
    defaults: Mapping[str, float],
    quick: Mapping[str, float],
    minimum: Callable[[str], float] = lambda key: 0 if key == "warmup" else 1,
) -> dict[str, Any]:
    """The benchmark's size options: each given flag, else the ``--quick`` or default value; too small is an error.

    ``--threads`` is checked too (at least 1). Errors go through ``parser.error`` (usage line, exit status 2).
    """
    base = quick if args.quick else defaults
    values = {k: getattr(args, k) if getattr(args, k) is not None else v for k, v in base.items()}
    for key, value in [*values.items(), ("threads", args.threads)]:
        low = 1 if key == "threads" else minimum(key)
        if value < low:
            parser.error(f"--{key.replace('_', '-')} must be at least {low}, got {value}")
    return values


def render_tables(
    make_tables: Callable[[RunSource], Mapping[str, Callable[[], str]]],
    names: Sequence[str],
    args: argparse.Namespace,
) -> dict[str, str] | None:
    """Render the named tables of a table benchmark under the ``--launcher`` it was given.

    ``make_tables(source)`` builds a fresh benchmark that asks ``source`` for its runs (``run_repeats(...,
    source=source)``) and returns its table makers. Inline, each table prints as soon as its
    runs are done; under a sweep (``local``/``slurm``/``--collect-only``) the tables print once, built from the run
    folders after every run they need has finished (None: runs were submitted and are still running).
    """
    quiet.install(getattr(args, "debug", False))  # libraries' warnings only with --debug, ours once (distill/quiet.py)
    inline = args.launcher == "inline" and not args.collect_only

    def build(source: RunSource) -> dict[str, str]:
        makers = make_tables(source)
        printed: dict[str, str] = {}
        for name in names:
            printed[name] = makers[name]()
            if inline:
                print(printed[name], end="\n\n", flush=True)
        return printed

    printed = run_with_launcher(build, args)
    if printed is not None and not inline:
        for text in printed.values():
            print(text, end="\n\n", flush=True)
    return printed


# --------------------------------------------------------------------------------------------- README blocks
def _markers(name: str) -> tuple[str, str]:
    return f"<!-- readme-numbers:{name} -->", f"<!-- /readme-numbers:{name} -->"


def readme_block(text: str, name: str) -> str:
    """The text between README's ``<!-- readme-numbers:NAME -->`` markers ('' when they are missing)."""
    begin, end = _markers(name)
    match = re.search(re.escape(begin) + r"\n(.*?)\n" + re.escape(end), text, re.S)
    return match.group(1) if match else ""


def block_file(name: str) -> Path:
    """The page that holds the ``NAME`` markers: README.md or one of the docs/*.md pages it links to (README.md
    when none does), so that a block can move between pages without its writer changing."""
    begin, _ = _markers(name)
    for page in (README, *sorted((README.parent / "docs").glob("*.md"))):
        if begin in page.read_text():
            return page
    return README


def write_readme_block(name: str, block: str, readme: Path | None = None) -> Path:
    """Replace the text between the ``NAME`` markers by ``block`` (a benchmark's own output) in ``readme``, by default
    the page that holds them (:func:`block_file`); an error naming the markers when they are missing. Returns the
    page written."""
    readme = readme or block_file(name)
    begin, end = _markers(name)
    text = readme.read_text()
    pattern = re.compile(re.escape(begin) + r"\n.*?\n" + re.escape(end), re.S)
    if not pattern.search(text):
        raise SystemExit(f"{readme} has no {begin} ... {end} block to write")
    write_text(readme, pattern.sub(lambda _: f"{begin}\n{block}\n{end}", text, count=1))  # a kill keeps the page
    return readme


def engine_share(run: Callable[[], Any], steps: int) -> dict[str, float]:
    """The engine's own Python time per step in a cProfile'd ``run()`` (a ``Trainer.fit`` of ``steps`` iterations):
    the self time (``tottime``) of every function in ``distill/engine/`` — schedules, batch moving, loss stacking,
    checks, logging — not the model, the optimizer or the data. cProfile inflates Python time, so this is an upper
    bound on what the engine adds, and unlike a ratio of wall times it does not move with the machine's load."""
    import cProfile
    import pstats

    profile = cProfile.Profile()
    profile.enable()
    run()
    profile.disable()
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    engine = sum(v[2] for (path, _, _), v in stats.items() if "/distill/engine/" in path.replace("\\", "/"))
    total = sum(v[2] for v in stats.values())
    return {"engine_ms_per_step": engine / steps * 1e3, "profiled_ms_per_step": total / steps * 1e3}


# ------------------------------------------------------------------------------------------ saved results
def add_result_arguments(parser: argparse.ArgumentParser, several: bool = False) -> None:
    """``--json`` (save the run), ``--from`` (print a saved run instead of measuring; ``several``: one or more, e.g.
    one per machine) and ``--readme`` (write the result into README.md's block for this benchmark)."""
    parser.add_argument("--json", type=Path, help="write the results here too")
    if several:
        parser.add_argument("--from", dest="saved", type=Path, nargs="+", help="print saved --json files instead")
    else:
        parser.add_argument("--from", dest="saved", type=Path, help="print a saved --json file instead of measuring")
    parser.add_argument("--readme", action="store_true", help="write the result into README.md's block")
    add_force_argument(parser)


def add_force_argument(parser: argparse.ArgumentParser) -> None:
    """``--force``: replace an existing ``--json`` file, or put ``--out`` inside a run's folder."""
    parser.add_argument(
        "--force", action="store_true", help="replace an existing --json file (or write --out inside a run folder)"
    )


def guard_outputs(
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
    files: Sequence[str] = ("json",),
    folders: Sequence[str] = ("out",),
) -> None:
    """Before any measuring, :mod:`distill.run.safe_write` checks each ``--FILE`` (a new file, unless ``--force``) and
    ``--FOLDER`` (writable, outside other runs' folders; a benchmark's own folder is reused); a refusal is one line
    on stderr and exit status 2."""
    from distill.errors import DistillError
    from distill.run.safe_write import check_new_file, check_new_folder

    force = bool(getattr(args, "force", False))
    try:
        for name in files:
            if getattr(args, name, None) is not None and getattr(args, "saved", None) is None:
                check_new_file(getattr(args, name), f"--{name}", force=force)
        for name in folders:
            if getattr(args, name, None) is not None:
                check_new_folder(getattr(args, name), f"--{name}", force=force)
    except DistillError as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


def saved_result(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Any:
    """The ``--from`` file's results (a list of them when ``--from`` took several; None without ``--from``); a
    missing file is a usage error. Called right after parsing, it first checks the outputs (:func:`guard_outputs`)."""
    guard_outputs(parser, args)
    if args.saved is None:
        return None
    paths = args.saved if isinstance(args.saved, list) else [args.saved]
    for path in paths:
        if not path.is_file():
            parser.error(f"--from {path}: no such file")
    loaded = [json.loads(path.read_text()) for path in paths]
    return loaded if isinstance(args.saved, list) else loaded[0]


def publish(
    res: dict[str, Any],
    args: argparse.Namespace,
    name: str,
    report: Callable[[dict[str, Any]], str],
    markdown: Callable[[dict[str, Any]], str] | None = None,
) -> None:
    """Print ``report(res)``, save ``res`` to ``--json`` and, with ``--readme``, write README's ``name`` block:
    ``markdown(res)``, or the printed report itself in a text block."""
    text = report(res)
    print(text)
    if args.json is not None and args.saved is None:
        write_text(args.json, json.dumps(res, indent=2))
    if args.readme:
        module = f"benchmarks.{name.replace('-', '_')}"
        block = (
            markdown(res) if markdown else f"`python -m {module}` (written by its `--readme`):\n\n```text\n{text}\n```"
        )
        write_readme_block(name, block)
