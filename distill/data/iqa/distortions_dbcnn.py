"""DBCNN's nine synthetic distortions for SCNN pre-training (Zhang et al., TCSVT 2020; MATLAB ``distortion_generator``).

Each type is a :class:`DbcnnDistortion` registered in :data:`distill.registry.DISTORTIONS` as ``dbcnn_<name>`` with
the contract of :mod:`distill.data.iqa.distortions` (``fn(x[B, 3, H, W] in [0, 1], level 1..5, generator)``).  The
parameters per level are those of the authors' released generator (github.com/zwx8981/DBCNN,
``distortion_generator.m``); the output is rounded to 8 bits, as the generator saved images.

Where Python differs from MATLAB the docstring says so: JPEG/JPEG2000 use Pillow's libjpeg/OpenJPEG encoders
(JPEG2000's levels as the quality layers of one encode per image), the colour quantisation builds its palette by
median cut (MATLAB's ``rgb2ind`` uses minimum variance) before Floyd–Steinberg dithering, and the random draws (white
and pink noise) come from the generator, not MATLAB's ``rng``.

:data:`DBCNN_CLASSES` lists the (type, level) pairs of the pre-training classes.  The paper states 39 classes,
"seven distortion types with five levels and two distortion types with two levels"; the released code generates five
levels for every type.  The author names the two types in zwx8981/DBCNN issue #9 ("where can I found the SCNN
labels", 2020-11-24): "there are only 39 classess. 7 types with 5 levels and 2 types with 2 levels" and, asked which,
"over-exposure and under-exposure".  Which two of their five levels are kept is not stated anywhere we found: the two
mildest (1, 2) is our reading; ``types``/``levels`` of :class:`distill.data.iqa.pristine.DbcnnDistortions` change it.
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Callable, Iterator, Sequence

import kornia
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from distill.data.iqa.distortions import Impl, KadidDistortion, _through_pil
from distill.errors import DataError
from distill.registry import DISTORTIONS

__all__ = [
    "DBCNN_CLASSES",
    "DBCNN_GENERATOR",
    "DBCNN_GENERATOR_CHANGES",
    "DBCNN_LEVELS",
    "DBCNN_TYPES",
    "DbcnnDistortion",
    "dbcnn_distortion",
]

#: DBCNN's type number (``dist_type`` 1–9 of ``distortion_generator.m``) → canonical name.
DBCNN_TYPES: dict[str, str] = {
    "1": "gaussian_blur",
    "2": "white_noise",
    "3": "jpeg",
    "4": "jpeg2000",
    "5": "contrast_stretch",
    "6": "pink_noise",
    "7": "colour_quantisation_dither",
    "8": "overexposure",
    "9": "underexposure",
}
#: Levels used per type for the 39 pre-training classes: 7 types × 5 + over-/under-exposure × 2 (zwx8981/DBCNN issue
#: #9); that those two keep levels 1 and 2 is our reading.
DBCNN_LEVELS: dict[str, tuple[int, ...]] = {c: (1, 2) if c in ("8", "9") else (1, 2, 3, 4, 5) for c in DBCNN_TYPES}
#: Class index → (type, level), type-major.
DBCNN_CLASSES: tuple[tuple[str, int], ...] = tuple((c, lv) for c, lvs in DBCNN_LEVELS.items() for lv in lvs)

#: the version of this generator's output. 2: the colour-quantisation palette from a 128² sample (1: 256²), wide
#: blurs as matrix products and pink-noise statistics in another summation order (those two within one grey level).
#: 3: JPEG2000 levels decoded from the quality layers of one encode (1, 2: one encode per level); every blur as
#: banded matrix products (within one grey level of the convolution, as before).
#: A prepared set records it, and a set from another version is refused (its items would differ from these).
DBCNN_GENERATOR = 3
#: what changed in each version, for the message that refuses a prepared set of another version
DBCNN_GENERATOR_CHANGES: dict[int, str] = {
    2: "the colour-quantisation palette",
    3: "JPEG2000 from the quality layers of one encode",
}

_IMPLEMENTED: dict[str, DbcnnDistortion] = {}


class DbcnnDistortion(KadidDistortion):
    """A DBCNN distortion: ``fn(x, level, generator)``; ``code`` is DBCNN's type number; output rounded to 8 bits."""

    def __call__(self, x: Tensor, level: int, generator: torch.Generator | None = None) -> Tensor:
        return (super().__call__(x, level, generator) * 255).round() / 255

    def levels_u8(self, x: Tensor, levels: Sequence[int], generators: Sequence[torch.Generator]) -> Iterator[Tensor]:
        """``self(x, level, generator)`` of one image ``x`` (``[1, 3, H, W]`` float) for each level, as 8-bit values:
        ``[3, H, W]`` tensors (uint8, or float holding the integers 0–255) equal bit for bit to
        ``(self(x, level, generator)[0] * 255).round()`` (tests/test_dbcnn_fast.py).

        The work the levels share is done once: the Pillow types (JPEG, JPEG2000, colour quantisation) convert the
        image to 8 bits once and never return to float (JPEG2000 encodes once for all its levels), the contrast
        stretch computes the image's limits once; the float types skip the ``/ 255`` and ``* 255`` between the call
        and the 8-bit output.
        """
        params = [self.params[lv - 1] for lv in levels]
        pil = _PIL_LEVELS.get(self.code)
        if pil is not None:
            arr = (x[0].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
            for img in pil(Image.fromarray(arr, "RGB"), params):
                yield torch.from_numpy(np.array(img if img.mode == "RGB" else img.convert("RGB"))).permute(2, 0, 1)
            return
        xf = x.float()
        if self.code == contrast_stretch.code:
            outs: Iterator[Tensor] = _contrast_levels(xf, params)
        else:
            outs = (self._impl(xf, p, g) for p, g in zip(params, generators, strict=True))
        for y in outs:
            yield y[0].clamp(0.0, 1.0).mul_(255).round_()

    def __reduce__(self) -> tuple[Callable[[str], DbcnnDistortion], tuple[str]]:  # type: ignore[override]
        return dbcnn_distortion, (self.code,)

    def __repr__(self) -> str:
        return f"<DBCNN distortion {self.code} {self.name} params={self.params}>"


def _dbcnn(code: str, params: tuple[float, ...], *, random: bool = False) -> Callable[[Impl], DbcnnDistortion]:
    def wrap(impl: Impl) -> DbcnnDistortion:
        fn = DbcnnDistortion(code, f"dbcnn_{DBCNN_TYPES[code]}", params, impl, random=random)
        DISTORTIONS.register(fn, name=fn.name)
        _IMPLEMENTED[code] = fn
        return fn

    return wrap


def dbcnn_distortion(name_or_code: str | int) -> DbcnnDistortion:
    """The DBCNN distortion with type number ``1``–``9`` or name (``jpeg``, ``dbcnn_jpeg``)."""
    key = str(name_or_code).strip().lower().removeprefix("dbcnn_")
    for code, name in DBCNN_TYPES.items():
        if key in (code, name):
            return _IMPLEMENTED[code]
    valid = ", ".join(f"{c} {n}" for c, n in DBCNN_TYPES.items())
    raise DataError(f"unknown DBCNN distortion type '{name_or_code}'. Valid: {valid}")


def _u8(x: Tensor) -> Tensor:
    """What MATLAB's uint8 image holds: values rounded to 1/255 steps."""
    return x.clamp(0, 1).mul_(255).round_().div_(255)


@functools.lru_cache(maxsize=16)
def _symmetric_blur_matrix(n: int, k: int) -> Tensor:
    """The ``n``×``n`` matrix of a ``k``-tap Gaussian (σ = k / 6) with MATLAB 'symmetric' borders folded in.

    Row ``i`` holds the weights that ``conv(symmetric_pad(x), kernel)[i]`` gives each source sample; the symmetric
    extension is periodic with period ``2n`` (so a kernel wider than the image mirrors again, as the padding does).
    """
    kernel = kornia.filters.get_gaussian_kernel1d(k, k / 6).double().flatten()
    i = torch.arange(n)[:, None].expand(n, k)
    src = (i + torch.arange(k)[None, :] - k // 2) % (2 * n)
    src = torch.where(src >= n, 2 * n - 1 - src, src)
    m = torch.zeros(n, n, dtype=torch.float64)
    m.index_put_((i, src), kernel.expand(n, k), accumulate=True)
    return m.float()


@functools.lru_cache(maxsize=64)
def _banded_blur_blocks(n: int, k: int) -> tuple[tuple[int, int, int, Tensor], ...]:
    """:func:`_symmetric_blur_matrix` cut into blocks of rows, each with only the columns its rows reach: ``(first
    row, first column, last column + 1, block)``; ~32 rows a block (a third of ``k`` for wide kernels)."""
    m, pad = _symmetric_blur_matrix(n, k), k // 2
    rows = max(32, k // 3)
    blocks = []
    for r0 in range(0, n, rows):
        r1 = min(n, r0 + rows)
        c0, c1 = (max(0, r0 - pad), min(n, r1 + pad)) if pad < n else (0, n)  # one fold stays in the band
        blocks.append((r0, c0, c1, m[r0:r1, c0:c1].contiguous()))
    return tuple(blocks)


def _banded_blur(x: Tensor, k: int) -> Tensor:
    """``A_h @ x @ A_wᵀ``, ``A`` the blur matrices of ``k`` taps, each product block by block of output rows
    (columns) over the band of input rows (columns) they reach."""
    h, w = x.shape[-2:]
    vertical = torch.empty_like(x)
    for r0, c0, c1, block in _banded_blur_blocks(h, k):
        vertical[..., r0 : r0 + block.shape[0], :] = block.to(x) @ x[..., c0:c1, :]
    out = torch.empty_like(x)
    for r0, c0, c1, block in _banded_blur_blocks(w, k):
        out[..., r0 : r0 + block.shape[0]] = vertical[..., c0:c1] @ block.to(x).T
    return out


@_dbcnn("1", (7, 15, 39, 91, 199))
def gaussian_blur(x: Tensor, hsize: float, g: torch.Generator) -> Tensor:
    """Gaussian blur: ``fspecial('gaussian', hsize, hsize / 6)`` with hsize 7–199, symmetric borders.

    Runs as ``A_h @ x @ A_wᵀ`` with the borders folded into cached matrices, each product block by block of rows
    and only over the columns the kernel reaches (a band; generator 2 multiplied the whole matrices for 39 taps and
    up and convolved below): 2–3x faster than either on a 384×512 image. The sums are reordered, so values differ
    from the convolution by ~1e-6 and a few pixels of the 8-bit output by one grey level (tests/test_dbcnn_fast.py).
    """
    return _banded_blur(x, int(hsize))


def _gaussian_blur_conv(x: Tensor, k: int) -> Tensor:
    """The blur as two 1-D convolutions of the symmetrically padded image (the reference path)."""
    sigma = k / 6
    pad = k // 2
    h, w = x.shape[-2:]
    if pad >= min(h, w):  # reflect padding needs pad < size: repeat the mirror until it fits
        reps = math.ceil(pad / min(h, w)) + 1
        x_big = x
        for _ in range(reps):
            x_big = torch.cat([x_big.flip(-2), x_big, x_big.flip(-2)], -2)
            x_big = torch.cat([x_big.flip(-1), x_big, x_big.flip(-1)], -1)
        top, left = (x_big.shape[-2] - h) // 2, (x_big.shape[-1] - w) // 2
        padded = x_big[..., top - pad : top + h + pad, left - pad : left + w + pad]
    else:  # MATLAB 'symmetric' repeats the edge pixel: flip-and-concatenate
        padded = torch.cat([x[..., :pad, :].flip(-2), x, x[..., h - pad :, :].flip(-2)], -2)
        padded = torch.cat([padded[..., :pad].flip(-1), padded, padded[..., w - pad :].flip(-1)], -1)
    kernel = kornia.filters.get_gaussian_kernel1d(k, sigma).to(x)
    out = F.conv2d(padded.flatten(0, 1)[:, None], kernel.view(1, 1, 1, k))
    out = F.conv2d(out, kernel.view(1, 1, k, 1))
    return out.view_as(x)


@_dbcnn("2", tuple(2.0**e for e in (-10, -7.5, -5.5, -3.5, 0)), random=True)
def white_noise(x: Tensor, var: float, g: torch.Generator) -> Tensor:
    """White noise: ``imnoise(img, 'gaussian', 0, 2^[-10, -7.5, -5.5, -3.5, 0])`` (variance on [0, 1] values)."""
    noise = torch.randn(tuple(x.shape), generator=g, device=g.device, dtype=torch.float32).to(x)
    return noise.mul_(math.sqrt(var)).add_(x)  # x + √var·noise, in place


@_dbcnn("3", (43, 12, 7, 4, 0))
def jpeg(x: Tensor, quality: float, g: torch.Generator) -> Tensor:
    """JPEG at quality 43, 12, 7, 4, 0 (MATLAB ``imwrite``; here Pillow's libjpeg, which treats 0 as 1)."""
    return _through_pil(x, lambda img: _jpeg_levels(img, [quality])[0])


def _jpeg_levels(img: Image.Image, qualities: Sequence[float]) -> list[Image.Image]:
    outs = []
    for q in qualities:
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=max(1, int(q)))
        buf.seek(0)
        outs.append(Image.open(buf))
    return outs


#: JPEG2000's compression ratios (24 / bits per pixel), level 1 to 5
_J2K_RATIOS = tuple(24 / bpp for bpp in (0.46, 0.16, 0.07, 0.04, 0.02))


@_dbcnn("4", _J2K_RATIOS)
def jpeg2000(x: Tensor, ratio: float, g: torch.Generator) -> Tensor:
    """JPEG2000 at 0.46–0.02 bits per pixel (compression ratio 24 / bpp; Pillow's OpenJPEG encoder, irreversible).

    One encode holds every level as a quality layer (the lowest rate first) and a level decodes the layers up to its
    rate, so the five levels of an image cost one encode (OpenJPEG's encode is ~5x its decode) instead of five. The
    strongest level is the first layer, equal to an encode at its rate alone (MATLAB's ``imwrite``, and generators 1
    and 2 here); the packet headers of the layers below leave each milder level a few dozen bytes less of its budget:
    on 384×512 photos (Waterloo's size) within 0.3 dB PSNR of the one-rate encode and at least 33 dB from it
    (tests/test_dbcnn_fast.py); on small images, where a level's budget is itself a few hundred bytes, the gap
    grows (up to ~3 dB on 96×128).
    """
    return _through_pil(x, lambda img: _j2k_levels(img, [ratio])[0])


def _j2k_levels(img: Image.Image, ratios: Sequence[float]) -> list[Image.Image]:
    """``img`` encoded once with :data:`_J2K_RATIOS` as quality layers, decoded at each of ``ratios``."""
    layers = sorted(_J2K_RATIOS, reverse=True)  # OpenJPEG's layers grow in rate: the smallest first
    buf = io.BytesIO()
    img.save(buf, "JPEG2000", quality_mode="rates", quality_layers=layers, irreversible=True)
    data = buf.getvalue()
    outs = []
    for ratio in ratios:
        dec = Image.open(io.BytesIO(data))
        (tile,) = dec.tile
        codec, _reduce, _layers, *rest = tile.args
        # Pillow's ``layers`` attribute reaches the decoder only together with ``reduce``: set the tile's own
        dec.tile = [tile._replace(args=(codec, 0, layers.index(ratio) + 1, *rest))]
        dec.load()
        outs.append(dec)
    return outs


@_dbcnn("5", (0.2, 0.3, 0.4, 0.45, 0.49))
def contrast_stretch(x: Tensor, low: float, g: torch.Generator) -> Tensor:
    """Contrast change: ``imadjust(img, stretchlim(img), [low, 1 - low])``, low 0.2–0.49, per channel.

    ``stretchlim`` as MATLAB computes it: from each channel's 256-bin histogram, the first level whose cumulative
    fraction exceeds 1 % and the first that reaches 99 %; a channel where they coincide keeps [0, 1].
    """
    return low + (1 - 2 * low) * _stretch_unit(x)


def _contrast_levels(x: Tensor, lows: Sequence[float]) -> Iterator[Tensor]:
    """:func:`contrast_stretch` of ``x`` at each of ``lows``, the limits found once."""
    t = _stretch_unit(x)
    return (low + (1 - 2 * low) * t for low in lows)


def _stretch_unit(x: Tensor) -> Tensor:
    """Each channel's values mapped from its ``stretchlim`` limits to [0, 1] (clamped), ``x``'s shape."""
    b, c = x.shape[:2]
    levels = (x.clamp(0, 1) * 255).round().to(torch.uint8).flatten(2)  # [B, C, HW]; 8 bits: fewer bytes to move
    hist = torch.stack([torch.bincount(ch, minlength=256) for ch in levels.flatten(0, 1)]).view(b, c, 256).double()
    cdf = hist.cumsum(2) / hist.sum(2, keepdim=True)
    lo_in = (cdf > 0.01).float().argmax(2, keepdim=True).to(x.dtype) / 255
    hi_in = (cdf >= 0.99).float().argmax(2, keepdim=True).to(x.dtype) / 255
    flat = hi_in <= lo_in
    lo_in = torch.where(flat, torch.zeros_like(lo_in), lo_in)
    hi_in = torch.where(flat, torch.ones_like(hi_in), hi_in)
    t = ((levels.to(x.dtype) / 255 - lo_in) / (hi_in - lo_in)).clamp(0, 1)
    return t.view_as(x)


@functools.lru_cache(maxsize=4)
def _pink_multiplier(n: int) -> Tensor:
    """``randnd``'s spectral multiplier (k²)^(β/2) for β = -1 on an ``n``×``n`` grid (rfft half-plane), DC 0."""
    ky = torch.fft.fftfreq(n, d=1.0 / n)
    kx = torch.fft.rfftfreq(n, d=1.0 / n)
    m = (ky[:, None] ** 2 + kx[None, :] ** 2).pow(-0.5)
    m[0, 0] = 0.0
    return m


def _pink_fields(g: torch.Generator, count: int, n: int = 512) -> Tensor:
    """``count`` fields of ``randnd(-1, n)`` (1/f amplitude spectrum, zero DC), each scaled to max |value| 1."""
    white = torch.randn((count, n, n), generator=g)
    field = torch.fft.irfft2(torch.fft.rfft2(white).mul_(_pink_multiplier(n)), s=(n, n))
    mean, std = _mean_std(field)
    white_mean, white_std = _mean_std(white)
    field.sub_(mean).div_(std).mul_(white_std).add_(white_mean)  # in place: the same values, no temporaries
    return field.div_(field.abs().amax((1, 2), keepdim=True))


def _mean_std(x: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and sample standard deviation over the last two dims, in two plain passes: 4x faster on one core than
    ``Tensor.std`` over two dims (a Welford reduction), equal to ~1e-7 relative."""
    mean = x.mean((1, 2), keepdim=True)
    var = (x - mean).square_().sum((1, 2), keepdim=True) / (x[0].numel() - 1)
    return mean, var.sqrt_()


@_dbcnn("6", (0.3, 0.7, 1.2, 2.0, 4.0), random=True)
def pink_noise(x: Tensor, weight: float, g: torch.Generator) -> Tensor:
    """Pink noise: a 512² 1/f field per channel (max |value| 1), resized to the image, ×255·weight added, floored.

    Weights 0.3–4 as in the generator (at the top levels the noise swamps the image, as there). The fields'
    statistics are summed in a different order than up to generator 1, so after the floor a few values differ by one
    grey level (tests/test_dbcnn_fast.py).
    """
    b, _, h, w = x.shape
    fields = _pink_fields(g, 3 * b).view(b, 3, 512, 512)
    noise = F.interpolate(fields, size=(h, w), mode="bicubic", align_corners=False, antialias=True).to(x)
    return (x * 255).add_(noise.mul_(weight).mul_(255)).floor_().div_(255)  # in place, the same values


#: the most pixels of the box-downsampled image the palette is built from (128²; 256² before generator 2)
_PALETTE_SAMPLE_PIXELS = 16384


@_dbcnn("7", (64, 32, 16, 8, 4))
def colour_quantisation_dither(x: Tensor, colours: float, g: torch.Generator) -> Tensor:
    """Colour quantisation with dithering: ``rgb2ind(img, n)`` with n = 64–4 colours, Floyd–Steinberg dithered.

    Approximation: MATLAB builds a minimum-variance palette from every pixel; here Pillow's median cut builds it from
    the image box-downsampled to at most 128² pixels (its colour distribution; Pillow's median cut grows faster than
    linearly with the distinct colours, so on a 384×512 image this is about 5x faster than the earlier 256² sample,
    ``python -m benchmarks.scnn_prepare``). Against the 256² sample the palette differs a little and the dither pattern
    shifts with it (a mean of ~7 grey levels per pixel), while the distortion's strength, the mean absolute error to
    the pristine image, stays within ±8 % on the test's image (tests/test_dbcnn_fast.py); median cut's splits can move
    it further on others (probing six 384×512 crops, five stayed within 6 %, one moved up to 29 % at two levels).
    """
    return _through_pil(x, lambda img: _quantise_levels(img, [colours])[0])


def _quantise_levels(img: Image.Image, colours: Sequence[float]) -> list[Image.Image]:
    """:func:`colour_quantisation_dither` of ``img`` with each of ``colours``, the palette sample made once."""
    factor = max(1, math.ceil(math.sqrt(img.width * img.height / _PALETTE_SAMPLE_PIXELS)))
    sample = img.reduce(factor) if factor > 1 else img
    outs = []
    for n in colours:
        palette = sample.quantize(colors=int(n), method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        outs.append(img.quantize(palette=palette, dither=Image.Dither.FLOYDSTEINBERG))
    return outs


@_dbcnn("8", (1.5, 3.0, 4.5, 6.0, 7.5))
def overexposure(x: Tensor, g_level: float, g: torch.Generator) -> Tensor:
    """Over-exposure: ``min(1, x + 0.1·g)`` with g 1.5–7.5."""
    return _u8(x).add_(0.1 * g_level).clamp_(max=1.0)


@_dbcnn("9", (1.5, 3.0, 4.5, 6.0, 7.5))
def underexposure(x: Tensor, g_level: float, g: torch.Generator) -> Tensor:
    """Under-exposure: ``x - 0.1·g`` with g 1.5–7.5 (uint8 saturates at 0)."""
    return _u8(x).sub_(0.1 * g_level).clamp_(min=0.0)


#: the Pillow types' levels of one 8-bit image: ``fn(image, params of the levels) -> images`` (``levels_u8``)
_PIL_LEVELS: dict[str, Callable[[Image.Image, Sequence[float]], list[Image.Image]]] = {
    jpeg.code: _jpeg_levels,
    jpeg2000.code: _j2k_levels,
    colour_quantisation_dither.code: _quantise_levels,
}
