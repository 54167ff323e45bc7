"""The run folder's file names are spelled in one module (distill/run/layout.py), and the run caption names the
metric the selection really uses."""

from __future__ import annotations

import ast
import itertools
from pathlib import Path
from types import SimpleNamespace

from distill.build import Run
from distill.engine.selection import Selection
from distill.recipe.config import EvalConfig
from distill.run.layout import RunFolder

PACKAGE = Path(__file__).resolve().parent.parent / "distill"
NAMES = {"last.pt", "best_student.pt", "student.pt", "results.json", "metrics.jsonl", "report.html"}


def spelled_names(tree: ast.AST) -> list[str]:
    """String literals that are a run folder's file name, and f-strings that build a ``seed{k}`` folder."""
    found = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and n.value in NAMES]
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            parts = node.values
            for a, b in itertools.pairwise(parts):
                if isinstance(a, ast.Constant) and str(a.value).endswith("seed") and isinstance(b, ast.FormattedValue):
                    found.append("seed{…}")
    return found


def test_only_the_run_layout_spells_run_folder_file_names():
    spelled = {
        str(path.relative_to(PACKAGE)): names
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.parent.name != "run" and (names := spelled_names(ast.parse(path.read_text())))
    }
    assert spelled == {}


def test_the_name_check_finds_a_spelled_name():
    assert spelled_names(ast.parse('p = out / "checkpoints" / "last.pt"\nq = root / f"seed{k}"')) == [
        "last.pt",
        "seed{…}",
    ]


def test_run_folder_paths():
    run = RunFolder("runs/x")
    assert (run.last, run.best_student, run.student) == (
        Path("runs/x/checkpoints/last.pt"),
        Path("runs/x/checkpoints/best_student.pt"),
        Path("runs/x/student.pt"),
    )
    assert RunFolder.of_seed("runs/rep", 2).results == Path("runs/rep/seed2/results.json")
    assert "report/data.json" in RunFolder.files() and "checkpoints" in RunFolder.folders()


class _Split(list):
    is_synthetic, synthetic_note, root = False, "", "data/x"


def test_a_best_val_caption_names_the_metric_the_selection_uses():
    evaluation = EvalConfig(metrics=["srcc", "plcc"], selection="best_val", select_split="val")  # no select_metric
    recipe = SimpleNamespace(
        name="r",
        data=SimpleNamespace(eval={"test": SimpleNamespace(name="kadid10k", args={})}),
        eval=evaluation,
        train=SimpleNamespace(seed=0),
    )
    trainer = SimpleNamespace(selection=Selection(evaluation, "student"))
    split = _Split([0, 1, 2])
    caption = Run(recipe, {}, trainer, split, {"test": split}, Path("runs/r")).caption("test")  # type: ignore[arg-type]
    assert caption.endswith("selection: best val srcc")
