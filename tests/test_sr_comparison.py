"""The bicubic comparison printed after an SR run covers the same images as the run's main table."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.nn.functional as F

from distill.models.sr import edsr
from distill.registry import METRICS
from distill.tasks.sr import sr_comparison, sr_samples


class _Distiller(torch.nn.Module):
    roles = ("student", "teacher")
    student_role = "student"

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.models = torch.nn.ModuleDict({r: edsr(num_feat=4, num_block=1, upscale=2) for r in self.roles})


def _run(tmp: Path, n_images: int) -> SimpleNamespace:
    gen = torch.Generator().manual_seed(1)
    hr = [torch.rand(3, 16, 16, generator=gen) for _ in range(n_images)]
    items = [{"input": F.avg_pool2d(h[None], 2)[0], "target": h, "meta": {"name": f"im{i}"}} for i, h in enumerate(hr)]
    on_y = {"crop_border": 2, "test_y_channel": True}
    metric_args = {"psnr": on_y, "ssim": on_y}
    recipe = SimpleNamespace(eval=SimpleNamespace(metrics=["psnr", "ssim"], metric_args=metric_args))
    trainer = SimpleNamespace(device=torch.device("cpu"), distiller=_Distiller(), autocast=contextlib.nullcontext)
    return SimpleNamespace(recipe=recipe, eval_sets={"valid": items}, out_dir=tmp, trainer=trainer)


def test_the_means_cover_every_image_while_crops_are_kept_for_the_first_few(tmp_path):
    run = _run(tmp_path, 5)
    sr = sr_samples(run, "valid", tmp_path, n=2)
    assert sr["of"] == 5 and len(sr["samples"]) == 2 and sr["models"] == ["bicubic", "student", "teacher"]
    psnr = METRICS.get("psnr")  # as the run's evaluation computes it
    bicubic = [
        float(psnr(F.interpolate(it["input"][None], size=(16, 16), mode="bicubic", align_corners=False).clamp(0, 1),
                   it["target"][None], crop_border=2, test_y_channel=True))
        for it in run.eval_sets["valid"]
    ]  # fmt: skip
    assert abs(sr["overall"]["bicubic"]["psnr"] - sum(bicubic) / 5) < 1e-9
    assert abs(sr["overall"]["bicubic"]["psnr"] - sum(bicubic[:2]) / 2) > 1e-6  # not the kept images' mean
    text = sr_comparison({"splits": {"valid": {"sr": json.loads(json.dumps(sr))}}, "models_at_step": 7})
    assert "on all 5 images (those of the main table)" in text and f"{sum(bicubic) / 5:.2f}" in text


def test_report_data_saved_before_the_means_says_it_covers_only_the_kept_images(tmp_path):
    sr = sr_samples(_run(tmp_path, 3), "valid", tmp_path, n=1)
    del sr["overall"]
    text = sr_comparison({"splits": {"valid": {"sr": sr}}})
    assert "on the first 1 of 3 images" in text
