"""MiPKD benchmarks stay runnable: the smoke tables through the real recipes, and the step-cost probe."""

from __future__ import annotations

import json

import pytest
import yaml

from benchmarks.mipkd_step_cost import main as step_cost
from benchmarks.mipkd_tables import ABLATIONS, METHODS
from benchmarks.mipkd_tables import main as mipkd_tables

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.filterwarnings("ignore:torch.meshgrid")]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    return out, mipkd_tables(["--scale", "smoke", "--out", str(out)])


def test_smoke_main_table_has_the_paper_shape_and_says_where_numbers_come_from(smoke):
    _, printed = smoke
    assert set(printed) == {"main", "ablation", "cost"}
    main = printed["main"]
    lines = main.splitlines()
    for label in ("teacher", "scratch", "logits KD", "FitNet", "AT", "FAKD", "MiPKD"):
        assert any(line.startswith(f"{label} ") for line in lines), label
    for name in ("Set5", "Set14", "B100", "Urban100"):
        assert f"{name} PSNR" in main and f"{name} SSIM" in main
    assert "SYNTHETIC" in main and "seeds [0]" in main and "selection: last" in main and "crop_border 2" in main
    # only the published number with a source (S1: MiPKD EDSR x2 Urban100) beside ours, nothing derived
    assert "[32.56]" in main and "[31.96]" not in main and "[n/a]" in main and "[S1]" in main
    assert "rounded to 8 bits first (BasicSR validation, tensor2img)" in main
    assert "MiPKD vs logits KD and scratch: smoke: not a result" in main and "PSNR difference" not in main
    assert "(n=1)" in main and "±0.00" not in main


def test_published_table_prints_every_sourced_row_with_its_source(capsys, tmp_path):
    from benchmarks.mipkd_tables import published_s3

    rows = published_s3()
    assert set(rows) == {(b, s) for b in ("SwinIR", "RCAN") for s in (2, 3, 4)}
    printed = mipkd_tables(["--scale", "smoke", "--out", str(tmp_path), "--tables", "published"])["published"]
    assert "DCKD, arXiv 2412.08939, Table 2" in printed
    for (backbone, scale), methods in rows.items():
        mipkd = methods["mipkd"]["Urban100"]
        assert f"{mipkd[0]:.2f}/{mipkd[1]:.4f}" in printed and f"{backbone} x{scale}" in printed


def test_float_scoring_option_reaches_every_run(tmp_path):
    from benchmarks.mipkd_tables import SCALES, Bench

    default = Bench(SCALES["smoke"], 1, tmp_path, None, None).common()
    floats = Bench(SCALES["smoke"], 1, tmp_path, None, None, float_scoring=True)
    assert not any("quantize" in s for s in default)
    assert {"eval.metric_args.psnr.quantize=false", "eval.metric_args.ssim.quantize=false"} <= set(floats.common())
    assert "float outputs scored unrounded" in floats.caption("t")


def test_smoke_ablation_and_cost_tables(smoke):
    _, printed = smoke
    for m in ABLATIONS.values():
        assert m.label in printed["ablation"]
    cost = printed["cost"]
    assert "teacher" in cost and "student" in cost and "params ×↓ vs teacher" in cost and "FLOPs" in cost


def test_smoke_runs_are_the_recipes_and_are_reused(smoke):
    out, printed = smoke
    expected = {"data", "teacher", *METHODS, *(k for k in ABLATIONS if k != "mipkd")}
    assert {p.name for p in out.iterdir() if p.is_dir()} == expected  # the ablation's "both" reuses the MiPKD runs
    distillers = {
        k: yaml.safe_load((out / k / "seed0" / "recipe.yaml").read_text())["distiller"] for k in expected - {"data"}
    }
    assert distillers["teacher"]["name"] == "sr_supervised" and distillers["mipkd"]["name"] == "mipkd"
    assert (
        distillers["fpm_only"]["args"]["block_mixer"] is False
        and distillers["mask_spatial"]["args"]["mask"] == "spatial"
    )
    teacher = yaml.safe_load((out / "mipkd" / "seed0" / "recipe.yaml").read_text())["models"]["teacher"]["args"]
    assert teacher["pretrained"] == str(out / "teacher" / "seed0" / "student.pt")
    stamp = (out / "mipkd" / "seed0" / "results.json").stat().st_mtime_ns
    again = mipkd_tables(["--scale", "smoke", "--out", str(out), "--tables", "main"])
    assert (out / "mipkd" / "seed0" / "results.json").stat().st_mtime_ns == stamp
    assert again["main"] == printed["main"]
    assert json.loads((out / "tables.json").read_text()) == again


def test_paper_scale_fails_fast_without_the_real_data(tmp_path):
    with pytest.raises(SystemExit, match="needs --data DIR"):
        mipkd_tables(["--scale", "paper", "--out", str(tmp_path / "o")])
    with pytest.raises(SystemExit, match=r"missing .*DIV2K_train_HR.*Unpack"):
        mipkd_tables(["--scale", "paper", "--out", str(tmp_path / "o"), "--data", str(tmp_path)])


def test_step_cost_quick_measures_both_steps_in_one_run(capsys):
    res = step_cost(["--quick", "--threads", "1"])
    assert res["s_per_step"]["mipkd"]["median"] > 0 and res["s_per_step"]["logits_kd"]["median"] > 0
    assert res["time_ratio"] == pytest.approx(
        res["s_per_step"]["mipkd"]["median"] / res["s_per_step"]["logits_kd"]["median"]
    )
    memory = res["peak_memory_bytes"]
    assert memory["mipkd"] > memory["logits_kd"] > 0  # the mixers' activations and helper state cost memory
    assert set(res["trainable_params"]["mipkd"]) == {"student", "helpers"}
    assert res["trainable_params"]["mipkd"]["student"] == res["trainable_params"]["logits_kd"]["student"]
    assert "time ratio" in capsys.readouterr().out
