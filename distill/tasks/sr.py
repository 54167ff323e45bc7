"""Super-resolution: PSNR/SSIM on Y, one upscaled PNG per input image."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from torch import nn

from distill.errors import DataError
from distill.registry import TASKS
from distill.tasks.base import PredictOptions, Task


@TASKS.register("sr")
class SRTask(Task):
    """Super-resolution: a BasicSR EDSR/RCAN/SwinIR student upscales each image."""

    name: ClassVar[str] = "sr"
    default_metrics: ClassVar[tuple[str, ...]] = ("psnr", "ssim")
    writes: ClassVar[str] = "one PNG per image"
    default_output: ClassVar[str] = "predictions"

    def claims(self, model: nn.Module) -> bool:
        from distill.models.sr import sr_family

        try:
            sr_family(model)
        except TypeError:
            return False
        return True

    def predict(self, model: nn.Module, paths: Sequence[Path], out: str | Path | None, opts: PredictOptions) -> Path:
        from distill.deploy import upscale_images

        out_dir = Path(out or self.default_output)
        if out_dir.suffix.lower() == ".csv":
            raise DataError(f"--out {out_dir}: an SR student writes images; give a folder")
        upscale_images(model, paths, out_dir, opts.device, opts.self_ensemble, opts.progress)
        return out_dir
