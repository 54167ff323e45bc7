"""``distill eval``: a run's own split gives exactly its results.json; a zoo SR model prints the published number
beside ours; foreign folders and names are scored with the task's metrics; --json and --save-images."""

from __future__ import annotations

import json
import re
import sys
import types
from pathlib import Path

import pytest
import torch

from distill.cli import main
from distill.registry import WRITERS
from tests.test_mrkd_e2e import RECIPE, tiny


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("evalrun")
    assert main(["run", RECIPE, "--out", str(tmp / "run"), *tiny(tmp, "train.epochs=1")]) == 0
    return tmp


def test_eval_on_the_runs_own_split_equals_its_results_json(run_dir: Path, capsys: pytest.CaptureFixture) -> None:
    out = run_dir / "eval.json"
    capsys.readouterr()
    assert main(["eval", str(run_dir / "run"), "test", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    saved = json.loads((run_dir / "run" / "results.json").read_text())["results"]["test"]["student"]
    ours = json.loads(out.read_text())["datasets"][0]
    assert ours["origin"] == "the run's own split" and ours["n"] == saved["n"]
    assert ours["results"]["overall"] == saved["overall"]  # the same evaluator, data and weights: identical floats
    assert ours["results"]["groups"] == saved["groups"]
    assert f"{saved['overall']['srcc']:.4f}" in printed and "SYNTHETIC" in printed and "per distortion" in printed
    # --json never replaces a file unless asked
    assert main(["eval", str(run_dir / "run" / "student.pt"), "test", "--json", str(out)]) == 2
    assert "already exists; nothing was written" in capsys.readouterr().err
    assert main(["eval", str(run_dir / "run" / "student.pt"), "--json", str(out), "--force"]) == 0  # all splits


def test_eval_on_a_kadid_folder_scores_every_image_with_the_logistic_fits(run_dir: Path, capsys) -> None:
    capsys.readouterr()
    assert main(["eval", str(run_dir / "run"), str(run_dir / "kadid"), "--json", str(run_dir / "all.json")]) == 0
    res = json.loads((run_dir / "all.json").read_text())["datasets"][0]
    assert res["dataset"] == "kadid10k" and res["args"]["split"] == "all" and res["synthetic"]
    assert set(res["results"]["overall"]) == {"srcc", "plcc", "plcc_logistic4", "plcc_logistic5"}
    assert res["n"] == len(list((run_dir / "kadid" / "images").glob("I*_*_*.png")))


def test_eval_errors_are_one_line(run_dir: Path, capsys) -> None:
    student = str(run_dir / "run" / "student.pt")
    assert main(["eval", student, "nosuchsplit"]) == 2
    assert "not a split of the model's run (its splits: test)" in capsys.readouterr().err
    assert main(["eval", str(run_dir / "nothing.pt"), "test"]) == 2
    assert "no such model file or run folder" in capsys.readouterr().err
    assert main(["eval", f"{RECIPE}:nobody", "test"]) == 2
    assert "the recipe has no model 'nobody'; its models: teacher, student" in capsys.readouterr().err
    assert main(["eval", student, str(run_dir)]) == 2
    assert "no iqa reader opens it (kadid10k: " in capsys.readouterr().err
    assert main(["eval", student, "test", "--tile", "16"]) == 2
    err = capsys.readouterr().err  # the image tasks listed are the registered ones (the tests' toy task too)
    image_tasks = r"\((\w+, )*sr(, \w+)* models\)"
    assert re.search(rf"--tile is for models whose outputs are images {image_tasks}; .* is an iqa model", err)


@pytest.fixture()
def zoo_sr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, torch.nn.Module]:
    """A fake ``distill.models.zoo`` whose ``edsr_tiny_x2`` row resolves to a local model file."""
    from distill.build import build_model
    from distill.recipe.config import ComponentSpec
    from distill.run.checkpoint import MODEL_FORMAT

    torch.manual_seed(0)
    model = build_model(ComponentSpec("edsr", {"num_feat": 8, "num_block": 1, "upscale": 2})).eval()
    path = tmp_path / "edsr_tiny_x2.pt"
    state = {k: v.detach() for k, v in model.state_dict().items()}
    torch.save({"format": MODEL_FORMAT, "role": "student", "model": model.distill_spec, "state_dict": state}, path)
    row = types.SimpleNamespace(published={"Set5": {"psnr": 32.46, "ssim": 0.8968}, "source": "EDSR paper, Table 3"})
    fake = types.ModuleType("distill.models.zoo")
    fake.ZOO = {"edsr_tiny_x2": row}  # type: ignore[attr-defined]
    fake.resolve_zoo = lambda name, **kw: path  # type: ignore[attr-defined]
    fake.is_zoo_ref = lambda value: str(value).startswith("zoo:")  # type: ignore[attr-defined]
    import distill.models

    monkeypatch.setitem(sys.modules, "distill.models.zoo", fake)
    monkeypatch.setattr(distill.models, "zoo", fake, raising=False)
    WRITERS.build("sr_benchmark", out=str(tmp_path / "benchmark"), sets=["Set5", "Set14"], n_images=2,
                  size=[24, 20], scales=[2])  # fmt: skip
    return tmp_path, model


def test_eval_a_zoo_sr_model_prints_the_published_number_beside_ours(zoo_sr, capsys) -> None:
    from distill.data.images import load_rgb
    from distill.metrics.image import psnr
    from distill.models.sr import super_resolve

    tmp, model = zoo_sr
    bench = tmp / "benchmark"
    args = ["eval", "zoo:edsr_tiny_x2", str(bench / "Set5"), f"sr_benchmark:{bench / 'Set14'}"]
    assert main([*args, "--json", str(tmp / "z.json"), "--save-images", str(tmp / "sr")]) == 0
    printed = capsys.readouterr().out
    assert "psnr published" in printed and "32.4600" in printed and "published: EDSR paper, Table 3" in printed
    res = json.loads((tmp / "z.json").read_text())
    set5, set14 = res["datasets"]
    assert set5["published"] == {"psnr": 32.46, "ssim": 0.8968} and set14["published"] == {}
    assert set5["metric_args"]["psnr"] == {"crop_border": 2, "test_y_channel": True}
    # ours is BasicSR's Y-PSNR of the 8-bit output, image by image
    with torch.no_grad():
        values = []
        for name in ("img_001", "img_002"):
            lr = load_rgb(bench / "Set5" / "LR_bicubic" / "X2" / f"{name}x2.png")[None]
            hr = load_rgb(bench / "Set5" / "HR" / f"{name}.png")[None]
            out = super_resolve(model, lr)
            values.append(float(psnr(out, hr, crop_border=2, test_y_channel=True, quantize=True)))
            saved = load_rgb(tmp / "sr" / "Set5" / f"{name}.png")
            assert torch.allclose(saved, (out[0].clamp(0, 1) * 255).round() / 255, atol=1e-6)
    assert set5["results"]["overall"]["psnr"] == pytest.approx(sum(values) / 2, abs=1e-9)
    # tiled evaluation is close to the whole-image one; the same --save-images folder is refused
    assert main([*args[:3], "--tile", "8", "--tile-overlap", "2", "--json", str(tmp / "t.json")]) == 0
    tiled = json.loads((tmp / "t.json").read_text())["datasets"][0]["results"]["overall"]["psnr"]
    assert tiled == pytest.approx(set5["results"]["overall"]["psnr"], abs=1.0)
    assert main([*args[:3], "--save-images", str(tmp / "sr")]) == 2
    assert "is not empty" in capsys.readouterr().err


def test_eval_a_recipe_role_on_a_recipe_split(run_dir: Path, capsys) -> None:
    recipe = run_dir / "mine.yaml"
    recipe.write_text(f"_base_: [{RECIPE}]\ndata: {{root: {run_dir / 'kadid'}}}\n")
    out = run_dir / "role.json"
    assert main(["eval", f"{recipe}:teacher", f"{recipe}:test", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["model"] == f"{recipe}:teacher" and res["datasets"][0]["origin"] == f"recipe {recipe}"
    saved = json.loads((run_dir / "run" / "results.json").read_text())["results"]["test"]["student"]
    assert res["datasets"][0]["n"] == saved["n"]  # the same split as the run's (the recipe's split args)
    assert set(res["datasets"][0]["results"]["overall"]) == set(saved["overall"])  # the recipe's metrics
