"""Using a distilled student: predict (CSV per image), export (checked against the checkpoint), reload."""

from __future__ import annotations

import csv
import importlib.util

import pytest
import torch

from distill.cli import main
from distill.deploy.model import load_deployable
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


@pytest.mark.parametrize("fmt", ["torchscript", "pt2"])
def test_an_export_that_does_not_reproduce_the_checkpoint_writes_nothing(run_dir, fmt, tmp_path, monkeypatch, capsys):
    import distill.deploy.model as deploy_model

    real_trace, real_export = deploy_model._trace, torch.export.export

    class Off(torch.nn.Module):  # what a broken exporter would hand back: the model, off by one
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, x):
            return self.model(x) + 1.0

    monkeypatch.setattr(deploy_model, "_trace", lambda model, example: real_trace(Off(model), example))
    monkeypatch.setattr(torch.export, "export", lambda model, args, **kw: real_export(Off(model), args, **kw))
    out = tmp_path / f"student.{fmt}"
    assert main(["export", str(run_dir / "run" / "student.pt"), "--format", fmt, "--out", str(out)]) == 2
    assert "differs from the checkpoint" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [], "no file (and no temporary) is left for a failed export"


@pytest.mark.skipif(importlib.util.find_spec("onnx") is not None, reason="onnx is installed")
def test_onnx_without_its_packages_says_what_to_install(run_dir, capsys):
    assert main(["export", str(run_dir / "run" / "student.pt"), "--format", "onnx"]) == 2
    assert "pip install onnx onnxruntime" in capsys.readouterr().err


@pytest.fixture()
def sr_student(tmp_path):
    from distill.build import build_model
    from distill.recipe.config import ComponentSpec
    from distill.run.checkpoint import MODEL_FORMAT

    torch.manual_seed(0)
    model = build_model(ComponentSpec("edsr", {"num_feat": 8, "num_block": 1, "upscale": 2}))
    path = tmp_path / "sr_student.pt"
    state = {k: v.detach() for k, v in model.state_dict().items()}
    torch.save({"format": MODEL_FORMAT, "role": "student", "model": model.distill_spec, "state_dict": state}, path)
    return path, model.eval()


def test_predict_with_an_sr_student_writes_one_upscaled_png_per_image(sr_student, tmp_path, capsys):
    from distill.data.images import load_rgb, save_rgb

    path, model = sr_student
    images = tmp_path / "lr"
    for i in range(3):
        save_rgb(torch.rand(3, 10 + i, 12), images / f"img{i}.png")
    out = tmp_path / "sr_out"
    assert main(["predict", str(path), str(images), "--out", str(out)]) == 0
    assert "one PNG per image" in capsys.readouterr().out
    written = sorted(out.iterdir())
    assert [p.name for p in written] == ["img0.png", "img1.png", "img2.png"]
    lr = load_rgb(images / "img1.png")
    sr = load_rgb(out / "img1.png")
    assert sr.shape == (3, 22, 24)  # x2
    expected = model(lr[None])[0].clamp(0, 1)
    assert (sr - expected).abs().max() <= 1 / 255 + 1e-6  # equal up to 8-bit rounding


def test_predict_sr_refuses_a_csv_target(sr_student, tmp_path, capsys):
    from distill.data.images import save_rgb

    path, _ = sr_student
    save_rgb(torch.rand(3, 8, 8), tmp_path / "a.png")
    assert main(["predict", str(path), str(tmp_path / "a.png"), "--out", str(tmp_path / "x.csv")]) == 2
    assert "writes images; give a folder" in capsys.readouterr().err


def test_export_of_an_sr_student_reproduces_it(sr_student, tmp_path):
    path, _ = sr_student
    assert main(["export", str(path), "--format", "torchscript", "--out", str(tmp_path / "sr.ts"), "--size", "16"]) == 0


def test_predict_without_out_writes_beside_its_input_never_into_the_current_folder(
    run_dir, sr_student, tmp_path, monkeypatch, capsys
):
    from distill.data.images import save_rgb

    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    images = run_dir / "kadid" / "images"
    assert main(["predict", str(run_dir / "run" / "student.pt"), str(images)]) == 0
    scores = run_dir / "kadid" / "images_scores.csv"
    assert f"wrote {scores}" in capsys.readouterr().out
    assert len(list(csv.DictReader(scores.open()))) == len(list(images.iterdir()))
    path, _ = sr_student
    save_rgb(torch.rand(3, 8, 8), tmp_path / "a.png")
    assert main(["predict", str(path), str(tmp_path / "a.png")]) == 0
    assert [p.name for p in (tmp_path / "a_x2").iterdir()] == ["a.png"]
    save_rgb(torch.rand(3, 8, 8), tmp_path / "b.png")
    assert main(["predict", str(path), str(tmp_path / "a.png"), str(tmp_path / "b.png")]) == 2
    assert "say where the predictions go with --out" in capsys.readouterr().err
    assert list(cwd.iterdir()) == []


