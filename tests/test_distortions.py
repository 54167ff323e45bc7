"""KADID-10k and TID2013 distortions: registry, determinism, shape/range, severity order, batching."""

from __future__ import annotations

import itertools
import pickle

import numpy as np
import pytest
import torch

from distill.data.iqa import distortions as D
from distill.data.iqa import distortions_tid as T
from distill.errors import RegistryError
from distill.registry import DISTORTIONS

REQUIRED = {"01", "02", "03", "07", "10", "11", "13", "16", "17", "21", "22", "25"}
CODES = D.IMPLEMENTED_CODES
# Pixelate's levels are a severity order, but at small sizes the nearest-neighbour re-gridding of levels 1-3 costs
# about the same PSNR/SSIM, so only its strong levels are checked against the mild ones.
METRIC_NOT_MONOTONE = {"21"}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def photo() -> torch.Tensor:
    from skimage import data, transform

    img = transform.resize(data.astronaut(), (96, 96), anti_aliasing=True)
    return (torch.from_numpy(np.round(img * 255) / 255).permute(2, 0, 1)[None]).float()


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _psnr(y: torch.Tensor, x: torch.Tensor) -> float:
    mse = float(((y.double() - x.double()) ** 2).mean())
    return 100.0 if mse == 0 else 10 * np.log10(1 / mse)


def test_types_table_and_registry() -> None:
    assert sorted(D.KADID_TYPES) == [f"{i:02d}" for i in range(1, 26)]
    assert set(CODES) >= REQUIRED and len(CODES) == 25  # all KADID-10k types, 15 (denoise) included
    for code in CODES:
        fn = DISTORTIONS.get(D.KADID_TYPES[code])
        assert fn.code == code and fn.name == D.KADID_TYPES[code]
        assert len(fn.params) == 5
        assert DISTORTIONS.describe(fn.name), f"{fn.name} needs a one-line docstring"
        assert pickle.loads(pickle.dumps(fn)) is fn
        assert D.get_distortion(code) is fn and D.get_distortion(int(code)) is fn and D.get_distortion(fn.name) is fn


@pytest.mark.parametrize("code", CODES)
def test_deterministic_shape_dtype_range(code: str, photo: torch.Tensor) -> None:
    fn = D.get_distortion(code)
    x = photo.repeat(2, 1, 1, 1)
    for level in (1, 3, 5):
        a, b = fn(x, level, _gen(7)), fn(x, level, _gen(7))
        assert torch.equal(a, b)
        assert a.shape == x.shape and a.dtype == x.dtype
        assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    y64 = fn(x.double(), 5, _gen(7))
    assert y64.dtype == torch.float64 and y64.shape == x.shape
    if fn.random:
        assert not torch.equal(fn(x, 5, _gen(1)), fn(x, 5, _gen(2)))


@pytest.mark.parametrize("code", CODES)
def test_degrades_with_level(code: str, photo: torch.Tensor) -> None:
    fn = D.get_distortion(code)
    if not fn.monotone:
        pytest.skip(f"{fn.name}: the level order is not a severity order")
    x = photo.repeat(4, 1, 1, 1)  # random types: mean over four draws
    psnr = [_psnr(fn(x, level, _gen(0)), x) for level in range(1, 6)]
    if code in METRIC_NOT_MONOTONE:
        assert psnr[4] < psnr[3] < min(psnr[:3]), psnr
    else:
        assert all(a >= b - 1e-6 for a, b in itertools.pairwise(psnr)), psnr
        assert psnr[4] < psnr[0], psnr


@pytest.mark.parametrize("code", [c for c in CODES if not D.get_distortion(c).random])
def test_batched_equals_per_image(code: str, photo: torch.Tensor) -> None:
    fn = D.get_distortion(code)
    x = torch.cat([photo, photo.flip(-1) * 0.8, photo.transpose(-1, -2)])
    batched = fn(x, 4, _gen(0))
    single = torch.cat([fn(x[i : i + 1], 4, _gen(0)) for i in range(x.shape[0])])
    torch.testing.assert_close(batched, single, atol=1e-5, rtol=0)


def test_global_rng_untouched(photo: torch.Tensor) -> None:
    state = torch.random.get_rng_state()
    for code in CODES:
        fn = D.get_distortion(code)
        if fn.random:
            fn(photo, 3, _gen(0))
            fn(photo, 3, None)
    assert torch.equal(state, torch.random.get_rng_state())


