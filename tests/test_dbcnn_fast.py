"""The faster DBCNN distortions against the previous implementations, on fixed images and seeds.

* Gaussian blur: matrix products with the symmetric borders folded in, block by block over the band the kernel
  reaches; the previous two convolutions of the padded image (kept as ``_gaussian_blur_conv``) agree to 1e-5, and the
  8-bit outputs by at most one grey level on at most 0.1 % of the values, also where the kernel is wider than the image.
* Contrast stretch: the histogram by ``bincount`` on 8 bits gives the previous output bit for bit.
* Colour quantisation: the palette from a 128² sample instead of 256²: at most
  ``n`` colours, and the mean absolute error to the pristine image within ±8 % of the previous one's.
* Pink noise: the fields' statistics in two plain passes, within one grey level after the floor.
* JPEG2000: the levels decoded from the quality layers of one encode: the strongest equal to its one-rate encode
  (generator 2), the others within 0.3 dB PSNR of theirs and at least 33 dB from them at Waterloo's size.
* All levels of one image at once (``levels_u8``, what the preparation calls): equal to the per-level calls bit for bit.

The previous implementations (generator 1) are in ``benchmarks/_dbcnn_reference.py``, which the benchmark times.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmarks import _dbcnn_reference as ref
from distill.data.iqa import distortions_dbcnn as dd
from distill.data.synthetic_common import reference_crops


@pytest.fixture(scope="module")
def photos() -> torch.Tensor:
    refs, _ = reference_crops(2, (96, 128), 0, tag="dbcnn-fast")
    return torch.stack([torch.from_numpy(r).permute(2, 0, 1) for r in refs]).float() / 255


@pytest.mark.parametrize("hsize", [7, 15, 39, 91, 199])
def test_matrix_blur_equals_the_convolution(photos: torch.Tensor, hsize: int) -> None:
    for x in (photos, photos[:, :, :60, :80]):  # 199 taps on 60x80: the kernel is wider than the image
        fast, conv = dd.gaussian_blur._impl(x, hsize, None), dd._gaussian_blur_conv(x, hsize)
        assert (fast - conv).abs().max() < 1e-5
        a, b = dd.gaussian_blur(x, 1 + (7, 15, 39, 91, 199).index(hsize)), dd._u8(conv)
        diff = (a - b).abs() * 255
        assert diff.max() <= 1 + 1e-4 and (diff > 0.5).float().mean() <= 1e-3


def test_contrast_stretch_is_bit_identical(photos: torch.Tensor) -> None:
    flat = torch.full((1, 3, 8, 8), 0.5)  # a channel whose limits coincide keeps [0, 1]
    for x in (photos, flat):
        for low in dd.contrast_stretch.params:
            assert torch.equal(dd.contrast_stretch._impl(x, low, None), ref.contrast_previous(x, low))


def test_colour_quantisation_keeps_its_strength() -> None:
    refs, _ = reference_crops(1, (160, 224), 0, tag="dbcnn-fast-cq")  # 256² sample: every pixel; 128²: a quarter
    changed = False
    for arr in refs:
        x = torch.from_numpy(arr).permute(2, 0, 1)[None].float() / 255
        for level, n in enumerate(dd.colour_quantisation_dither.params, start=1):
            new = (dd.colour_quantisation_dither(x, level)[0] * 255).round().permute(1, 2, 0).numpy().astype(np.uint8)
            old = ref.quantise_previous(arr, int(n))
            assert len(np.unique(new.reshape(-1, 3), axis=0)) <= n
            err_new = np.abs(new.astype(float) - arr).mean()
            err_old = np.abs(old.astype(float) - arr).mean()
            assert abs(err_new / err_old - 1) <= 0.08, (level, err_new, err_old)
            changed |= not np.array_equal(new, old)
    assert changed  # the test compares two different palettes, not the same code twice


def test_pink_noise_within_one_grey_level_of_the_previous_statistics(photos: torch.Tensor) -> None:
    new = dd._pink_fields(torch.Generator().manual_seed(3), 3)
    old = ref.pink_fields_previous(torch.Generator().manual_seed(3), 3)
    assert (new - old).abs().max() < 1e-5
    for level in (1, 5):
        fast = dd.pink_noise(photos, level, torch.Generator().manual_seed(7))
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(dd, "_pink_fields", ref.pink_fields_previous)
            slow = dd.pink_noise(photos, level, torch.Generator().manual_seed(7))
        diff = (fast - slow).abs() * 255
        assert diff.max() <= 1 + 1e-4 and (diff > 0.5).float().mean() <= 1e-3


def test_the_reference_is_the_previous_code_where_it_changed(photos: torch.Tensor) -> None:
    for code in ("2", "3", "8"):
        assert ref.previous(code) is dd.dbcnn_distortion(code)
    x = photos[:1, :, :48, :64]
    for code, level in (("1", 5), ("5", 2), ("6", 3), ("7", 5)):
        a = ref.previous(code)(x, level, torch.Generator().manual_seed(1))
        b = dd.dbcnn_distortion(code)(x, level, torch.Generator().manual_seed(1))
        assert a.shape == b.shape and (a - b).abs().max() <= 0.5  # the same distortion, by another path


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a.astype(np.float64) - b) ** 2).mean())
    return 10 * np.log10(255**2 / mse) if mse else float("inf")


def test_jpeg2000_quality_layers_are_close_to_one_rate_encodes() -> None:
    refs, _ = reference_crops(2, (384, 512), 0, tag="dbcnn-j2k")  # Waterloo's size: the budgets the set has
    for arr in refs:
        x = torch.from_numpy(arr).permute(2, 0, 1)[None].float() / 255
        new = list(dd.jpeg2000.levels_u8(x, [1, 2, 3, 4, 5], [torch.Generator()] * 5))
        for level, layered in enumerate(new, start=1):
            one = (ref.jpeg2000_previous(x, dd.jpeg2000.params[level - 1])[0] * 255).round()
            a, b = layered.permute(1, 2, 0).numpy(), one.permute(1, 2, 0).numpy()
            if level == 5:  # the first layer: the encode at its rate alone
                assert np.array_equal(a, b)
                continue
            assert abs(_psnr(a, arr) - _psnr(b, arr)) <= 0.3, level  # the same strength
            assert _psnr(a, b) >= 33, level  # and nearly the same image
        strength = [_psnr(o.permute(1, 2, 0).numpy(), arr) for o in new]
        assert strength == sorted(strength, reverse=True)  # each level decodes fewer layers than the one before


@pytest.mark.parametrize("code", sorted(dd.DBCNN_TYPES))
def test_levels_of_one_image_equal_the_per_level_calls(photos: torch.Tensor, code: str) -> None:
    fn, x = dd.dbcnn_distortion(code), photos[:1]
    levels = [5, 1, 3] if code != "8" else [2, 1]
    outs = fn.levels_u8(x, levels, [torch.Generator().manual_seed(10 + lv) for lv in levels])
    for level, out in zip(levels, outs, strict=True):
        alone = (fn(x, level, torch.Generator().manual_seed(10 + level))[0] * 255).round()
        assert torch.equal(out.float(), alone), (code, level)
