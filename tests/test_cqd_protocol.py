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
from distill.recipe import load_recipe

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