def test_apply_distortion_forms(photo: torch.Tensor) -> None:
    img = photo[0]
    a = D.apply_distortion("01", img, 4)
    assert a.shape == img.shape
    torch.testing.assert_close(a, D.apply_distortion("gaussian_blur", img, 4))
    torch.testing.assert_close(a, D.apply_distortion(1, photo, 4)[0])
    noisy = D.apply_distortion("white_noise", photo, 2, _gen(3))
    assert torch.equal(noisy, D.apply_distortion("11", photo, 2, _gen(3)))


def test_errors(photo: torch.Tensor) -> None:
    with pytest.raises(RegistryError, match="gaussian_blur"):
        D.apply_distortion("gausian_blur", photo, 1)
    with pytest.raises(RegistryError):
        D.apply_distortion("26", photo, 1)
    with pytest.raises(ValueError, match="level"):
        D.gaussian_blur(photo, 6, None)
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        D.gaussian_blur(photo[:, :1], 1, None)
    with pytest.raises(ValueError):
        D.gaussian_blur((photo * 255).to(torch.uint8), 1, None)


def test_known_values(photo: torch.Tensor) -> None:
    # level 1 of Gaussian blur (sigma 0.1) and level 3 of mean shift are the identity, as in KADID
    torch.testing.assert_close(D.gaussian_blur(photo, 1, None), photo, atol=1e-6, rtol=0)
    assert torch.equal(D.mean_shift(photo, 3, None), photo)
    # quantisation to n thresholds yields at most n + 1 grey levels
    assert len(torch.unique(D.quantisation(photo, 5, None))) <= 8
    # darkening lowers, brightening raises the mean
    assert D.darken(photo, 3, None).mean() < photo.mean() < D.brighten(photo, 3, None).mean()
    # saturation factor 0 (level 4) gives grey pixels
    grey = D.colour_saturation(photo, 4, None)
    assert float((grey.amax(1) - grey.amin(1)).max()) < 1e-5


def test_denoise_reduces_noise(photo: torch.Tensor) -> None:
    # KADID 15 adds noise of variance v and denoises: the result is closer to the input than the noise alone
    for level, var in enumerate(D.denoise.params, start=1):
        assert _psnr(D.denoise(photo, level, _gen(3)), photo) > 10 * np.log10(1 / var) + 2


# ----------------------------------------------------------------------------------------------------- TID2013
TID_CODES = tuple(c for c in T.TID_TYPES if c not in T.TID_FROM_KADID)


def test_tid_tables_and_registry() -> None:
    assert sorted(T.TID_TYPES) == [f"{i:02d}" for i in range(1, 25)] and sorted(T.TID_SOURCES) == sorted(T.TID_TYPES)
    assert len(TID_CODES) == 13
    for code in T.TID_TYPES:
        fn = T.tid_distortion(code)
        assert fn.name == T.TID_SOURCES[code] and DISTORTIONS.get(fn.name) is fn and len(fn.params) == 5
        assert T.tid_distortion(int(code)) is fn and T.tid_distortion(f"i{code}") is fn
        assert T.tid_distortion(T.TID_TYPES[code]) is fn
        if code in TID_CODES:
            assert fn.name == f"tid_{T.TID_TYPES[code]}" and fn.code == code
            assert "Approximation" in (fn.__doc__ or ""), f"{fn.name} must state its approximation"
            assert pickle.loads(pickle.dumps(fn)) is fn and T.tid_distortion(fn.name) is fn
        else:
            assert fn.code == D.kadid_code(T.TID_FROM_KADID[code])
    with pytest.raises(RegistryError, match="unknown TID2013 distortion type 'i25'"):
        T.tid_code("i25")


@pytest.mark.parametrize("code", TID_CODES)
def test_tid_deterministic_shape_dtype_range(code: str, photo: torch.Tensor) -> None:
    fn = T.tid_distortion(code)
    x = photo.repeat(2, 1, 1, 1)
    for level in (1, 5):
        a, b = fn(x, level, _gen(7)), fn(x, level, _gen(7))
        assert torch.equal(a, b)
        assert a.shape == x.shape and a.dtype == x.dtype
        assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    assert fn(x.double(), 3, _gen(7)).dtype == torch.float64
    assert fn(photo[:, :, :20, :28], 5, _gen(7)).shape == (1, 3, 20, 28)  # smaller than its blocks
    if fn.random:
        assert not torch.equal(fn(x, 5, _gen(1)), fn(x, 5, _gen(2)))
    else:
        batched = fn(torch.cat([photo, photo.flip(-1) * 0.8]), 4, _gen(0))
        torch.testing.assert_close(batched[1:], fn(photo.flip(-1) * 0.8, 4, _gen(0)), atol=1e-5, rtol=0)


