"""The faster DBCNN distortions against the previous implementations, on fixed images and seeds.

* Gaussian blur: wide kernels run as matrix products with the symmetric borders folded in; the previous two
  convolutions of the padded image (kept as ``_gaussian_blur_conv``) agree to 1e-5, and the 8-bit outputs by at most
  one grey level on at most 0.1 % of the values, also where the kernel is wider than the image.
* Contrast stretch: the histogram by ``bincount`` on 8 bits gives the previous output bit for bit.
* Colour quantisation: the palette from a 128² sample instead of 256²: at most
  ``n`` colours, and the mean absolute error to the pristine image within ±8 % of the previous one's.
* Pink noise: the fields' statistics in two plain passes, within one grey level after the floor.

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


@pytest.mark.parametrize("hsize", [39, 91, 199])
def test_matrix_blur_equals_the_convolution(photos: torch.Tensor, hsize: int) -> None:
    for x in (photos, photos[:, :, :60, :80]):  # 199 taps on 60x80: the kernel is wider than the image
        h, w = x.shape[-2:]
        assert h + w <= dd._MATMUL_BLUR_RATIO * hsize  # the fast path is the one taken
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