def test_export_with_a_sample_size_the_model_cannot_take_is_one_clear_line(tmp_path, monkeypatch, capsys):
    import distill.deploy.model as deploy
    from distill.models.recognition.classification import vgg_m

    net = vgg_m(num_classes=4, width=0.1, fc_dim=16, pool=1).eval()  # a 7x7 stride-2 first conv, no padding
    monkeypatch.setattr(deploy, "load_deployable", lambda path: (net, None))
    code = main(["export", str(tmp_path / "student.pt"), "--size", "4", "--out", str(tmp_path / "m.ts")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "does not run on the 4x4 sample input" in err and "pass a larger --size" in err
    assert not (tmp_path / "m.ts").exists()


def test_predict_on_a_folder_says_which_entries_it_left_out(run_dir, tmp_path, caplog):
    import shutil

    folder = tmp_path / "mixed"
    folder.mkdir()
    images = sorted((run_dir / "kadid" / "images").iterdir())[:2]
    for image in images:
        shutil.copy(image, folder / image.name)
    (folder / "notes.txt").write_text("not an image")
    (folder / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (folder / f"._{images[0].name}").write_bytes(b"\0\5\26\7")  # macOS resource fork: an image suffix, no image
    (folder / "sub").mkdir()
    out = tmp_path / "scores.csv"
    assert main(["predict", str(run_dir / "run" / "student.pt"), str(folder), "--out", str(out)]) == 0
    assert [r["path"] for r in csv.DictReader(out.open())] == [str(folder / i.name) for i in images]
    err = caplog.text  # `distill` shows its loggers' warnings on stderr (distill/quiet.py)
    assert "left out 4 of the inputs' entries that are not image files" in err, err
    for name in ("notes.txt", ".DS_Store", f"._{images[0].name}", "sub/"):
        assert name in err, name


def _sideways_jpeg(path, upright):
    """``upright`` (uint8 [H, W, 3]) stored rotated 90° clockwise with EXIF Orientation 8, as phone cameras store a
    portrait shot: a viewer (and ``ImageOps.exif_transpose``) turns it back to ``upright``."""
    from PIL import Image

    stored = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_270)  # 90° clockwise
    exif = Image.Exif()
    exif[0x0112] = 8  # Orientation: rotate 90° counter-clockwise to view
    stored.save(path, format="JPEG", quality=100, subsampling=0, exif=exif.tobytes())
    return path


def _upright_image():
    import numpy as np

    h, w = 12, 20  # landscape: a sideways copy is portrait, so the orientation shows in the shape
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 12, y * 20, (x + y) * 6], axis=-1).astype(np.uint8)


def test_load_rgb_turns_an_exif_rotated_photo_upright_only_when_asked(tmp_path):
    from distill.data.images import load_rgb

    upright = _upright_image()
    path = _sideways_jpeg(tmp_path / "portrait.jpg", upright)
    assert load_rgb(path).shape == (3, 20, 12)  # dataset readers keep the stored pixels
    turned = load_rgb(path, exif_orientation=True)
    assert turned.shape == (3, 12, 20)
    expected = torch.from_numpy(upright).permute(2, 0, 1).float() / 255
    assert (turned - expected).abs().max() < 0.05  # JPEG at quality 100: equal up to coding noise


def test_predict_scores_and_upscales_photos_the_way_a_viewer_shows_them(sr_student, run_dir, tmp_path):
    from distill.data.images import load_rgb

    upright = _upright_image()
    photos = tmp_path / "photos"
    photos.mkdir()
    _sideways_jpeg(photos / "phone.jpg", upright)
    # SR: the upscaled PNG is upright (landscape), like the photo on screen
    path, model = sr_student
    assert main(["predict", str(path), str(photos / "phone.jpg"), "--out", str(tmp_path / "sr")]) == 0
    sr = load_rgb(tmp_path / "sr" / "phone.png")
    assert sr.shape == (3, 24, 40)
    expected = model(load_rgb(photos / "phone.jpg", exif_orientation=True)[None])[0].clamp(0, 1)
    assert (sr - expected).abs().max() <= 1 / 255 + 1e-6
    # IQA: the score is that of the upright image
    iqa, _ = load_deployable(run_dir / "run" / "student.pt")
    out = tmp_path / "scores.csv"
    assert main(["predict", str(run_dir / "run" / "student.pt"), str(photos / "phone.jpg"), "--out", str(out)]) == 0
    (row,) = list(csv.DictReader(out.open()))
    upright_score = iqa(load_rgb(photos / "phone.jpg", exif_orientation=True)[None]).item()
    assert float(row["score"]) == pytest.approx(upright_score, abs=1e-5)
