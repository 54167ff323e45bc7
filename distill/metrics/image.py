"""Sample metrics for restored images (PSNR, SSIM) following BasicSR's ``calculate_psnr`` / ``calculate_ssim``.

Inputs are ``(B, C, H, W)`` tensors in [0, 1] (RGB channel order when ``C == 3``), any float dtype and device.
Convention (BasicSR 1.4.2): compute in float64 on the 0–255 scale; with ``test_y_channel`` and 3 channels, evaluate
the ITU-R BT.601 luma ``Y`` only; discard ``crop_border`` pixels on every side. A one-channel image is scored as it
is (BasicSR's ``to_y_channel`` only converts 3 channels); the data readers replicate grey files to 3 channels, as
BasicSR's ``cv2.imread`` does, so a grey test image is scored on ``Y = 16 + 219·v``.

``quantize``: BasicSR's validation scores ``tensor2img`` outputs, i.e. images clamped to [0, 1] and rounded to
8 bits. The *registered* metrics ``psnr`` and ``ssim`` (what recipes and the evaluator use) do the same by default
(``quantize=True``; ``metric_args: {psnr: {quantize: false}}`` keeps float scoring). Called as plain functions they
default to float scoring, the mathematical metric.
Results are float64 tensors of shape ``(B,)`` on the input device (on CPU for MPS inputs, which lack float64).

One difference from BasicSR: its ``to_y_channel`` passes the image through float32, ours stays in float64, so
Y-channel scores agree to about 1e-7 relative rather than to the last digit.
"""

from __future__ import annotations

import math

import torch

from distill.metrics.base import register_metric
from distill.metrics.inputs import unit_images

__all__ = ["psnr", "quantize_8bit", "rgb_to_y", "ssim"]

_SSIM_SIZE = 11
_SSIM_SIGMA = 1.5
_C1 = (0.01 * 255) ** 2
_C2 = (0.03 * 255) ** 2
_SSIM_CHUNK_ELEMENTS = 1 << 17  # values per image chunk (1 MiB of float64 per moment map)


def rgb_to_y(x01: torch.Tensor) -> torch.Tensor:
    """ITU-R BT.601 luma of ``(B, 3, H, W)`` RGB in [0, 1], as ``(B, 1, H, W)`` on the 0–255 scale.

    ``Y = 16 + 65.481 R + 128.553 G + 24.966 B`` (MATLAB ``rgb2ycbcr``, BasicSR ``bgr2ycbcr(y_only=True)`` · 255).
    """
    if x01.dim() != 4 or x01.shape[1] != 3:
        raise ValueError(f"rgb_to_y expects (B, 3, H, W), got {tuple(x01.shape)}")
    r, g, b = x01[:, 0:1], x01[:, 1:2], x01[:, 2:3]
    y = torch.mul(r, 65.481).add_(16.0)  # 16 + 65.481 R + 128.553 G + 24.966 B, with half the temporaries
    return y.add_(torch.mul(g, 128.553)).add_(torch.mul(b, 24.966))


def quantize_8bit(x01: torch.Tensor) -> torch.Tensor:
    """BasicSR's ``tensor2img``: clamp to [0, 1] in float32, scale to 0–255 and round (half to even), as float64."""
    return x01.detach().float().clamp(0, 1).mul(255.0).round().to(torch.float64)


