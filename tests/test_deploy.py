"""Using a distilled student: predict (CSV per image), export (checked against the checkpoint), reload."""

from __future__ import annotations

import csv
import importlib.util

import pytest
import torch

from distill.cli import main
from distill.deploy import load_deployable
from tests.test_mrkd_e2e import RECIPE, tiny


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("deploy")
    assert main(["run", RECIPE, "--out", str(tmp / "run"), *tiny(tmp, "train.epochs=1")]) == 0
    return tmp


def test_student_and_training_checkpoint_give_the_same_model(run_dir):
    a, _ = load_deployable(run_dir / "run" / "student.pt")
    b, _ = load_deployable(run_dir / "run" / "checkpoints" / "last.pt")
    x = torch.rand(3, 3, 48, 48)
    assert torch.equal(a(x), b(x)) and not a.training


def test_predict_writes_one_row_per_image(run_dir, capsys):
    images = run_dir / "kadid" / "images"
    out = run_dir / "scores.csv"
    assert (
        main(["predict", str(run_dir / "run" / "student.pt"), str(images), "--out", str(out), "--batch-size", "7"]) == 0
    )
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == len(list(images.iterdir()))
    model, _ = load_deployable(run_dir / "run" / "student.pt")
    from distill.data.images import load_rgb

    first = rows[0]
    assert float(first["score"]) == pytest.approx(model(load_rgb(first["path"])[None]).item(), abs=1e-5)


def test_predict_on_nothing_is_a_clear_error(run_dir, capsys):
    assert main(["predict", str(run_dir / "run" / "student.pt"), str(run_dir / "nope*.png")]) == 2
    assert "no such file, folder or glob match" in capsys.readouterr().err


@pytest.mark.parametrize("fmt", ["torchscript", "pt2"])
def test_export_reproduces_the_checkpoint(run_dir, fmt, capsys):
    out = run_dir / f"student.{fmt}"
    assert main(["export", str(run_dir / "run" / "student.pt"), "--format", fmt, "--out", str(out)]) == 0
    assert out.exists() and "max |difference|" in capsys.readouterr().out


@pytest.mark.skipif(importlib.util.find_spec("onnx") is not None, reason="onnx is installed")
def test_onnx_without_its_packages_says_what_to_install(run_dir, capsys):
    assert main(["export", str(run_dir / "run" / "student.pt"), "--format", "onnx"]) == 2
    assert "pip install onnx onnxruntime" in capsys.readouterr().err
