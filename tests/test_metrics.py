"""Metrics against scipy, BasicSR 1.4.2, scikit-image and hand-worked examples."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from scipy import stats
from skimage import color
from skimage import data as skdata
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from distill._compat import import_basicsr
from distill.metrics import (
    Metric,
    fit_logistic,
    grouped_metric,
    krcc,
    logistic4,
    logistic5,
    plcc,
    psnr,
    rgb_to_y,
    rmse,
    srcc,
    ssim,
    top1,
    top5,
    topk_correct,
)
from distill.registry import METRICS

import_basicsr()
from basicsr.metrics import calculate_psnr, calculate_ssim  # noqa: E402

# ------------------------------------------------------------------ correlation


@pytest.fixture
def scores() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    mos = rng.uniform(0, 100, 60)
    return mos + rng.normal(0, 15, 60), mos


def test_rank_and_linear_correlations_match_scipy(scores) -> None:
    pred, mos = scores
    assert srcc(pred, mos) == pytest.approx(stats.spearmanr(pred, mos)[0], abs=1e-12)
    assert krcc(pred, mos) == pytest.approx(stats.kendalltau(pred, mos)[0], abs=1e-12)
    assert plcc(pred, mos) == pytest.approx(stats.pearsonr(pred, mos)[0], abs=1e-12)
    assert rmse(pred, mos) == pytest.approx(math.sqrt(np.mean((pred - mos) ** 2)), rel=1e-12)
    # tensors (any dtype) are accepted and give python floats
    got = srcc(torch.tensor(pred, dtype=torch.float32), torch.tensor(mos))
    assert isinstance(got, float)
    assert got == pytest.approx(stats.spearmanr(pred.astype(np.float32), mos)[0], abs=1e-12)


def test_correlations_by_hand() -> None:
    # pred ranks (1, 3, 2, 4) vs (1, 2, 3, 4): Σd² = 2 -> SRCC = 1 - 6·2 / (4·15) = 0.8;
    # one discordant pair of six -> KRCC = (5 - 1) / 6
    assert srcc([1.0, 3.0, 2.0, 4.0], [10.0, 20.0, 30.0, 40.0]) == pytest.approx(0.8, abs=1e-12)
    assert krcc([1.0, 3.0, 2.0, 4.0], [10.0, 20.0, 30.0, 40.0]) == pytest.approx(4 / 6, abs=1e-12)
    assert plcc([1.0, 2.0, 3.0], [-2.0, -4.0, -6.0]) == pytest.approx(-1.0, abs=1e-12)


@pytest.mark.parametrize(
    ("kind", "curve", "params"),
    [("logistic4", logistic4, (80.0, 20.0, 5.0, 0.6)), ("logistic5", logistic5, (60.0, 1.8, 5.0, 0.8, 20.0))],
)
def test_logistic_plcc_recovers_an_exact_logistic(kind, curve, params) -> None:
    x = np.random.default_rng(1).uniform(0, 10, 150)
    y = curve(x, *params)
    assert plcc(x, y) < 0.97  # the raw relation is clearly non-linear
    assert plcc(x, y, fit=kind) == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(fit_logistic(x, y, kind), y, atol=1e-6 * np.ptp(y))
    assert rmse(x, y, fit=kind) == pytest.approx(0.0, abs=1e-6 * np.ptp(y))
    assert METRICS.get(f"plcc_{kind}")(x, y) == pytest.approx(1.0, abs=1e-6)
    # scale and sign of the predictions do not matter (standardised fit, decreasing trends)
    assert plcc(-1e-3 * x + 7.0, y, fit=kind) == pytest.approx(1.0, abs=1e-6)


def test_logistic_fit_on_noisy_scores_does_not_hurt(scores) -> None:
    pred, mos = scores
    for kind in ("logistic4", "logistic5"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a sane fit emits no warning
            assert plcc(pred, mos, fit=kind) >= plcc(pred, mos) - 1e-9
            assert rmse(pred, mos, fit=kind) <= rmse(pred, mos) + 1e-9


def test_failed_fit_falls_back_to_raw_values_with_a_warning() -> None:
    x, y = np.array([1.0, 2.0, 4.0]), np.array([1.0, 3.0, 2.0])  # 3 samples cannot fit 5 parameters
    with pytest.warns(RuntimeWarning, match="logistic5"):
        np.testing.assert_array_equal(fit_logistic(x, y, "logistic5"), x)
    with pytest.warns(RuntimeWarning):
        assert plcc(x, y, fit="logistic5") == pytest.approx(stats.pearsonr(x, y)[0], abs=1e-12)
    with pytest.raises(ValueError, match="unknown fit"):
        fit_logistic(x, y, "cubic")


@pytest.mark.parametrize(
    ("pred", "target"),
    [([], []), ([1.0], [2.0]), ([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]), ([1.0, 2.0, 3.0], [5.0, 5.0, 5.0])],
)
def test_degenerate_inputs_give_nan_silently(pred, target) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for fn in (srcc, krcc, plcc, METRICS.get("plcc_logistic4"), METRICS.get("plcc_logistic5")):
            assert math.isnan(fn(pred, target))
        assert math.isnan(rmse(pred, target, fit="logistic4"))
    assert math.isnan(rmse([], []))


# ------------------------------------------------------------------ images


def _bgr255(t: torch.Tensor) -> np.ndarray:
    """(C, H, W) RGB tensor in [0, 1] -> HWC BGR float64 in [0, 255], BasicSR's input convention."""
    return t.permute(1, 2, 0).double().numpy()[..., ::-1] * 255.0