def _to_255(
    pred: torch.Tensor, target: torch.Tensor, crop_border: int, test_y_channel: bool, quantize: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate, move to float64 on the 0–255 (or Y) scale (8-bit rounded when ``quantize``) and crop."""
    if pred.shape != target.shape:
        raise ValueError(f"pred and target differ in shape: {tuple(pred.shape)} vs {tuple(target.shape)}")
    if pred.dim() != 4:
        raise ValueError(f"expected (B, C, H, W) images, got shape {tuple(pred.shape)}")
    if crop_border < 0:
        raise ValueError(f"crop_border must be >= 0, got {crop_border}")
    out = []
    for img in (pred, target):
        if img.device.type == "mps":  # no float64 on MPS
            img = img.cpu()
        img = quantize_8bit(img) / 255.0 if quantize else img.detach().to(torch.float64)
        img = rgb_to_y(img) if test_y_channel and img.shape[1] == 3 else img * 255.0
        if crop_border:
            img = img[..., crop_border:-crop_border, crop_border:-crop_border]
        out.append(img)
    if out[0].shape[-1] == 0 or out[0].shape[-2] == 0:
        raise ValueError(f"crop_border={crop_border} leaves no pixels of a {tuple(pred.shape[-2:])} image")
    return out[0], out[1]


@register_metric("psnr", "sample", quantize=True)
def psnr(
    pred: torch.Tensor, target: torch.Tensor, crop_border: int = 0, test_y_channel: bool = False, quantize: bool = False
) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image (BasicSR convention, peak 255; inf for identical images).

    ``PSNR = 10 log10(255² / mean((pred·255 − target·255)²))`` over the cropped image (or its Y channel).
    uint8 images are read on the 0–255 scale; other integer dtypes and float targets beyond [0, 1] are refused.
    """
    pred, target = unit_images("psnr", pred, target)
    x, y = _to_255(pred, target, crop_border, test_y_channel, quantize)
    mse = (x - y).pow(2).mean(dim=(1, 2, 3))
    return 10.0 * torch.log10(255.0**2 / mse)


def _gaussian_1d(device: torch.device) -> torch.Tensor:
    """The normalised 11-tap Gaussian of ``cv2.getGaussianKernel(11, 1.5)``, float64."""
    half = _SSIM_SIZE // 2
    g = torch.tensor(
        [math.exp(-((i - half) ** 2) / (2 * _SSIM_SIGMA**2)) for i in range(_SSIM_SIZE)],
        dtype=torch.float64,
        device=device,
    )
    return g / g.sum()


def _valid_filter_1d(x: torch.Tensor, taps: torch.Tensor, dim: int) -> torch.Tensor:
    """Correlate ``x`` with ``taps`` along ``dim`` over fully-inside windows, as a sum of shifted slices.

    float64 convolutions have no fast CPU kernel; 11 fused multiply-adds over views are several times faster and
    keep float64 accuracy.
    """
    k = taps.numel()
    out_len = x.shape[dim] - k + 1
    out = x.narrow(dim, 0, out_len) * taps[0]
    for i in range(1, k):
        out.add_(x.narrow(dim, i, out_len), alpha=float(taps[i]))
    return out


def _valid_filter_2d(maps: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """The separable ``taps`` over the last two dims of ``maps``, 'valid' windows only.

    On the CPU scipy's C ``correlate1d`` (float64 throughout, one pass per axis) is the fast path; elsewhere the
    shifted-slice sums run on the tensor's device. Both agree to ~1e-13 relative (summation order only).
    """
    if maps.device.type != "cpu":
        return _valid_filter_1d(_valid_filter_1d(maps, taps, dim=2), taps, dim=3)
    from scipy.ndimage import correlate1d

    half = taps.numel() // 2
    weights = taps.numpy()
    rows = correlate1d(maps.numpy(), weights, axis=2, mode="constant")[:, :, half : maps.shape[2] - half]
    return torch.from_numpy(correlate1d(rows, weights, axis=3, mode="constant")[..., half : maps.shape[3] - half])


@register_metric("ssim", "sample", quantize=True)
def ssim(
    pred: torch.Tensor, target: torch.Tensor, crop_border: int = 0, test_y_channel: bool = False, quantize: bool = False
) -> torch.Tensor:
    """Structural similarity per image (BasicSR's ``calculate_ssim``: 11×11 Gaussian σ=1.5, 'valid' window).

    Per channel, the SSIM map ``((2μxμy + C1)(2σxy + C2)) / ((μx² + μy² + C1)(σx² + σy² + C2))`` with
    ``C1 = (0.01·255)²``, ``C2 = (0.03·255)²`` and Gaussian-weighted moments over windows fully inside the
    (cropped) image is averaged; the channel means are then averaged. Images must be at least 11×11 after cropping.
    uint8 images are read on the 0–255 scale; other integer dtypes and float targets beyond [0, 1] are refused.
    """
    pred, target = unit_images("ssim", pred, target)
    x, y = _to_255(pred, target, crop_border, test_y_channel, quantize)
    h, w = x.shape[-2:]
    if h < _SSIM_SIZE or w < _SSIM_SIZE:
        raise ValueError(f"SSIM needs images of at least {_SSIM_SIZE}×{_SSIM_SIZE} after cropping, got {h}×{w}")
    g = _gaussian_1d(x.device)
    # a few images at a time: every temporary stays cache-sized (fresh batch-sized float64 maps cost more in page
    # faults than the filtering); images are independent, so the values are those of one whole-batch pass
    step = max(1, _SSIM_CHUNK_ELEMENTS // x[0].numel())
    return torch.cat([_ssim_per_image(x[i : i + step], y[i : i + step], g) for i in range(0, x.shape[0], step)])


def _ssim_per_image(x: torch.Tensor, y: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """SSIM of each image of ``x``/``y`` (0–255 scale, float64): the five moment maps filtered at once."""
    maps = _valid_filter_2d(torch.cat([x, y, x * x, y * y, x * y], dim=1), g)
    mu_x, mu_y, e_xx, e_yy, e_xy = maps.split(x.shape[1], dim=1)
    mu_xx, mu_yy, mu_xy = mu_x * mu_x, mu_y * mu_y, mu_x * mu_y
    var_x, var_y, cov = e_xx - mu_xx, e_yy - mu_yy, e_xy - mu_xy
    ssim_map = ((2 * mu_xy + _C1) * (2 * cov + _C2)) / ((mu_xx + mu_yy + _C1) * (var_x + var_y + _C2))
    return ssim_map.mean(dim=(2, 3)).mean(dim=1)
