"""The faster DBCNN distortions against the previous implementations, on fixed images and seeds.

* Gaussian blur: wide kernels run as matrix products with the symmetric borders folded in; the previous two
  convolutions of the padded image (kept as ``_gaussian_blur_conv``) agree to 1e-5, and the 8-bit outputs by at most
  one grey level on at most 0.1 % of the values, also where the kernel is wider than the image.
* Contrast stretch: the histogram by ``bincount`` on 8 bits gives the previous output bit for bit (a copy of the
  previous code is below).
* Colour quantisation: the palette from a 128² sample instead of 256² (the previous code is copied below): at most
  ``n`` colours, and the mean absolute error to the pristine image within ±8 % of the previous one's.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from distill.data.iqa import distortions_dbcnn as dd
from distill.data.synthetic_common import reference_crops


@pytest.fixture(scope="module")
def photos() -> torch.Tensor:
    refs, _ = reference_crops(2, (96, 128), 0, tag="dbcnn-fast")
    return torch.stack([torch.from_numpy(r).permute(2, 0, 1) for r in refs]).float() / 255


@pytest.mark.parametrize("hsize", [39, 91, 199])
def test_matrix_blur_equals_the_convolution(photos: torch.Tensor, hsize: int) -> None:
    for x in (photos, photos[:, :, :60, :80]):  # 199 taps on 60x80: the kernel is wider than the image
        h, w = x.shape[-2:]
        assert h + w <= dd._MATMUL_BLUR_RATIO * hsize  # the fast path is the one taken
        fast, ref = dd.gaussian_blur._impl(x, hsize, None), dd._gaussian_blur_conv(x, hsize)
        assert (fast - ref).abs().max() < 1e-5
        a, b = dd.gaussian_blur(x, 1 + (7, 15, 39, 91, 199).index(hsize)), dd._u8(ref)
        diff = (a - b).abs() * 255
        assert diff.max() <= 1 + 1e-4 and (diff > 0.5).float().mean() <= 1e-3


def _contrast_previous(x: torch.Tensor, low: float) -> torch.Tensor:
    b, c = x.shape[:2]
    levels = (x.clamp(0, 1) * 255).round().long().flatten(2)
    hist = torch.zeros(b, c, 256, dtype=torch.float64).scatter_add_(
        2, levels, torch.ones_like(levels, dtype=torch.float64)
    )
    cdf = hist.cumsum(2) / hist.sum(2, keepdim=True)
    lo_in = (cdf > 0.01).float().argmax(2, keepdim=True).to(x.dtype) / 255
    hi_in = (cdf >= 0.99).float().argmax(2, keepdim=True).to(x.dtype) / 255
    flat = hi_in <= lo_in
    lo_in = torch.where(flat, torch.zeros_like(lo_in), lo_in)
    hi_in = torch.where(flat, torch.ones_like(hi_in), hi_in)
    t = ((levels.to(x.dtype) / 255 - lo_in) / (hi_in - lo_in)).clamp(0, 1)
    return (low + (1 - 2 * low) * t).view_as(x)


def test_contrast_stretch_is_bit_identical(photos: torch.Tensor) -> None:
    flat = torch.full((1, 3, 8, 8), 0.5)  # a channel whose limits coincide keeps [0, 1]
    for x in (photos, flat):
        for low in dd.contrast_stretch.params:
            assert torch.equal(dd.contrast_stretch._impl(x, low, None), _contrast_previous(x, low))


def _quantise_previous(arr: np.ndarray, n: int) -> np.ndarray:
    img = Image.fromarray(arr)
    factor = max(1, math.ceil(math.sqrt(img.width * img.height / 65536)))
    sample = img.reduce(factor) if factor > 1 else img
    palette = sample.quantize(colors=n, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    return np.asarray(img.quantize(palette=palette, dither=Image.Dither.FLOYDSTEINBERG).convert("RGB"))


def test_colour_quantisation_keeps_its_strength() -> None:
    refs, _ = reference_crops(1, (160, 224), 0, tag="dbcnn-fast-cq")  # 256² sample: every pixel; 128²: a quarter
    changed = False
    for arr in refs:
        x = torch.from_numpy(arr).permute(2, 0, 1)[None].float() / 255
        for level, n in enumerate(dd.colour_quantisation_dither.params, start=1):
            new = (dd.colour_quantisation_dither(x, level)[0] * 255).round().permute(1, 2, 0).numpy().astype(np.uint8)
            old = _quantise_previous(arr, int(n))
            assert len(np.unique(new.reshape(-1, 3), axis=0)) <= n
            err_new = np.abs(new.astype(float) - arr).mean()
            err_old = np.abs(old.astype(float) - arr).mean()
            assert abs(err_new / err_old - 1) <= 0.08, (level, err_new, err_old)
            changed |= not np.array_equal(new, old)
    assert changed  # the test compares two different palettes, not the same code twice


def test_pink_noise_within_one_grey_level_of_the_previous_statistics(photos: torch.Tensor) -> None:
    def fields_previous(g: torch.Generator, count: int, n: int = 512) -> torch.Tensor:
        white = torch.randn((count, n, n), generator=g)
        field = torch.fft.irfft2(torch.fft.rfft2(white) * dd._pink_multiplier(n), s=(n, n))
        mean, std = field.mean((1, 2), keepdim=True), field.std((1, 2), keepdim=True)
        field = (field - mean) / std * white.std((1, 2), keepdim=True) + white.mean((1, 2), keepdim=True)
        return field / field.abs().amax((1, 2), keepdim=True)

    new = dd._pink_fields(torch.Generator().manual_seed(3), 3)
    old = fields_previous(torch.Generator().manual_seed(3), 3)
    assert (new - old).abs().max() < 1e-5
    for level in (1, 5):
        fast = dd.pink_noise(photos, level, torch.Generator().manual_seed(7))
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(dd, "_pink_fields", fields_previous)
            ref = dd.pink_noise(photos, level, torch.Generator().manual_seed(7))
        diff = (fast - ref).abs() * 255
        assert diff.max() <= 1 + 1e-4 and (diff > 0.5).float().mean() <= 1e-3
