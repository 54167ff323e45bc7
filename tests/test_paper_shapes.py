"""benchmarks/paper_shapes.py: projections by hand, and (slow) one recipe per paper at paper shapes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks._common import readme_block, write_readme_block
from benchmarks.paper_shapes import PAPER_GLOBS, RECIPES, main, projection, real_items
from distill.recipe.check import load_recipe


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
                "eval_flops_per_item": {"test": 1e11}, "batch_size": 16}  # fmt: skip
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


def _row(recipe: str, **extra) -> dict:
    return {
        "recipe": recipe, "finished": "2026-11-25 19:00 UTC", "step_s": 2.0, "eval_s_per_item": {"test": 0.5},
        "batch_size": 16, "train_input": [3, 224, 224], "peak_rss_bytes": 2**31, "peak_cuda_bytes": None,
        "projection": {"steps": 100, "evaluations": 2, "eval_items": 10, "here_h": 1.0, "total_flops": 1e15},
        **extra,
    }  # fmt: skip


def test_saved_results_render_the_readme_block_and_a_rerun_keeps_what_was_measured(tmp_path, monkeypatch, capsys):
    import subprocess

    import benchmarks.paper_shapes as ps

    info = ps.machine_info("cpu") | {"threads": 1}
    rows = [_row("mrkd_tid"), _row("mrkd_kadid", disturbed="paused"), {"recipe": "cqd_cub_teacher", "error": "boom"}]
    (tmp_path / "results.json").write_text(json.dumps({"machine": info, "rows": rows}))
    readme = tmp_path / "README.md"
    readme.write_text("a\n<!-- readme-numbers:paper-shapes -->\nold\n<!-- /readme-numbers:paper-shapes -->\nb\n")
    monkeypatch.setattr(ps, "write_readme_block", lambda name, block: write_readme_block(name, block, readme))
    ps.main(["--from", str(tmp_path / "results.json"), "--readme"])
    block = readme_block(readme.read_text(), "paper-shapes")
    assert "| mrkd_tid | 16×3×224×224 | 2.0 | test 0.50 | 2.0 |" in block
    assert "| mrkd_kadid | 16×3×224×224 | completed; timing disturbed (paused)" in block
    assert "| cqd_cub_teacher | FAILED: boom |" in block and "3 recipes, 1 failed" in block
    # a run into the same --out keeps the clean row and measures only the disturbed and the failed ones again
    ran: list[str] = []

    def child(cmd, **kw):
        ran.append(Path(cmd[cmd.index("--one") + 1]).stem)
        row = _row(ran[-1])
        row.pop("recipe")
        return subprocess.CompletedProcess(cmd, 0, "PAPER_SHAPES_ROW " + json.dumps(row) + "\n", "")

    monkeypatch.setattr(ps.subprocess, "run", child)
    out = ps.main(["--recipes", "mrkd_tid,mrkd_kadid,cqd_cub_teacher", "--out", str(tmp_path), "--threads", "1"])
    assert ran == ["mrkd_kadid", "cqd_cub_teacher"]
    assert [r["recipe"] for r in out] == ["mrkd_tid", "mrkd_kadid", "cqd_cub_teacher"]
    saved = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert not any("disturbed" in r or "error" in r for r in saved)
    with pytest.raises(SystemExit):
        ps.main(["--recipes", "no_such_recipe", "--out", str(tmp_path)])


def test_coverage_counts_the_paper_recipes_and_names_the_missing_ones():
    from benchmarks.paper_shapes import coverage, paper_recipes

    every = paper_recipes()
    rows = [{"recipe": every[0]}, {"recipe": every[1], "error": "x"}, {"recipe": every[2], "disturbed": "paused"}]
    line = coverage(rows)
    assert line.startswith(f"Coverage: 3 of the {len(every)} paper recipes")
    assert "2 completed 2 steps and the evaluation (1 of them with disturbed timings), 1 failed" in line
    assert every[3] in line and every[0] not in line.split("Not measured here:")[1]
    assert coverage([{"recipe": n} for n in every]).endswith("None is missing.")


def test_an_out_of_memory_kill_is_measured_again_at_half_the_batch_and_said_so(tmp_path, monkeypatch):
    import subprocess

    import benchmarks.paper_shapes as ps

    batches: list[int | None] = []

    def child(cmd, **kw):  # batch 32 and 16 are killed by the kernel (SIGKILL), 8 fits
        batch = int(cmd[cmd.index("--batch") + 1]) if "--batch" in cmd else None
        batches.append(batch)
        if batch is None or batch > 8:
            return subprocess.CompletedProcess(cmd, -9, "", "UserWarning: meshgrid\n")
        row = _row("x", batch_size=batch)
        row.pop("recipe")
        return subprocess.CompletedProcess(cmd, 0, "PAPER_SHAPES_ROW " + json.dumps(row) + "\n", "")

    monkeypatch.setattr(ps.subprocess, "run", child)
    (row,) = ps.main(["--recipes", "cqd_cub_vgg16_teacher", "--out", str(tmp_path), "--threads", "1"])
    assert batches == [None, 16, 8]  # the recipe's batch is 32
    assert row["batch_size"] == 8 and row["recipe_batch_size"] == 32 and "error" not in row
    assert "batch 32 ran out of this" in row["memory_fallback"] and "scaled x4" in row["memory_fallback"]
    assert "(recipe batch 32 ran out of memory here; projections scaled to it)" in ps.markdown([row], 495, 0.3, {
        "threads": 1, "device": "cpu", "processor": "x", "cpu_count": 2, "torch": "t"})  # fmt: skip
    # killed at every batch down to 1: one line that says why, not the child's last warning
    monkeypatch.setattr(ps.subprocess, "run", lambda cmd, **kw: subprocess.CompletedProcess(cmd, -9, "", "warn\n"))
    (row,) = ps.main(["--recipes", "cqd_cub_vgg16_teacher", "--out", str(tmp_path), "--threads", "1", "--rerun"])
    assert row["error"].startswith("killed (SIGKILL: out of memory on this") and "killed" not in row


def test_projection_scales_a_smaller_measured_batch_to_the_recipes():
    recipe, _ = load_recipe(RECIPES / "cqd_cub_vgg16_teacher.yaml")  # batch 32
    measured = {"step_s": 1.0, "step_flops": 10.0, "eval_s_per_item": {"test": 0.0},
                "eval_flops_per_item": {"test": 0.0}}  # fmt: skip
    full = projection(recipe, {**measured, "batch_size": 32})
    half = projection(recipe, {**measured, "batch_size": 16})
    assert half["here_h"] == pytest.approx(2 * full["here_h"]) and half["total_flops"] == 2 * full["total_flops"]
