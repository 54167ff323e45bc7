"""benchmarks/paper_shapes.py: projections by hand, and (slow) one recipe per paper at paper shapes."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.paper_shapes import PAPER_GLOBS, RECIPES, main, projection, real_items
from distill.recipe import load_recipe


def test_every_paper_recipe_is_covered_and_sized_from_its_real_dataset():
    paths = sorted({p for g in PAPER_GLOBS for p in RECIPES.glob(g)})
    assert any("teacher" in p.name for p in paths) and len(paths) > 40
    for path in paths:
        recipe, _ = load_recipe(path)
        assert real_items(recipe.data.train.name, recipe.data.train.args) > 0, path.name
        assert all(real_items(s.name, s.args) > 0 for s in recipe.data.eval.values()), path.name


def test_projection_is_the_recipes_steps_and_evaluations_at_the_measured_rates():
    recipe, _ = load_recipe(RECIPES / "mrkd_tid.yaml")  # TID2013 by reference 80/20, batch 16, 20 epochs
    measured = {"step_s": 2.0, "step_flops": 1e12, "eval_s_per_item": {"test": 0.5},
                "eval_flops_per_item": {"test": 1e11}}  # fmt: skip
    p = projection(recipe, measured)
    steps = 20 * (2400 // 16)  # 3000 TID2013 images, 80 % train
    assert (p["steps"], p["evaluations"], p["eval_items"]) == (steps, 20, 600)
    assert p["here_h"] == pytest.approx((steps * 2.0 + 20 * 600 * 0.5) / 3600)
    assert p["total_flops"] == pytest.approx(steps * 1e12 + 20 * 600 * 1e11)
    sr, _ = load_recipe(RECIPES / "mipkd_edsr_x4.yaml")
    assert real_items(sr.data.train.name, sr.data.train.args) == 800 * 20  # DIV2K x repeat
    assert sum(real_items(s.name, s.args) for s in sr.data.eval.values()) == 5 + 14 + 100 + 100


@pytest.mark.slow
def test_one_recipe_per_paper_runs_two_steps_and_evaluation_at_paper_shapes(tmp_path: Path, capsys):
    names = ["mrkd_baseline_livec_resnet50.yaml", "mipkd_scratch_edsr_x4.yaml", "cqd_cub_finetune.yaml"]
    rows = main(["--recipes", ",".join(names), "--out", str(tmp_path), "--threads", "2"])
    assert [r["recipe"] for r in rows] == [n.removesuffix(".yaml") for n in names]  # in the order given
    for row in rows:
        assert "error" not in row, row
        assert row["step_s"] > 0 and row["peak_rss_bytes"] > 0 and row["projection"]["here_h"] > 0
        assert row["step_flops"] > 0 and all(v > 0 for v in row["eval_s_per_item"].values())
    by_name = {r["recipe"]: r for r in rows}
    assert by_name["mipkd_scratch_edsr_x4"]["train_input"] == [3, 48, 48]  # the recipe's LR patch
    assert (
        by_name["cqd_cub_finetune"]["train_input"] == [3, 224, 224] and by_name["cqd_cub_finetune"]["batch_size"] == 128
    )
    out = capsys.readouterr().out
    assert "PROJECTION" in out and "peak RSS GiB" in out