def _random_pairs() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    clean = torch.rand(4, 3, 37, 45, generator=g, dtype=torch.float64)
    noisy = (clean + 0.08 * torch.randn(clean.shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    return clean, noisy


def _astronaut_pair() -> tuple[torch.Tensor, torch.Tensor]:
    img = torch.from_numpy(skdata.astronaut()[128:384, 128:384]).permute(2, 0, 1)[None].double() / 255.0
    noise = torch.randn(img.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    return img, (img + 0.03 * noise).clamp(0, 1)


PAIRS = {"random": _random_pairs, "astronaut": _astronaut_pair}


@pytest.mark.parametrize("pair", sorted(PAIRS))
@pytest.mark.parametrize("crop_border", [0, 4])
@pytest.mark.parametrize("test_y_channel", [False, True])
def test_psnr_ssim_match_basicsr(pair, crop_border, test_y_channel) -> None:
    pred, target = PAIRS[pair]()
    got_psnr = psnr(pred, target, crop_border=crop_border, test_y_channel=test_y_channel)
    got_ssim = ssim(pred, target, crop_border=crop_border, test_y_channel=test_y_channel)
    assert got_psnr.shape == got_ssim.shape == (pred.shape[0],)
    for i in range(pred.shape[0]):
        a, b = _bgr255(pred[i]), _bgr255(target[i])
        ref_psnr = calculate_psnr(a, b, crop_border, test_y_channel=test_y_channel)
        ref_ssim = calculate_ssim(a, b, crop_border, test_y_channel=test_y_channel)
        # RGB: identical to ~1e-15. Y: BasicSR's to_y_channel goes through float32, ours stays float64 (~1e-8)
        assert got_psnr[i].item() == pytest.approx(ref_psnr, rel=1e-6)
        assert got_ssim[i].item() == pytest.approx(ref_ssim, rel=1e-6)


@pytest.mark.parametrize("pair", sorted(PAIRS))
@pytest.mark.parametrize("test_y_channel", [False, True])
def test_psnr_ssim_match_skimage(pair, test_y_channel) -> None:
    # skimage filters the whole image with 'reflect' padding where BasicSR uses 'valid' windows, but it then drops a
    # 5-pixel strip (the window radius) before averaging, so the same SSIM map is averaged: only floating-point
    # summation order differs (~1e-16 observed). Y via skimage's own BT.601 rgb2ycbcr (float64).
    pred, target = PAIRS[pair]()
    got_psnr = psnr(pred, target, test_y_channel=test_y_channel)
    got_ssim = ssim(pred, target, test_y_channel=test_y_channel)
    for i in range(pred.shape[0]):
        a, b = (t[i].permute(1, 2, 0).numpy() for t in (pred, target))
        if test_y_channel:
            a, b = color.rgb2ycbcr(a)[..., 0], color.rgb2ycbcr(b)[..., 0]
            axis = None
        else:
            a, b, axis = a * 255.0, b * 255.0, -1
        ref_psnr = peak_signal_noise_ratio(a, b, data_range=255)
        ref_ssim = structural_similarity(
            a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255, channel_axis=axis
        )
        assert got_psnr[i].item() == pytest.approx(ref_psnr, rel=1e-9)
        assert got_ssim[i].item() == pytest.approx(ref_ssim, rel=1e-9)


def test_grayscale_ignores_y_flag_like_basicsr() -> None:
    pred, target = (t[:, :1] for t in _random_pairs())
    for flag in (False, True):
        got = ssim(pred, target, crop_border=2, test_y_channel=flag)
        ref = calculate_ssim(pred[0, 0].numpy() * 255, target[0, 0].numpy() * 255, 2, test_y_channel=flag)
        # with the flag, BasicSR's to_y_channel still round-trips a gray image through float32 (~1e-10 here)
        assert got[0].item() == pytest.approx(ref, rel=1e-6 if flag else 1e-12)


def test_batch_is_vectorised_and_dtype_agnostic() -> None:
    pred, target = _random_pairs()
    batched = ssim(pred, target, crop_border=3)
    single = torch.cat([ssim(pred[i : i + 1], target[i : i + 1], crop_border=3) for i in range(pred.shape[0])])
    torch.testing.assert_close(batched, single, rtol=1e-12, atol=0)
    low = psnr(pred.float(), target.float())
    assert low.dtype == torch.float64
    torch.testing.assert_close(low, psnr(pred.float().double(), target.float().double()), rtol=1e-12, atol=0)


def test_identical_images() -> None:
    img = _random_pairs()[0]
    assert torch.isinf(psnr(img, img)).all()
    torch.testing.assert_close(ssim(img, img, test_y_channel=True), torch.ones(4, dtype=torch.float64))


def test_psnr_by_hand() -> None:
    # every pixel off by 0.1 (= 25.5 on the 0–255 scale): PSNR = 10 log10(255² / 25.5²) = 20 dB exactly
    a = torch.full((1, 3, 8, 8), 0.5, dtype=torch.float64)
    assert psnr(a, a + 0.1).item() == pytest.approx(20.0, abs=1e-9)


def test_rgb_to_y() -> None:
    rgb = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0]).view(5, 3, 1, 1)
    # Y = 16 + 65.481 R + 128.553 G + 24.966 B (0–255 scale): black 16, white 235
    expected = torch.tensor([16 + 65.481, 16 + 128.553, 16 + 24.966, 16.0, 235.0]).view(5, 1, 1, 1)
    torch.testing.assert_close(rgb_to_y(rgb), expected)


def test_image_metric_validation() -> None:
    a = torch.rand(1, 3, 12, 12)
    with pytest.raises(ValueError, match="at least 11"):
        ssim(a, a, crop_border=1)
    with pytest.raises(ValueError, match="shape"):
        psnr(a, a[..., :10])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_image_metrics_on_cuda() -> None:
    pred, target = _random_pairs()
    for fn in (psnr, ssim):
        got = fn(pred.cuda().float(), target.cuda().float(), crop_border=4, test_y_channel=True)
        assert got.device.type == "cuda"
        ref = fn(pred.float(), target.float(), crop_border=4, test_y_channel=True)
        torch.testing.assert_close(got.cpu(), ref, rtol=1e-10, atol=0)


# ------------------------------------------------------------------ classification


def test_topk_by_hand() -> None:
    logits = torch.tensor(
        [
            [0.1, 0.5, 0.2, 0.9, 0.0, 0.3],  # ranking 3, 1, 5, 2, 0, 4
            [0.8, 0.1, 0.0, 0.2, 0.3, 0.4],  # ranking 0, 5, 4, 3, 1, 2
            [0.0, 0.1, 0.2, 0.3, 0.4, 0.5],  # ranking 5, 4, 3, 2, 1, 0
        ]
    )
    target = torch.tensor([3, 2, 1])
    # row 0: target 3 ranked 1st; row 1: target 2 ranked 6th; row 2: target 1 ranked 5th
    assert top1(logits, target).tolist() == [1.0, 0.0, 0.0]
    assert top5(logits, target).tolist() == [1.0, 0.0, 1.0]
    assert topk_correct(logits, target, 2).tolist() == [1.0, 0.0, 0.0]
    assert topk_correct(logits, target, 100).tolist() == [1.0, 1.0, 1.0]  # k > C counts every class
    assert METRICS.get("top5")(logits, target).mean().item() == pytest.approx(2 / 3)


# ------------------------------------------------------------------ grouping and registry


def test_grouped_set_metric_matches_manual_split(scores) -> None:
    pred, mos = scores
    groups = np.array(["jpeg", "blur", "noise"])[np.arange(pred.size) % 3]
    got = grouped_metric(METRICS.get("srcc"), pred, mos, list(groups))
    assert list(got) == ["blur", "jpeg", "noise"]
    for key, value in got.items():
        m = groups == key
        assert value == pytest.approx(stats.spearmanr(pred[m], mos[m])[0], abs=1e-12)
    got = grouped_metric(METRICS.get("plcc"), torch.from_numpy(pred), torch.from_numpy(mos), list(groups))
    assert got["noise"] == pytest.approx(stats.pearsonr(pred[groups == "noise"], mos[groups == "noise"])[0])


def test_grouped_sample_metric_averages_per_sample_values() -> None:
    pred, target = _random_pairs()
    groups = [10, 2, 10, 2]  # keys become strings and sort as strings: "10" < "2"
    got = grouped_metric(METRICS.get("psnr"), pred, target, groups)
    assert list(got) == ["10", "2"]
    per_image = METRICS.get("psnr")(pred, target)  # the registered metric: 8-bit scoring
    assert got["10"] == pytest.approx(per_image[[0, 2]].mean().item(), rel=1e-12)
    assert got["2"] == pytest.approx(per_image[[1, 3]].mean().item(), rel=1e-12)
    with pytest.raises(ValueError, match="group labels"):
        grouped_metric(METRICS.get("psnr"), pred, target, groups[:3])


def test_registered_metrics() -> None:
    expected = {
        "srcc": ("set", True, {}),
        "krcc": ("set", True, {}),
        "plcc": ("set", True, {}),
        "plcc_logistic4": ("set", True, {"fit": "logistic4"}),
        "plcc_logistic5": ("set", True, {"fit": "logistic5"}),
        "rmse": ("set", False, {}),
        "psnr": ("sample", True, {"quantize": True}),
        "ssim": ("sample", True, {"quantize": True}),
        "top1": ("sample", True, {}),
        "top5": ("sample", True, {}),
    }
    for name, (kind, higher, kwargs) in expected.items():
        metric = METRICS.get(name)
        assert isinstance(metric, Metric)
        assert (metric.name, metric.kind, metric.higher_is_better, metric.kwargs) == (name, kind, higher, kwargs)
        assert METRICS.describe(name)


def test_ssim_cpu_fast_path_equals_the_device_path(monkeypatch) -> None:
    # on the CPU, SSIM filters with scipy's C correlate1d, image chunk by image chunk; the device path (shifted
    # slices over the whole batch) must give the same values to float64 rounding
    from distill.metrics import image

    pred, target = _random_pairs()
    monkeypatch.setattr(image, "_SSIM_CHUNK_ELEMENTS", 1)  # one image per chunk
    fast = ssim(pred, target, crop_border=2, test_y_channel=True)
    monkeypatch.setattr(image, "_SSIM_CHUNK_ELEMENTS", 10**9)
    monkeypatch.setattr(
        image, "_valid_filter_2d", lambda m, t: image._valid_filter_1d(image._valid_filter_1d(m, t, dim=2), t, dim=3)
    )
    torch.testing.assert_close(fast, ssim(pred, target, crop_border=2, test_y_channel=True), rtol=1e-12, atol=0)


def _cubic_scores(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Predictions whose MOS relation is cubic: the 5-parameter fit has a poor local optimum near the usual start."""
    r = np.random.default_rng(seed)
    n = int(r.integers(20, 200))
    x = r.normal(size=n) * r.uniform(0.1, 10) + r.uniform(-5, 5)
    return x, x**3 / x.std() ** 3 + r.normal(scale=1, size=n)


@pytest.mark.parametrize("seed", [8, 11])
def test_plcc_logistic5_finds_the_best_of_many_random_starts(seed):
    from scipy import optimize, stats

    from distill.metrics.correlation import logistic5, plcc

    x, y = _cubic_scores(seed)
    xs, ys = (x - x.mean()) / x.std(), (y - y.mean()) / y.std()
    g = np.random.default_rng(0)
    best = -1.0
    for _ in range(30):
        p0 = [g.uniform(-3, 3), g.uniform(0.1, 8), g.uniform(-1.5, 1.5), g.uniform(-1, 1), 0.0]
        try:
            params, _ = optimize.curve_fit(logistic5, xs, ys, p0=p0, maxfev=3000)
        except RuntimeError:
            continue
        value = stats.pearsonr(logistic5(xs, *params), ys)[0]
        best = max(best, value) if np.isfinite(value) else best
    ours = plcc(x, y, fit="logistic5")
    assert ours >= best - 1e-6, (ours, best)
    assert ours >= stats.pearsonr(x, y)[0]  # never below the least-squares line


@pytest.mark.parametrize("metric", ["psnr", "ssim"])
def test_image_metrics_read_uint8_on_the_255_scale_and_refuse_other_integers(metric):
    from distill.metrics.image import psnr, ssim

    fn = {"psnr": psnr, "ssim": ssim}[metric]
    g = torch.Generator().manual_seed(0)
    a = torch.rand(2, 3, 24, 24, generator=g)
    b = (a + 0.1 * torch.randn(2, 3, 24, 24, generator=g)).clamp(0, 1)
    a8, b8 = ((t * 255).round().to(torch.uint8) for t in (a, b))
    expected = fn(a8.double() / 255, b8.double() / 255)
    assert torch.equal(fn(a8, b8), expected)
    assert torch.equal(fn(a8, b8.double() / 255), expected)  # mixed: each input read on its own scale
    for bad in (a8.long(), a8.bool(), a8.to(torch.int16)):
        with pytest.raises(TypeError, match=rf"{metric}: pred has dtype torch\.\w+; give float images in \[0, 1\]"):
            fn(bad, b8)
    with pytest.raises(ValueError, match=rf"{metric}: target values reach 2\d\d.*divide float images by 255"):
        fn(a * 255, b * 255)
