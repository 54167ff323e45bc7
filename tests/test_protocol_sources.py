"""Each protocol default pinned to the released code it comes from (file and line in each docstring).

Repositories as read: yun224/DUKD @ 6960273 (the option files of the group whose DCKD paper "follows MiPKD", see
../shared/papers/mipkd_tables.md), JingyunLiang/SwinIR @ 6545850, SSL92/hyperIQA @ c42e727.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from distill.recipe.check import load_recipe

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
SR_PROTOCOL = sorted(p for p in RECIPES.glob("mipkd_*.yaml"))


@pytest.mark.parametrize("path", SR_PROTOCOL, ids=lambda p: p.stem)
def test_mipkd_and_sr_teacher_schedule_is_multistep_1e5_2e5_gamma_0_1(path: Path) -> None:
    """DUKD options/Swinir/dukd_swinir_x4c180s36_c60s24.yml lines 104-113 (Adam lr 1e-4, betas [0.9, 0.99];
    MultiStepLR milestones [100000, 200000], gamma 0.1) and line 115 (total_iter 250000); the same in
    options/EDSR/kd_edsr_x4c256b32_c64b32.yml lines 100-102 and options/RCAN/dukd_rcan_x4c64b20g10_c64b6g10.yml
    lines 118-120. DCKD (arXiv 2412.08939): "lr 1e-4, divided by 10 every 1e5 iterations"."""
    recipe, _ = load_recipe(path)
    assert recipe.train.iterations == 250000
    for group, cfg in recipe.optim.items():
        assert (cfg.optimizer, cfg.lr, cfg.betas) == ("adam", 1e-4, [0.9, 0.99]), group
        s = cfg.schedule
        assert (s.name, s.unit, s.milestones, s.gamma) == ("multistep", "iteration", [100000, 200000], 0.1), group


@pytest.mark.parametrize("path", SR_PROTOCOL, ids=lambda p: p.stem)
def test_mipkd_and_sr_teacher_recipes_keep_an_ema_of_decay_0_999(path: Path) -> None:
    """DUKD options/Swinir/dukd_swinir_x4c180s36_c60s24.yml line 103, options/EDSR/kd_edsr_x4c256b32_c64b32.yml
    line 92, options/RCAN/dukd_rcan_x4c64b20g10_c64b6g10.yml line 110: ``ema_decay: 0.999`` (BasicSR evaluates and
    saves net_g_ema: basicsr/models/sr_model.py lines 122-125, 275-276)."""
    recipe, _ = load_recipe(path)
    assert recipe.train.ema is not None and recipe.train.ema.decay == 0.999


@pytest.mark.parametrize("name", ["quickstart_sr", "sr_teacher_quickstart"])
def test_sr_quickstarts_keep_no_ema(name: str) -> None:
    """Hundreds of iterations: decay 0.999 would still weigh the initial weights over half (our choice)."""
    recipe, _ = load_recipe(RECIPES / f"{name}.yaml")
    assert recipe.train.ema is None


def test_swinir_teacher_is_the_classical_div2k_s48w8_swinir_m() -> None:
    """DUKD options/Swinir/dukd_swinir_x4c180s36_c60s24.yml line 92 (``pretrain_network_t:
    pretrained_models/SwinIR/001_classicalSR_DIV2K_s48w8_SwinIR-M_x4.pth``) and lines 75-87 (its network_t:
    img_size 48, window 8, img_range 1, depths/heads [6]x6, embed 180, mlp 2, pixelshuffle, 1conv); SwinIR
    main_test_swinir.py lines 130-134 (classical_sr: img_size = --training_patch_size, which README.md line 110
    sets to 48 for this file; window 8, img_range 1., same depths/heads/embed/mlp, 'pixelshuffle', '1conv',
    param_key 'params')."""
    recipe, _ = load_recipe(RECIPES / "mipkd_swinir_x4.yaml")
    args = recipe.models["teacher"].args
    assert args["pretrained"] == "zoo:swinir_m_x4"  # the zoo row of the authors' release file:
    from distill.models.zoo import ZOO

    assert ZOO["swinir_m_x4"].file == "001_classicalSR_DIV2K_s48w8_SwinIR-M_x4.pth"
    expected = {
        "img_size": 48, "window_size": 8, "img_range": 1.0, "depths": [6] * 6, "num_heads": [6] * 6,
        "embed_dim": 180, "mlp_ratio": 2.0, "upsampler": "pixelshuffle", "resi_connection": "1conv", "upscale": 4,
    }  # fmt: skip
    assert {k: args[k] for k in expected} == expected
    teacher = load_recipe(RECIPES / "mipkd_teacher_swinir_x4.yaml")[0].models["student"].args
    assert {k: teacher[k] for k in expected} == expected  # the teacher trained here has the same architecture
    text = (RECIPES / "_parts" / "sr_swinir.yaml").read_text()
    assert "DF2K_s64w8" not in yaml.safe_dump(recipe.models["teacher"].args) and "s48w8" in text


@pytest.mark.parametrize("path", sorted(RECIPES.glob("mrkd_*hyperiqa.yaml")), ids=lambda p: p.stem)
def test_hyperiqa_recipes_keep_mrkds_one_rate_per_model(path: Path) -> None:
    """MRKD (shared/papers/000_e1dab219758444d1.txt line 158): HyperIQA at lr 5e-2, teacher 1e-1, one rate per model:
    lr_ratio 1. The authors' 10 (SSL92/hyperIQA train_test_IQA.py line 63) stays a recipe value away."""
    recipe, _ = load_recipe(path)
    for role, spec in recipe.models.items():
        assert spec.args["lr_ratio"] == 1.0, role
    assert recipe.optim["student"].lr == 0.05


