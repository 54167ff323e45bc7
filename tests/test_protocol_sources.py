"""Each protocol default pinned to the released code it comes from (file and line in each docstring).

Repositories as read: yun224/DUKD @ 6960273 (the option files of the group whose DCKD paper "follows MiPKD", see
../shared/papers/mipkd_tables.md), JingyunLiang/SwinIR @ 6545850, SSL92/hyperIQA @ c42e727.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from distill.recipe import load_recipe

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
    assert Path(args["pretrained"]).name == "001_classicalSR_DIV2K_s48w8_SwinIR-M_x4.pth"
    expected = {
        "img_size": 48, "window_size": 8, "img_range": 1.0, "depths": [6] * 6, "num_heads": [6] * 6,
        "embed_dim": 180, "mlp_ratio": 2.0, "upsampler": "pixelshuffle", "resi_connection": "1conv", "upscale": 4,
    }  # fmt: skip
    assert {k: args[k] for k in expected} == expected
    teacher = load_recipe(RECIPES / "mipkd_teacher_swinir_x4.yaml")[0].models["student"].args
    assert {k: teacher[k] for k in expected} == expected  # the teacher trained here has the same architecture
    text = (RECIPES / "_parts" / "sr_swinir.yaml").read_text()
    assert "DF2K_s64w8" not in yaml.safe_dump(recipe.models["teacher"].args) and "s48w8" in text
