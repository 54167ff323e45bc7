"""An undefined metric (NaN in memory, ``null`` in a file) reads n/a in every table, figure and page, and the report
page names runs and draws curves so that nothing is hidden or repeated."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from distill.engine.run_log import format_metric
from distill.experiments.repeats import Aggregate, aggregate
from distill.report import html as html_report
from distill.report.groups import hardest_and_easiest, plot_per_distortion
from distill.report.tables import fmt, group_table, metric_cell, overall_table
from distill.run.values import as_float, is_defined

pytest.importorskip("matplotlib")

GROUPS = {"01": {"srcc": 0.5, "n": 4}, "02": {"srcc": None, "n": 1}, "03": {"srcc": -0.2, "n": 4}}


def test_values_read_back_from_files_become_floats():
    assert math.isnan(as_float(None)) and math.isnan(as_float("n/a")) and math.isnan(as_float(True))
    assert as_float("inf") == math.inf and as_float(0.25) == 0.25 and as_float(3) == 3.0
    assert not is_defined(None) and not is_defined(math.inf) and is_defined(0.0)


def test_every_text_formatter_says_n_a():
    assert format_metric("srcc", None) == format_metric("psnr", math.nan) == format_metric("top1", None) == "n/a"
    assert fmt(None) == fmt(math.nan) == "n/a" and metric_cell("top1", None) == "n/a"
    assert Aggregate([math.nan]).format() == "n/a (n=0)"
    res = {"student": {"overall": {"srcc": None}, "n": 3, "groups": GROUPS}}
    assert "n/a" in overall_table(res, "test") and "n/a" in group_table(res, ["srcc"])
    runs = [{"results": {"test": res}}, {"results": {"test": res}}]
    assert aggregate(runs, "test", "student", "srcc", group="02").cell() == "no finite value (n=0, 2 NaN)"


def test_hardest_and_easiest_skip_undefined_groups():
    assert hardest_and_easiest(GROUPS, "srcc", 1) == (["03"], ["01"])


def _history(steps: list[int], groups: dict) -> list[dict]:
    return [{"split": "test", "step": s, "results": {"student": {"groups": groups}}} for s in steps]


def test_fig1_plot_takes_undefined_values_and_needs_two_evaluations(tmp_path):
    path = plot_per_distortion(_history([1, 2], GROUPS), "test", tmp_path / "a.png", roles=("student",))
    assert path is not None and path.read_bytes()[:4] == b"\x89PNG"
    assert plot_per_distortion(_history([1], GROUPS), "test", tmp_path / "b.png", roles=("student",)) is None
    assert not (tmp_path / "b.png").exists()  # one evaluation has no spread: no one-point violins


def _run_folder(path: Path, name: str, evals: list[int], groups: dict, losses: dict[str, list[float]]) -> Path:
    path.mkdir(parents=True)
    (path / "recipe.yaml").write_text(f"name: {name}\n")
    records = [{"kind": "train", "step": i + 1, "loss": {k: v[i] for k, v in losses.items()}} for i in range(3)]
    overall = {"srcc": None, "plcc": 0.5}
    result = {"student": {"overall": overall, "n": 9, "groups": groups}}
    records += [{"kind": "eval", "split": "test", "step": s, "results": result} for s in evals]
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (path / "results.json").write_text(json.dumps({"results": {"test": result}}))
    return path


def test_a_report_with_undefined_metrics_renders_and_says_n_a(tmp_path):
    losses = {"student": [1.0, 0.8, 0.6], "total": [1.0, 0.8, 0.6]}
    run = _run_folder(tmp_path / "a", "qs", [3], GROUPS, losses)
    page = html_report.render([run])
    assert "n/a" in page and page.count("<h1>qs</h1>") == 1 and "<h2>" not in page  # the name once
    assert "one evaluation (step 3)" in page and "needs several evaluations" in page
    assert page.count("<img") == 2  # the loss curves and the bars; no one-point curve, no one-point violins


def test_runs_of_one_recipe_are_told_apart_by_their_folders(tmp_path):
    losses = {"a": [1.0, 0.8, 0.6], "total": [2.0, 1.5, 1.0]}
    a = _run_folder(tmp_path / "x" / "seed0", "mrkd_tid", [1, 3], GROUPS, losses)
    b = _run_folder(tmp_path / "x" / "seed1", "mrkd_tid", [1, 3], GROUPS, losses)
    c = _run_folder(tmp_path / "y", "other", [1, 3], GROUPS, losses)
    page = html_report.render([a, b])
    assert "<h1>mrkd_tid: seed0, seed1</h1>" in page and "mrkd_tid vs mrkd_tid" not in page
    assert "<h2>seed0</h2>" in page and "<h2>seed1</h2>" in page
    assert "<h1>mrkd_tid (seed0) vs other vs mrkd_tid (seed1)</h1>" in html_report.render([a, c, b])


def test_a_loss_term_equal_to_the_total_is_named_in_the_total_not_drawn_under_it():
    same = [{"kind": "train", "step": i, "loss": {"student": v, "total": v}} for i, v in enumerate([3.0, 2.0])]
    assert list(html_report._loss_series(same)) == ["total (= student)"]
    apart = [{"kind": "train", "step": i, "loss": {"a": v, "b": 1.0, "total": v + 1}} for i, v in enumerate([3.0, 2])]
    assert list(html_report._loss_series(apart)) == ["a", "b", "total"]
