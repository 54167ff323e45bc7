"""Super-resolution: PSNR/SSIM on Y, one upscaled PNG per input image."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn
from tqdm import tqdm

from distill.data.images import load_rgb
from distill.errors import DataError
from distill.registry import TASKS
from distill.run.paths import check_output_dir
from distill.tasks.base import PredictOptions, Task


@TASKS.register("sr")
class SRTask(Task):
    """Super-resolution: a BasicSR EDSR/RCAN/SwinIR student upscales each image."""

    name: ClassVar[str] = "sr"
    default_metrics: ClassVar[tuple[str, ...]] = ("psnr", "ssim")
    writes: ClassVar[str] = "one PNG per image"
    output_suffix: ClassVar[str] = "_sr"

    def default_output(self, model: nn.Module, source: Path) -> Path:
        """``photos/`` → ``photos_x4/`` (the student's scale), beside the input."""
        stem = source.name if source.is_dir() else source.stem
        scale = (getattr(model, "distill_spec", None) or {}).get("args", {}).get("upscale")
        return source.parent / f"{stem}{f'_x{scale}' if scale else self.output_suffix}"

    def output_names(self, paths: Sequence[Path]) -> list[str] | None:
        """One ``<stem>.png`` per input, in the output folder."""
        return [f"{p.stem}.png" for p in paths]

    def claims(self, model: nn.Module) -> bool:
        from distill.models.sr import sr_family

        try:
            sr_family(model)
        except TypeError:
            return False
        return True

    def predict(self, model: nn.Module, paths: Sequence[Path], out: str | Path | None, opts: PredictOptions) -> Path:
        out_dir = Path(out)
        if out_dir.suffix.lower() == ".csv":
            raise DataError(f"--out {out_dir}: an SR student writes images; give a folder")
        check_output_dir(out_dir)
        upscale_images(
            model, paths, out_dir, opts.device, opts.self_ensemble, opts.progress, opts.tile, opts.tile_overlap
        )
        return out_dir


@torch.no_grad()
def upscale_images(
    model: nn.Module,
    paths: Sequence[Path],
    out_dir: str | Path,
    device: str = "cpu",
    self_ensemble: bool = False,
    progress: bool = True,
    tile: int | None = None,
    tile_overlap: int = 32,
) -> list[Path]:
    """Super-resolve each image (one at a time: sizes differ; in overlapping ``tile``-pixel tiles when given) and
    write ``<out_dir>/<stem>.png``; returns the files."""
    from distill.data.images import save_rgb
    from distill.models.sr import super_resolve
    from distill.models.sr.inference import check_tile, window_multiple

    out_dir = Path(out_dir)
    if len({p.stem for p in paths}) < len(paths):
        raise DataError(f"inputs share file names, so their outputs in {out_dir} would overwrite each other")
    model = model.to(device)
    check_tile(tile, tile_overlap, window_multiple(model), type(model).__name__)  # before the first image
    written = []
    for path in tqdm(paths, desc="upscale", disable=not progress, delay=0.5):
        sr = super_resolve(model, load_rgb(path)[None].to(device), self_ensemble, tile=tile, tile_overlap=tile_overlap)
        written.append(save_rgb(sr[0].clamp(0, 1).cpu(), out_dir / f"{path.stem}.png"))
    return written