def test_hyperiqa_lr_ratio_is_an_optimizer_group_of_the_hyper_network() -> None:
    """SSL92/hyperIQA HyerIQASolver.py lines 19-26: the parameters outside ``model_hyper.res`` (the ResNet backbone
    with its LDA modules, models.py lines 43, 218-237) train at ``lr * lr_ratio``, the backbone at ``lr``."""
    import torch

    from distill.distillers import Supervised
    from distill.engine.optim import build_optimizer
    from distill.models.iqa.hyperiqa import HyperIQA
    from distill.recipe.config import OptimConfig

    model = HyperIQA(depth=18, lr_ratio=10)
    distiller = Supervised({"student": model})
    opt = build_optimizer(distiller.param_groups()["student"], OptimConfig(lr=2e-5), distiller.lr_ratios())
    assert [pg["lr_ratio"] for pg in opt.param_groups] == [1.0, 10.0]
    assert [pg["lr"] for pg in opt.param_groups] == [2e-5, 2e-5 * 10]
    hyper = {
        id(p) for m in (model.hyper_in, model.weight_convs, model.weight_last, model.bias_fcs) for p in m.parameters()
    }
    assert {id(p) for p in opt.param_groups[1]["params"]} == hyper
    backbone = {id(p) for m in (model.backbone, model.lda, model.lda4) for p in m.parameters()}
    assert {id(p) for p in opt.param_groups[0]["params"]} == backbone
    assert not HyperIQA(depth=18).lr_ratios()  # default 1: one optimizer group, as before
    assert isinstance(build_optimizer(model.parameters(), OptimConfig()).param_groups[0]["params"][0], torch.Tensor)


def test_the_trainer_schedules_each_ratio_group_at_its_multiple(tmp_path: Path) -> None:
    """The scheduled rate of the model's group times the ratio, every step (cosine here)."""
    import torch

    from distill.distillers import Supervised
    from distill.engine import Trainer
    from distill.models.lr_ratio import LRRatios
    from distill.recipe.config import EvalConfig, OptimConfig, ScheduleConfig, TrainConfig
    from tests.toy import TinyRegressor, ToyIQA

    class Ratioed(TinyRegressor, LRRatios):
        def lr_ratios(self) -> dict[torch.nn.Parameter, float]:
            return {p: 4.0 for p in self.head.parameters()}

    trainer = Trainer(
        Supervised({"student": Ratioed()}),
        ToyIQA(8),
        optim={"student": OptimConfig(lr=0.1, schedule=ScheduleConfig(name="cosine"))},
        config=TrainConfig(epochs=2, batch_size=4, progress=False),
        evaluation=EvalConfig(metrics=["srcc"]),
    )
    trainer.fit()
    last = trainer.schedules["student"].lr(trainer.step - 1)
    assert [pg["lr"] for pg in trainer.optimizers["student"].param_groups] == [last, last * 4.0]


def test_scnn_classes_are_seven_types_by_five_and_over_and_under_exposure_by_two() -> None:
    """zwx8981/DBCNN issue #9 (2020-11-24), the author: "there are only 39 classess. 7 types with 5 levels and 2 types
    with 2 levels" and, asked which two, "over-exposure and under-exposure" (types 8 and 9 of distortion_generator.m).
    Which two of their levels (1, 2) is our reading, and the docstrings say only that."""
    import distill.models.iqa.dbcnn as dbcnn
    from distill.data.iqa.distortions_dbcnn import DBCNN_CLASSES, DBCNN_LEVELS, DBCNN_TYPES

    assert len(DBCNN_CLASSES) == 39
    two = {code for code, levels in DBCNN_LEVELS.items() if len(levels) == 2}
    assert {DBCNN_TYPES[c] for c in two} == {"overexposure", "underexposure"}
    assert sum(len(v) == 5 for v in DBCNN_LEVELS.values()) == 7
    assert load_recipe(RECIPES / "scnn_pretrain.yaml")[0].models["student"].args["num_classes"] == 39
    for doc in (dbcnn.__doc__, dbcnn.SCNN.__doc__):
        assert doc is not None and "issue #9" in doc and "our reading" in doc
    assert "Not faithful: the pre-training classes" not in (dbcnn.__doc__ or "")
