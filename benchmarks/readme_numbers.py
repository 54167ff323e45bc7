"""The README's quickstart numbers, regenerated from a fresh run: ``python -m benchmarks.readme_numbers [--check]``.

It runs ``recipes/quickstart.yaml`` exactly as README command 1 does, but with fresh synthetic data and a fresh run
folder in a temporary directory (what a fresh clone gets), with a fixed thread count, and writes the table between
the ``<!-- readme-numbers:quickstart -->`` and ``<!-- /readme-numbers:quickstart -->`` comments of README.md.
``--check`` rewrites nothing and exits 1 when the README differs from what the code produces. The numbers are
deterministic for a given torch build and thread count (both are written into the table's caption); run this
before submitting any change to the engine, data or recipes.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

from benchmarks._common import README, readme_block, write_readme_block

ROOT = Path(__file__).resolve().parent.parent
RECIPE = ROOT / "recipes" / "quickstart.yaml"
COLUMNS = (("srcc", "SRCC"), ("plcc", "PLCC"), ("plcc_logistic4", "PLCC (4-p logistic)"))


def quickstart_results(work: Path, threads: int) -> tuple[dict[str, Any], Any]:
    """Train the quickstart in ``work`` (fresh data, fresh run folder) and return its results and recipe."""
    from distill.build import run_recipe

    torch.set_num_threads(threads)
    data = work / "kadid10k_synthetic"
    overrides = [f"data.root={data}", f"data.synthetic.root={data}", "train.progress=false", "output.tensorboard=false"]
    run, result = run_recipe(RECIPE, overrides, work / "run")
    return result.results, run


def render_table(results: dict[str, Any], run: Any, threads: int) -> str:
    """The markdown block that goes between the markers."""
    recipe = run.recipe
    split = next(iter(results))
    by_role = results[split]
    ds = run.eval_sets[split]
    spec = recipe.data.eval[split].args
    n_types = len(recipe.data.synthetic.args.get("distortions") or []) if recipe.data.synthetic else 0
    rows = []
    for role, res in by_role.items():
        lr = recipe.optim[role].lr if role in recipe.optim else None
        label = f"{role} (lr {lr:g})" if lr is not None else role
        rows.append(f"| {label} | " + " | ".join(f"{res['overall'][m]:.3f}" for m, _ in COLUMNS) + " |")
    selection = "last" if recipe.eval.selection == "last" else f"best {recipe.eval.select_split}"
    split_mode = spec.get("split_mode", "by_reference")
    caption = (
        f"`recipes/quickstart.yaml`: synthetic KADID-10k layout ({recipe.data.synthetic.args.get('n_refs')} "
        f"references, {n_types} distortion types, objective pseudo-MOS), split `{split_mode}` "
        f"with split_seed {spec.get('split_seed', 0)}, seed {recipe.train.seed}, selection `{selection}`, "
        f"split '{split}' n = {len(ds)}; torch {torch.__version__}, {threads} thread{'s' if threads > 1 else ''}. "
        "Written by `python -m benchmarks.readme_numbers`."
    )
    header = "| model | " + " | ".join(title for _, title in COLUMNS) + " |"
    rule = "|---" * (len(COLUMNS) + 1) + "|"
    return "\n".join([caption, "", header, rule, *rows])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with README.md instead of rewriting it")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the numbers depend on it; default 2)")
    parser.add_argument("--readme", type=Path, default=README)
    parser.add_argument("--keep", type=Path, help="train in this folder and keep it (default: a temporary folder)")
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error("--threads must be at least 1")
    with tempfile.TemporaryDirectory(prefix="readme_numbers_") as tmp:
        results, run = quickstart_results(args.keep or Path(tmp), args.threads)
        block = render_table(results, run, args.threads)
    text = args.readme.read_text()
    if args.check:
        current = readme_block(text, "quickstart")
        if current != block:
            print(f"{args.readme}: the quickstart table differs from the code's. README has:\n{current}")
            print(f"\nthe code produces:\n{block}\n\nrun `python -m benchmarks.readme_numbers` to update it")
            return 1
        print(f"{args.readme}: the quickstart table matches the code")
        return 0
    write_readme_block("quickstart", block, args.readme)
    print(block)
    print(f"\nwrote {args.readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
