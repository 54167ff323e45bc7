"""SR baselines: FitNet / AT / FAKD losses against hand-computed values, the baseline distillers, and the recipes."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from distill.distillers import SRFAKD, SRAttention, SRFitNet, SRLogitsKD, SRSupervised
from distill.losses.feature import attention_map, attention_transfer, fakd, fitnet, spatial_affinity
from distill.models.sr import edsr, swinir
from distill.recipe.check import load_recipe
from distill.registry import LOSSES

RECIPES = Path(__file__).parent.parent / "recipes"
pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.filterwarnings("ignore:torch.meshgrid")]


def feats(*channels: list[float]) -> torch.Tensor:
    """A 1×C×1×W feature from per-channel rows."""
    return torch.tensor(channels, dtype=torch.float64).view(1, len(channels), 1, -1)


# ------------------------------------------------------------------------------------------------------- losses
def test_losses_are_registered():
    assert {"fitnet", "attention_transfer", "fakd"} <= set(LOSSES.names())


def test_fitnet_is_the_mean_squared_hint_error():
    s = torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, 1, 2, 2)
    assert fitnet(s, torch.zeros_like(s)).item() == pytest.approx((1 + 4 + 9 + 16) / 4)
    with pytest.raises(ValueError, match="differ in shape"):
        fitnet(torch.zeros(1, 2, 2, 2), torch.zeros(1, 3, 2, 2))


def test_attention_transfer_matches_hand_computed_maps():
    student = feats([1, 1], [1, 1])  # mean_c F² = [1, 1] -> [1/√2, 1/√2]
    teacher = feats([0, 3], [0, 4])  # mean_c F² = [0, 12.5] -> [0, 1]
    assert torch.allclose(attention_map(student), torch.tensor([[0.5**0.5, 0.5**0.5]], dtype=torch.float64))
    assert torch.allclose(attention_map(teacher), torch.tensor([[0.0, 1.0]], dtype=torch.float64))
    # ((1/√2 − 0)² + (1/√2 − 1)²) / 2 = 1 − 1/√2
    assert attention_transfer(student, teacher).item() == pytest.approx(1 - 1 / math.sqrt(2))
    # width-agnostic: a 3-channel student against the 2-channel teacher
    assert attention_transfer(feats([1, 0], [1, 0], [1, 0]), teacher).item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="batch or spatial size"):
        attention_transfer(torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 2, 3))


def test_fakd_compares_cosine_affinities_of_positions():
    student = feats([1, 0], [0, 1])  # positions (1,0) and (0,1): orthogonal -> identity affinity
    teacher = feats([2, 5], [0, 0], [0, 0])  # positions (2,0,0), (5,0,0): parallel -> all-ones affinity
    assert torch.allclose(spatial_affinity(student), torch.eye(2, dtype=torch.float64).unsqueeze(0))
    assert torch.allclose(spatial_affinity(teacher), torch.ones(1, 2, 2, dtype=torch.float64))
    assert fakd(student, teacher).item() == pytest.approx(0.5)  # |A_S − A_T| = [[0, 1], [1, 0]]
    assert fakd(teacher * 7, teacher).item() == pytest.approx(0.0, abs=1e-6)  # scale-invariant (up to eps)


# -------------------------------------------------------------------------------------------------- distillers
def pair() -> dict:
    torch.manual_seed(0)
    return {"teacher": edsr(num_feat=16, num_block=4, upscale=2), "student": edsr(num_feat=8, num_block=2, upscale=2)}


BATCH = {"input": torch.rand(2, 3, 6, 6), "target": torch.rand(2, 3, 12, 12)}


def test_fitnet_baseline_trains_student_and_adapters_not_the_teacher():
    d = SRFitNet(pair(), num_stages=2, feat_weight=0.5, kd_weight=2.0).train()
    groups = d.param_groups()
    assert set(groups) == {"student", "helpers"} and len(d.adapters) == 2
    assert [a.weight.shape for a in d.adapters] == [(16, 8, 1, 1)] * 2
    terms = d.training_step(BATCH)
    with torch.no_grad():
        _, _, f_t = d.views["teacher"].features(BATCH["input"])
        y_t = d.models["teacher"](BATCH["input"])
    y_s, _, f_s = d.views["student"].features(BATCH["input"])
    feat = sum(F.mse_loss(d.adapters[k](f_s[k] / 255), f_t[k] / 255) for k in range(2))
    assert torch.allclose(terms["feat"], 0.5 * feat) and torch.allclose(terms["kd"], 2 * F.l1_loss(y_s, y_t))
    assert torch.allclose(terms["task"], F.l1_loss(y_s, BATCH["target"]))
    sum(terms.values()).backward()
    assert all(p.grad is not None for g in groups.values() for p in g)
    assert all(p.grad is None and not p.requires_grad for p in d.models["teacher"].parameters())
    assert d.deployable() is d.models["student"]


@pytest.mark.parametrize(("cls", "loss"), [(SRAttention, attention_transfer), (SRFAKD, fakd)])
def test_width_agnostic_baselines_need_no_helpers(cls, loss):
    d = cls(pair(), num_stages=2)
    assert set(d.param_groups()) == {"student"}
    terms = d.training_step(BATCH)
    assert set(terms) == {"task", "feat"}  # kd_weight 0 by default: the method alone
    with torch.no_grad():
        _, _, f_t = d.views["teacher"].features(BATCH["input"])
        _, _, f_s = d.views["student"].features(BATCH["input"])
    expected = d.feat_weight * sum(loss(s / 255, t / 255) for s, t in zip(f_s, f_t))
    assert torch.allclose(terms["feat"], expected)
    assert SRAttention(pair(), num_stages=2).feat_weight == 1000.0  # β = 10³


def test_logits_kd_and_scratch_use_l1_on_sr_outputs():
    models = pair()
    d = SRLogitsKD(models, weight=0.3)
    terms = d.training_step(BATCH)
    with torch.no_grad():
        t = models["teacher"](BATCH["input"])
    s = models["student"](BATCH["input"])
    assert torch.allclose(terms["task"], F.l1_loss(s, BATCH["target"]))
    assert torch.allclose(terms["kd"], 0.3 * F.l1_loss(s, t))
    scratch = SRSupervised({"student": models["student"]})
    assert set(scratch.training_step(BATCH)) == {"task"} and scratch.roles == ("student",)


def test_every_sr_distiller_evaluates_window_models_on_any_image_size():
    torch.manual_seed(0)
    net = swinir(embed_dim=8, depths=[1], num_heads=[2], window_size=4, upscale=2, img_size=8)
    out = SRSupervised({"student": net}).eval().eval_outputs({"input": torch.rand(1, 3, 5, 7)})
    assert out["student"].shape == (1, 3, 10, 14)


# ------------------------------------------------------------------------------------------------------ recipes
BASELINES = {
    "scratch": "sr_supervised",
    "logitskd": "sr_logits_kd",
    "fitnet": "sr_fitnet",
    "at": "sr_at",
    "fakd": "sr_fakd",
    "mipkd": "mipkd",
}


def test_baseline_recipes_share_data_taps_and_budget_with_mipkd():
    mipkd, resolved = load_recipe(RECIPES / "mipkd_edsr_x4.yaml")
    for key, distiller in BASELINES.items():
        recipe, other = load_recipe(RECIPES / ("mipkd_edsr_x4.yaml" if key == "mipkd" else f"mipkd_{key}_edsr_x4.yaml"))
        assert recipe.distiller.name == distiller
        for section in ("data", "eval", "train"):
            assert other[section] == resolved[section], (key, section)
        assert other["models"]["student"] == resolved["models"]["student"], key
        if key != "scratch":
            assert other["models"]["teacher"] == resolved["models"]["teacher"], key
        if distiller in ("sr_fitnet", "sr_at", "sr_fakd", "mipkd"):
            assert recipe.distiller.args["num_stages"] == mipkd.distiller.args["num_stages"] == 4
        assert other["optim"]["student"] == resolved["optim"]["student"], key


@pytest.mark.parametrize(
    "name",
    sorted(
        p.name
        for pattern in ("mipkd_*.yaml", "*_edsr_x4.yaml", "mipkd_teacher_*.yaml", "quickstart_sr.yaml")
        for p in RECIPES.glob(pattern)
    ),
)
def test_every_sr_recipe_states_y_channel_psnr_ssim_with_crop_border_equal_to_scale(name):
    recipe, _ = load_recipe(RECIPES / name)
    scale = recipe.data.train.args["scale"]
    assert all(spec.args.get("upscale") == scale for spec in recipe.models.values()), name
    assert recipe.eval.metrics == ["psnr", "ssim"]
    for metric in ("psnr", "ssim"):
        assert recipe.eval.metric_args[metric] == {"crop_border": scale, "test_y_channel": True}, name
    assert all(spec.args["scale"] == scale for spec in recipe.data.eval.values()), name
    if "teacher" in recipe.models:
        assert recipe.models["teacher"].args.get("pretrained"), f"{name}: the teacher must come from a local file"
