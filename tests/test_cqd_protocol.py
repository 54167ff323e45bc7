"""CQD as the authors' released MATLAB code ran it: learning-rate vector, last-layer multipliers, dropout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from distill.cli import main
from distill.distillers.cqd import CQD
from distill.distillers.supervised import Supervised
from distill.errors import RecipeError
from distill.models.recognition.classification import vgg_m
from distill.recipe.check import load_recipe

pytestmark = pytest.mark.usefixtures("one_thread")
RECIPES = Path(__file__).resolve().parent.parent / "recipes"
#: every paper-scale CUB recipe whose student is an ImageNet VGG (the multi-resolution router trains a predictor)
VGG_RECIPES = sorted(p.name for p in RECIPES.glob("cqd_cub_*.yaml") if p.name != "cqd_cub_multires.yaml")


def tiny_vgg(**kw) -> torch.nn.Module:
    return vgg_m(num_classes=4, width=0.1, fc_dim=16, pool=1, **kw)


@pytest.mark.parametrize("distiller", ["cqd", "supervised"])
def test_head_groups_split_the_last_layer_weight_and_bias_from_the_rest(distiller):
    student = tiny_vgg()
    models = {"student": student, **({"teacher": tiny_vgg()} if distiller == "cqd" else {})}
    d = CQD(models, head_groups=True) if distiller == "cqd" else Supervised(models, "cross_entropy", head_groups=True)
    groups = d.param_groups()
    assert set(groups) == {"student", "student_head_weight", "student_head_bias"}
    assert groups["student_head_weight"] == [student.classifier[6].weight]
    assert groups["student_head_bias"] == [student.classifier[6].bias]
    ids = [id(p) for g in groups.values() for p in g]
    assert len(ids) == len(set(ids)) and set(ids) == {id(p) for p in student.parameters()}
    plain = (CQD(models) if distiller == "cqd" else Supervised(models, "cross_entropy")).param_groups()
    assert set(plain) == {"student"}


def test_head_groups_on_a_model_without_a_last_layer_is_a_build_time_error():
    with pytest.raises(RecipeError, match=r"head_groups: the student model .* set head_groups: false"):
        Supervised({"student": torch.nn.Conv2d(3, 3, 1)}, "mse", head_groups=True)


@pytest.mark.parametrize("name", VGG_RECIPES)
def test_paper_cub_recipes_follow_the_official_training_protocol(name):
    recipe, _ = load_recipe(RECIPES / name)
    assert recipe.distiller.args["head_groups"] is True
    body, weight, bias = (recipe.optim[g] for g in ("student", "student_head_weight", "student_head_bias"))
    assert (body.lr, weight.lr / body.lr, bias.lr / body.lr) == (5e-4, pytest.approx(10), pytest.approx(20))
    assert (body.weight_decay, weight.weight_decay, bias.weight_decay) == (5e-4, 5e-4, 0.0)
    assert body.schedule == weight.schedule == bias.schedule
    assert body.schedule.name == "piecewise" and body.schedule.unit == "epoch" and recipe.train.epochs == 30
    assert all(g.optimizer == "sgd" and g.momentum == 0.9 for g in (body, weight, bias))
    assert recipe.models["student"].args["dropout"] == 0.5
    if recipe.models["student"].args.get("reset_head"):
        assert recipe.models["student"].args["head_init_std"] == 0.01  # initializeNetwork.m: fc8 ~ N(0, 0.01²)


def test_head_init_std_draws_the_new_last_layer_like_matconvnet_and_survives_a_reset_head_load(tmp_path):
    torch.manual_seed(0)
    donor = vgg_m(num_classes=10, width=0.125, fc_dim=512, pool=2)  # another head: reset_head drops it
    torch.save(donor.state_dict(), tmp_path / "donor.pt")
    torch.manual_seed(1)
    net = vgg_m(num_classes=200, width=0.125, fc_dim=512, pool=2, head_init_std=0.01,
                pretrained=str(tmp_path / "donor.pt"), reset_head=True)  # fmt: skip
    w, b = net.classifier[6].weight, net.classifier[6].bias
    assert w.std().item() == pytest.approx(0.01, rel=0.05) and w.mean().abs().item() < 1e-3
    assert torch.count_nonzero(b) == 0
    assert torch.equal(net.classifier[3].weight, donor.classifier[3].weight)  # the rest is the donor's
    default = vgg_m(num_classes=200, width=0.125, fc_dim=512, pool=2)
    assert default.classifier[6].weight.std().item() > 0.02  # PyTorch's default: U(±1/sqrt(512)), std 0.026
    with pytest.raises(ValueError, match="head_init_std must be a positive number"):
        vgg_m(num_classes=200, width=0.125, fc_dim=512, pool=2, head_init_std=-1.0)


def test_vgg_dropout_sits_after_fc6_and_fc7_and_drops_at_the_given_rate():
    net = tiny_vgg(dropout=0.5)
    drops = [i for i, m in enumerate(net.classifier) if isinstance(m, torch.nn.Dropout)]
    assert drops == [2, 5] and all(net.classifier[i].p == 0.5 for i in drops)
    net.train()
    x = torch.ones(1, 20000)
    kept = (net.classifier[2](x) != 0).float().mean().item()
    assert kept == pytest.approx(0.5, abs=0.02)


def test_piecewise_points_are_validated_before_training(tmp_path):
    sets = ["optim.student.schedule={name: piecewise, unit: epoch, points: [[5, 1.0], [2, 0.5]]}"]
    with pytest.raises(RecipeError, match=r"optim.student.schedule.points.*at ascending"):
        load_recipe(RECIPES / "cqd_quickstart_teacher.yaml", sets)


def test_engine_runs_the_head_groups_at_their_own_rates_on_the_piecewise_schedule(tmp_path):
    """Through the CLI and the real engine: each group's logged learning rate is its rate × the epoch's factor."""
    schedule = "{name: piecewise, unit: epoch, points: [[0, 1.0], [1, 0.5]]}"
    sets = [
        f"data.root={tmp_path / 'cub'}",
        f"data.synthetic.root={tmp_path / 'cub'}",
        "models.student.args={num_classes: 4, width: 0.1, fc_dim: 16, pool: 1, batch_norm: true}",
        "data.synthetic.args={n_classes: 4, n_train: 4, n_test: 2, size: [64, 64], seed: 0}",
        "train.epochs=2",
        "train.eval_every=2",
        "train.batch_size=8",
        "train.log_every=1",
        "train.progress=false",
        "output.tensorboard=off",
        "distiller.args.head_groups=true",
        f"optim.student={{optimizer: sgd, lr: 0.01, schedule: {schedule}}}",
        f"optim.student_head_weight={{optimizer: sgd, lr: 0.1, schedule: {schedule}}}",
        f"optim.student_head_bias={{optimizer: sgd, lr: 0.2, weight_decay: 0.0, schedule: {schedule}}}",
    ]
    out = tmp_path / "run"
    args = ["run", str(RECIPES / "cqd_quickstart_teacher.yaml"), "--out", str(out)]
    assert main([*args, *(a for s in sets for a in ("--set", s))]) == 0
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    lrs = [r["lr"] for r in records if "lr" in r]
    assert len(lrs) == 4  # 16 training images, batch 8: two steps per epoch, constant within the epoch
    for factor, lr in zip((1.0, 1.0, 0.5, 0.5), lrs):
        assert lr == pytest.approx({"student": 0.01 * factor, "student_head_weight": 0.1 * factor,
                                    "student_head_bias": 0.2 * factor})  # fmt: skip


# ------------------------------------------------------------------------------------------------ degradations
def test_tps_control_points_sit_at_the_official_8_16_224_pixels():
    from distill.data.recognition.degradations import _lattice

    lattice = _lattice(14, 224, 224, torch.float64)
    x_pixels = (lattice[:14, 0] + 1) * 224 / 2  # grid_sample frame → pixels from the left edge
    matlab_index = torch.arange(8, 225, 16, dtype=torch.float64)  # 8:16:224; pixel m's centre is at m - 0.5
    torch.testing.assert_close(x_pixels, matlab_index - 0.5)
    torch.testing.assert_close(lattice[::14, 1], lattice[:14, 0])  # the same rows as columns


def test_tps_samples_nearest_so_every_output_pixel_is_an_input_pixel():
    from distill.data.recognition.degradations import tps_warp

    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 64, 64, generator=g)
    warped = tps_warp(x, 14, 4.0, torch.Generator().manual_seed(1))
    inputs = {tuple(v.tolist()) for v in x[0].reshape(3, -1).T}
    assert all(tuple(v.tolist()) in inputs for v in warped[0].reshape(3, -1).T)
    assert not torch.equal(warped, x)
    smooth = tps_warp(x, 14, 4.0, torch.Generator().manual_seed(1), mode="bilinear")
    assert not all(tuple(v.tolist()) in inputs for v in smooth[0].reshape(3, -1).T)


def test_tps_view_keeps_the_crop_aspect_and_takes_the_top_left_square():
    from distill.data.recognition.degradations import build_degradation, crop_box, short_side_view

    img = torch.rand(3, 60, 90, generator=torch.Generator().manual_seed(0))
    box = (0.0, 0.0, 90.0, 30.0)  # a 3:1 crop
    identity = build_degradation("tps_distortion", {"sigma": 0.0})
    view = identity(img, box, 20, torch.Generator().manual_seed(0))
    expected = short_side_view(crop_box(img, box), 20)  # 30x90 → 20x60, first 20 columns
    assert view.shape == (3, 20, 20)
    torch.testing.assert_close(view, expected, atol=1e-6, rtol=0)
    squashed = build_degradation("tps_distortion", {"sigma": 0.0, "keep_aspect": False})(img, box, 20)
    assert not torch.allclose(squashed, view, atol=1e-2)
    assert "nearest" in identity.describe() and "shorter side" in identity.describe()


def _cub_with_edge_maps(tmp_path: Path, covers: str) -> tuple[Path, Path]:
    from PIL import Image

    from distill.data.recognition.synthetic import write_synthetic_cub

    root = tmp_path / "cub"
    write_synthetic_cub(root, n_classes=2, n_train=2, n_test=1, size=(48, 64), seed=0)
    edges = tmp_path / "edges"
    for i, img in enumerate(sorted((root / "images").rglob("*.jpg"))):
        rel = img.relative_to(root / "images")
        (edges / rel).parent.mkdir(parents=True, exist_ok=True)
        with Image.open(img) as im:
            w, h = im.size if covers == "image" else (31, 17)
        ramp = (torch.arange(w).float() * 255 / max(w - 1, 1)).round().to(torch.uint8).expand(h, w)
        Image.fromarray(((ramp.int() + i) % 256).to(torch.uint8).numpy(), mode="L").save(
            (edges / rel).with_suffix(".png")
        )
    return root, edges


@pytest.mark.parametrize("covers", ["image", "crop"])
def test_line_drawings_read_precomputed_edge_maps_of_the_image_or_the_crop(tmp_path, covers):
    from distill.data.images import load_rgb
    from distill.data.recognition.cub import CUB200
    from distill.data.recognition.degradations import crop_view, resize

    root, edges = _cub_with_edge_maps(tmp_path, covers)
    args = {"edge_dir": str(edges), "edge_dir_covers": covers}
    ds = CUB200(str(root), split="train", size=32, degradation="line_drawing", degradation_args=args, mode="single")
    item = ds[0]
    s = ds.samples[0]
    grey = load_rgb((edges / s.name).with_suffix(".png"))
    expected = resize(grey, 32) if covers == "crop" else crop_view(grey, s.box, 32)
    torch.testing.assert_close(item["input"], (expected * 255).round() / 255, atol=1 / 255, rtol=0)
    assert torch.equal(item["input"][0], item["input"][2])
    assert str(edges.resolve()) in ds.view_description("input")
    sobel = CUB200(str(root), split="train", size=32, degradation="line_drawing", mode="single")[0]["input"]
    assert not torch.allclose(sobel, item["input"], atol=0.05)  # the built-in default stays Sobel


def test_missing_edge_maps_fail_at_dataset_build_naming_a_file(tmp_path):
    from distill.data.recognition.cub import CUB200
    from distill.errors import DataError

    root, edges = _cub_with_edge_maps(tmp_path, "image")
    victim = next(edges.rglob("*.png"))
    victim.unlink()
    with pytest.raises(DataError, match=r"line_drawing: 1 of \d+ images have no edge map .* unset edge_dir"):
        CUB200(str(root), split="all", size=32, degradation="line_drawing", degradation_args={"edge_dir": str(edges)})
    with pytest.raises(DataError, match="is not a folder"):
        CUB200(str(root), split="all", size=32, degradation="line_drawing", degradation_args={"edge_dir": str(victim)})


def test_a_model_argument_the_model_refuses_is_a_recipe_error_naming_the_role():
    from distill.build import build_distiller

    recipe, _ = load_recipe(RECIPES / "cqd_quickstart_teacher.yaml", ["models.student.args.head_init_std=-1"])
    with pytest.raises(RecipeError, match=r"models\.student \(vgg_m\): head_init_std must be a positive number"):
        build_distiller(recipe)
