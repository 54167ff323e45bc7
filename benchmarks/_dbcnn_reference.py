"""The DBCNN distortions and preparation as they were before they were made faster (generator 1), kept only to
measure against (``benchmarks/scnn_prepare.py``) and to test the fast paths against (``tests/test_dbcnn_fast.py``).

Types whose output did not change (white noise, JPEG, over-/under-exposure) are the current ones. The blur's previous
path is still the library's convolution fallback (``_gaussian_blur_conv``); the others are copies (JPEG2000: one encode
per level, generators 1 and 2).
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from distill.data.images import load_rgb
from distill.data.iqa import distortions_dbcnn as dd
from distill.data.iqa.dbcnn_prepare import _resize_shorter_batch
from distill.data.iqa.distortions import _through_pil
from distill.data.synthetic_common import stable_seed

__all__ = [
    "contrast_previous",
    "jpeg2000_previous",
    "pink_fields_previous",
    "previous",
    "previous_chunk",
    "previous_item",
    "quantise_previous",
]


def contrast_previous(x: Tensor, low: float, g: torch.Generator | None = None) -> Tensor:
    """Contrast stretch with the histogram by ``scatter_add_`` on int64 levels (generator 1)."""
    b, c = x.shape[:2]
    levels = (x.clamp(0, 1) * 255).round().long().flatten(2)
    ones = torch.ones_like(levels, dtype=torch.float64)
    hist = torch.zeros(b, c, 256, dtype=torch.float64).scatter_add_(2, levels, ones)
    cdf = hist.cumsum(2) / hist.sum(2, keepdim=True)
    lo_in = (cdf > 0.01).float().argmax(2, keepdim=True).to(x.dtype) / 255
    hi_in = (cdf >= 0.99).float().argmax(2, keepdim=True).to(x.dtype) / 255
    flat = hi_in <= lo_in
    lo_in = torch.where(flat, torch.zeros_like(lo_in), lo_in)
    hi_in = torch.where(flat, torch.ones_like(hi_in), hi_in)
    t = ((levels.to(x.dtype) / 255 - lo_in) / (hi_in - lo_in)).clamp(0, 1)
    return (low + (1 - 2 * low) * t).view_as(x)


def pink_fields_previous(g: torch.Generator, count: int, n: int = 512) -> Tensor:
    """Pink-noise fields normalised with ``Tensor.std`` over two dims (generator 1)."""
    white = torch.randn((count, n, n), generator=g)
    field = torch.fft.irfft2(torch.fft.rfft2(white) * dd._pink_multiplier(n), s=(n, n))
    mean, std = field.mean((1, 2), keepdim=True), field.std((1, 2), keepdim=True)
    field = (field - mean) / std * white.std((1, 2), keepdim=True) + white.mean((1, 2), keepdim=True)
    return field / field.abs().amax((1, 2), keepdim=True)


def _pink_previous(x: Tensor, weight: float, g: torch.Generator) -> Tensor:
    b, _, h, w = x.shape
    fields = pink_fields_previous(g, 3 * b).view(b, 3, 512, 512)
    noise = F.interpolate(fields, size=(h, w), mode="bicubic", align_corners=False, antialias=True).to(x)
    return torch.floor(x * 255 + weight * noise * 255) / 255


def quantise_previous(arr: np.ndarray, n: int) -> np.ndarray:
    """Median-cut palette from the image box-downsampled to at most 256² pixels, Floyd–Steinberg (generator 1)."""
    img = Image.fromarray(arr)
    factor = max(1, math.ceil(math.sqrt(img.width * img.height / 65536)))
    sample = img.reduce(factor) if factor > 1 else img
    palette = sample.quantize(colors=n, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    return np.asarray(img.quantize(palette=palette, dither=Image.Dither.FLOYDSTEINBERG).convert("RGB"))


def jpeg2000_previous(x: Tensor, ratio: float, g: torch.Generator | None = None) -> Tensor:
    """JPEG2000 encoded alone at the level's rate and decoded (generators 1 and 2)."""

    def op(img: Image.Image) -> Image.Image:
        buf = io.BytesIO()
        img.save(buf, "JPEG2000", quality_mode="rates", quality_layers=[float(ratio)], irreversible=True)
        buf.seek(0)
        return Image.open(buf)

    return _through_pil(x, op)


def _quantise_previous_t(x: Tensor, colours: float, g: torch.Generator) -> Tensor:
    def op(img: Image.Image) -> Image.Image:
        return Image.fromarray(quantise_previous(np.asarray(img), int(colours)))

    return _through_pil(x, op)


_IMPLS = {
    "1": lambda x, k, g: dd._gaussian_blur_conv(x, int(k)),
    "4": jpeg2000_previous,
    "5": contrast_previous,
    "6": _pink_previous,
    "7": _quantise_previous_t,
}


def previous(code: str) -> dd.DbcnnDistortion:
    """DBCNN type ``code`` as generator 1 computed it (the current distortion where its code did not change)."""
    now = dd.dbcnn_distortion(code)
    if code not in _IMPLS:
        return now
    return dd.DbcnnDistortion(now.code, now.name, now.params, _IMPLS[code], random=now.random)


def previous_chunk(path: Path, name: str, classes: list[tuple[str, int]], resize: int, out: Path) -> int:
    """One pristine image prepared as generator 1's ``dbcnn_prepare`` did: the classes distorted, concatenated as
    float, resized from float, one PNG (compress level 1) per item; returns the items written."""
    image = load_rgb(path)[None]
    outs = []
    for code, level in classes:
        fixed = torch.Generator().manual_seed(stable_seed("dbcnn-distort", name, code, level))
        outs.append(previous(code)(image, level, fixed))
    arrays = _resize_shorter_batch(torch.cat(outs), resize).numpy()
    out.mkdir(parents=True, exist_ok=True)
    for k, arr in enumerate(arrays):
        Image.fromarray(np.ascontiguousarray(arr)).save(out / f"{k:02d}.png", compress_level=1)
    return len(arrays)


def previous_item(path: Path, name: str, code: str, level: int, resize: int) -> Tensor:
    """One (image, class) item as generator 1's ``dbcnn_distortions`` computed it on the fly (what the earlier
    README's 0.17 s per item measured): decode, distort at full size, resize the shorter side in float."""
    from distill.data.iqa.pristine import _resize_shorter

    fixed = torch.Generator().manual_seed(stable_seed("dbcnn-distort", name, code, level))
    return _resize_shorter(previous(code)(load_rgb(path)[None], level, fixed)[0], resize)