@pytest.mark.parametrize("code", TID_CODES)
def test_tid_degrades_with_level(code: str, photo: torch.Tensor) -> None:
    fn = T.tid_distortion(code)
    assert fn.monotone
    x = photo.repeat(2, 1, 1, 1)
    psnr = [_psnr(fn(x, level, _gen(0)), x) for level in range(1, 6)]
    assert all(a > b for a, b in itertools.pairwise(psnr)), psnr
    assert psnr[0] < 40, psnr  # level 1 is visible


def test_tid_known_values(photo: torch.Tensor) -> None:
    # uniform quantisation to n levels per channel leaves at most n values
    assert len(torch.unique(T.quantisation_noise(photo, 5, None))) <= 4
    # mean shift alternates sign with growing magnitude
    diffs = [float((T.mean_shift(photo * 0.5 + 0.25, level, None) - (photo * 0.5 + 0.25)).mean()) for level in (1, 2)]
    assert diffs[0] > 0 > diffs[1] and abs(diffs[1]) > diffs[0]
    # chromatic aberration leaves green untouched
    assert torch.equal(T.chromatic_aberrations(photo, 5, None)[:, 1], photo[:, 1])
    # the transmission-error levels are nested: a stronger level damages every block a milder one does
    coded = T._jpeg(photo, 75)
    mild, strong = ((T.jpeg_transmission_errors(photo, level, _gen(4)) != coded).any(1) for level in (1, 5))
    assert mild.any() and bool((strong | ~mild).all()) and strong.sum() > mild.sum()


def test_tid_global_rng_untouched(photo: torch.Tensor) -> None:
    state = torch.random.get_rng_state()
    for code in TID_CODES:
        T.tid_distortion(code)(photo, 3, _gen(0))
        T.tid_distortion(code)(photo, 3, None)
    assert torch.equal(state, torch.random.get_rng_state())


@pytest.mark.parametrize("code", CODES)
def test_chunked_batches_equal_whole_batches(code: str, photo: torch.Tensor, monkeypatch: pytest.MonkeyPatch) -> None:
    # batched calls work in cache-sized chunks of images; the chunk size must never change a value
    if code == "15":
        pytest.skip("denoise runs image by image in scikit-image whatever the chunk size (and is slow)")
    fn = D.get_distortion(code)
    x = torch.cat([photo, photo.flip(-1) * 0.8, photo.transpose(-1, -2)])
    monkeypatch.setattr(D, "_CHUNK_ELEMENTS", 1)  # one image per chunk
    one = fn(x, 4, _gen(0))
    monkeypatch.setattr(D, "_CHUNK_ELEMENTS", 10**9)  # the whole batch at once
    whole = fn(x, 4, _gen(0))
    # float32 convolutions may round differently with the batch size (as in test_batched_equals_per_image)
    torch.testing.assert_close(one, whole, atol=1e-5, rtol=0)
    if not fn.random:  # a deterministic whole batch equals per-image calls
        torch.testing.assert_close(whole, torch.cat([fn(x[i : i + 1], 4, None) for i in range(3)]), atol=1e-5, rtol=0)


def test_noise_draws_the_whole_batch_at_once(photo: torch.Tensor) -> None:
    # the random types draw the batch's noise in one call, so their values do not depend on chunking
    x = photo.repeat(2, 1, 1, 1)
    noise = torch.randn(x.shape, generator=_gen(5))
    torch.testing.assert_close(D.white_noise(x, 3, _gen(5)), (x + 0.003**0.5 * noise).clamp(0, 1), atol=0, rtol=0)
    u = torch.rand(x.shape, generator=_gen(6))
    salt_pepper = torch.where(u < 0.005, 0.0, torch.where(u < 0.01, 1.0, x))
    assert torch.equal(D.impulse_noise(x, 3, _gen(6)), salt_pepper)


def test_inputs_are_never_modified(photo: torch.Tensor) -> None:
    # outputs are clamped in place chunk by chunk: only ever in the distortion's own buffer, never in the input
    x = torch.cat([photo * 1.2 - 0.1, photo])  # values outside [0, 1] would show an in-place clamp
    before = x.clone()
    for fn in [*(D.get_distortion(c) for c in CODES if c != "15"), *(T.tid_distortion(c) for c in TID_CODES)]:
        fn(x, 3, _gen(0))
        assert torch.equal(x, before), fn.name
