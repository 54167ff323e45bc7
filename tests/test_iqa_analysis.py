"""Hard/easy distortion selection, the Fig. 1 plot, and the N-seed repeat runner."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import pytest

from distill.experiments.repeats import Aggregate, aggregate, collect_repeats, run_repeats, split_overrides
from distill.report.groups import hardest_and_easiest, plot_per_distortion, rank_groups
from tests.test_mrkd_e2e import RECIPE, tiny

GROUPS = {
    "01": {"srcc": 0.9, "plcc": 0.8},
    "02": {"srcc": 0.1, "plcc": 0.2},
    "11": {"srcc": math.nan, "plcc": math.nan},
    "20": {"srcc": -0.3, "plcc": 0.0},
    "22": {"srcc": 0.95, "plcc": 0.9},
}


def test_hardest_and_easiest_ignore_nan_groups():
    assert [k for k, _ in rank_groups(GROUPS)] == ["20", "02", "01", "22"]
    assert hardest_and_easiest(GROUPS, "srcc", 2) == (["20", "02"], ["22", "01"])
    assert hardest_and_easiest(GROUPS, "plcc", 1) == (["20"], ["22"])


def test_per_distortion_plot_is_written(tmp_path):
    pytest.importorskip("matplotlib")
    history = [
        {"split": "test", "step": s, "results": {r: {"groups": GROUPS} for r in ("teacher", "student")}}
        for s in (1, 2, 3)
    ]
    path = plot_per_distortion(history, "test", tmp_path / "fig1.png", names={"01": "gaussian_blur"})
    assert path is not None and path.stat().st_size > 1000 and path.read_bytes()[:4] == b"\x89PNG"


def test_aggregate_matches_statistics():
    agg = Aggregate([0.5, 0.7, 0.6, math.nan])
    assert agg.mean == pytest.approx(0.6) and agg.median == pytest.approx(0.6)
    assert agg.std == pytest.approx(statistics.stdev([0.5, 0.7, 0.6]))
    assert str(agg) == "0.6000 ± 0.1000"
    one = Aggregate([0.5, math.nan])  # one seed has no spread: say so instead of printing "± 0.0000"
    assert one.n == 1 and str(one) == "0.5000 (n=1)" and one.format(1, scale=100) == "50.0 (n=1)"


def test_split_overrides_vary_train_and_split_seeds():
    sets = split_overrides(RECIPE, 3, vary_split=True)
    assert sets == ["train.seed=3", "data.train.args.split_seed=3", "data.eval.test.args.split_seed=3"]
    assert split_overrides(RECIPE, 3, vary_split=False) == ["train.seed=3"]


def test_repeats_run_each_seed_once_and_aggregate(tmp_path):
    sets = [s for s in tiny(tmp_path, "train.epochs=1") if s != "--set"]
    runs = run_repeats(RECIPE, [0, 1], tmp_path / "rep", sets)
    assert [r["seed"] for r in runs] == [0, 1]
    first = Path(tmp_path / "rep" / "seed0" / "results.json").stat().st_mtime_ns
    again = run_repeats(RECIPE, [0, 1], tmp_path / "rep", sets)  # finished repeats are reused, not retrained
    assert Path(tmp_path / "rep" / "seed0" / "results.json").stat().st_mtime_ns == first
    assert again == runs
    agg = aggregate(runs, "test", "student", "srcc")
    assert len(agg.values) == 2 and agg.mean == pytest.approx(statistics.fmean(agg.values))
    seed1 = runs[1]["results"]["test"]["student"]["n"]
    assert seed1 > 0


def test_aggregate_cells_say_what_they_rest_on():
    assert Aggregate([0.5, 0.7, 0.6, math.nan]).cell() == "0.6000 ± 0.1000 (n=3, 1 NaN)"
    assert Aggregate([0.5, 0.7, 0.6, math.inf]).nonfinite == 1
    assert Aggregate([0.5, 0.7, 0.6]).cell("median") == "median 0.6000 (n=3)"
    assert Aggregate([0.25]).cell() == "0.2500 (n=1)"
    assert Aggregate([math.nan, math.nan]).cell() == "no finite value (n=0, 2 NaN)"


def test_collect_repeats_lists_failed_repeats_instead_of_dropping_them(tmp_path):
    import json

    from distill.errors import NonFiniteLossError
    from distill.experiments.sweep import INLINE, RunSpec

    class FakeRuns:  # a run source: seed 1 diverges, the others finish (no training)
        def reuse(self, out: Path) -> dict:
            return INLINE.reuse(out)

        def run(self, spec: RunSpec) -> dict:
            if "train.seed=1" in spec.overrides:
                raise NonFiniteLossError(7, "student/mse", math.nan)
            seed = int(next(s for s in spec.overrides if s.startswith("train.seed=")).split("=")[1])
            spec.out.mkdir(parents=True)
            (spec.out / "results.json").write_text(
                json.dumps({"results": {"test": {"student": {"overall": {"srcc": seed}}}}})
            )
            return INLINE.reuse(spec.out)

    rep = collect_repeats(RECIPE, [0, 1, 2], tmp_path / "rep", vary_split=False, source=FakeRuns())
    assert [r["seed"] for r in rep.runs] == [0, 2] and rep.n == 2
    assert [f.seed for f in rep.failures] == [1]
    (line,) = rep.failure_lines("mrkd_tid")
    assert line.startswith("mrkd_tid seed 1: non-finite loss at step 7: term 'student/mse' = nan")
    assert aggregate(rep.runs, "test", "student", "srcc").cell() == "1.0000 ± 1.4142 (n=2)"


def test_collect_repeats_records_real_errors_of_every_seed(tmp_path):
    sets = [f"data.root={tmp_path / 'missing'}", "data.synthetic=null"]
    rep = collect_repeats(RECIPE, [0, 1], tmp_path / "rep", sets)
    assert rep.runs == [] and [f.seed for f in rep.failures] == [0, 1]
    assert all("does not exist" in f.error for f in rep.failures)
