"""Synthetic SR sets in the DIV2K layout and the benchmark layout (Set5/Set14/B100/Urban100), from bundled photos.

HR images are crops, at native resolution, of scikit-image's bundled photographs (no download, no resizing, so
they keep the photos' real high-frequency detail); LR images are made with the same MATLAB-compatible bicubic
downsampling the readers use (:func:`distill.data.sr.dataset.bicubic_downsample`), saved as 8-bit PNGs like the official
``LR_bicubic`` files. Training (DIV2K-layout) and test (benchmark-layout) sets use **disjoint photographs**, so
no content is shared between them. A ``SYNTHETIC.json`` marker and a ``README.txt`` say what the folder is; every
table fed by it says SYNTHETIC.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from distill.data.images import save_rgb
from distill.data.sr.dataset import SYNTHETIC_MARKER, bicubic_downsample
from distill.data.synthetic_common import describe_synthetic, image_size, load_photo, stable_seed, staged_output
from distill.errors import DataError
from distill.registry import WRITERS

__all__ = ["BENCHMARK_PHOTOS", "TRAIN_PHOTOS", "write_synthetic_div2k", "write_synthetic_sr_benchmark"]

#: Photographs the DIV2K-layout (training) stand-in is cropped from.
TRAIN_PHOTOS: tuple[str, ...] = (
    "astronaut",
    "coffee",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "stereo_motorcycle",
    "brick",
    "grass",
    "moon",
)
#: Photographs the benchmark-layout (test) stand-ins are cropped from: disjoint from :data:`TRAIN_PHOTOS`.
BENCHMARK_PHOTOS: tuple[str, ...] = ("chelsea", "rocket", "camera", "gravel", "coins", "clock", "page", "text")

README = """SYNTHETIC {layout}-LAYOUT SUPER-RESOLUTION SET -- NOT THE REAL {title}
========================================================================

Written by distill ({writer}) so that SR readers, recipes and benchmarks run end to end without the real data.

* HR images are {h}x{w} crops, at native resolution, of scikit-image's bundled photographs: {photos}.
* LR images (scales {scales}) are MATLAB-compatible bicubic downsamplings of the HR images (BasicSR's
  matlab_functions.imresize, antialiased), rounded to 8 bits.
* Training stand-ins (DIV2K layout) and test stand-ins (benchmark layout) use disjoint photographs.

Numbers obtained on this set say nothing about performance on {title}; report them as "synthetic".
Parameters: see SYNTHETIC.json (seed {seed}).
"""


def _check_scales(scales: Sequence[int], h: int, w: int) -> list[int]:
    scales = sorted({int(s) for s in scales})
    if not scales or min(scales) < 2:
        raise DataError(f"scales must be integers >= 2, got {list(scales)}")
    lcm = math.lcm(*scales)
    if h % lcm or w % lcm:
        raise DataError(f"size {h}x{w} must be a multiple of {lcm} (the lcm of scales {scales}) on both sides")
    return scales


def _crops(photos: Sequence[str], n: int, h: int, w: int, seed: int, tag: str) -> tuple[list[torch.Tensor], list]:
    """``n`` HR crops ``[3, h, w]`` in [0, 1] (8-bit values), cycling through ``photos``; crop boxes are seeded."""
    rng = np.random.default_rng(stable_seed(tag, seed))
    cache: dict[str, np.ndarray] = {}
    out, sources = [], []
    for i in range(n):
        name = photos[i % len(photos)]
        if name not in cache:
            cache[name] = load_photo(name)
        img = cache[name]
        ph, pw = img.shape[:2]
        if ph < h or pw < w:
            raise DataError(f"size {h}x{w} is larger than the photo '{name}' ({ph}x{pw}); choose a smaller size")
        top, left = int(rng.integers(0, ph - h + 1)), int(rng.integers(0, pw - w + 1))
        crop = np.round(img[top : top + h, left : left + w] * 255) / 255
        out.append(torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1))).float())
        sources.append({"photo": name, "top_left": [top, left]})
    return out, sources


def _write_pairs(hr_dir: Path, lr_root: Path, images: list[torch.Tensor], names: list[str], scales: list[int]) -> None:
    for name, hr in zip(names, images):
        save_rgb(hr, hr_dir / f"{name}.png")
        for s in scales:
            save_rgb(bicubic_downsample(hr, s), lr_root / f"X{s}" / f"{name}x{s}.png")


def _marker(
    tmp: Path, layout: str, title: str, writer: str, h: int, w: int, scales: list[int], seed: int, **kw: Any
) -> None:
    """Write README.txt and the SYNTHETIC.json marker (``kw`` goes into the marker)."""
    photos = sorted({src["photo"] for v in kw.get("images", {}).values() for src in v.values()})
    readme = README.format(
        layout=layout.upper(),
        title=title,
        writer=writer,
        h=h,
        w=w,
        photos=", ".join(photos),
        scales=", ".join(map(str, scales)),
        seed=seed,
    )
    fields = {"seed": seed, "size_hw": [h, w], "scales": scales}
    describe_synthetic(tmp, readme, layout, writer, **{**fields, **kw})


@WRITERS.register("div2k")
def write_synthetic_div2k(
    out: str | Path,
    n_train: int = 16,
    n_valid: int = 4,
    size: list[int] | tuple[int, int] = (96, 96),
    scales: list[int] | tuple[int, ...] = (2, 3, 4),
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """Write a synthetic DIV2K-layout set (HR crops of bundled photos + bicubic LR) to ``out``; return its path.

    ``DIV2K_train_HR/0001.png …`` (``n_train``) and ``DIV2K_valid_HR/0801.png …`` (``n_valid``), with
    ``DIV2K_{train,valid}_LR_bicubic/X{s}/NNNNx{s}.png`` for every scale. ``size`` (H, W) must be a multiple of
    the scales' lcm. Deterministic for a seed; replaces an existing folder only if it is a synthetic set and
    ``overwrite`` is set.
    """
    out = Path(out).expanduser()
    h, w = image_size(size, minimum=8)
    scales = _check_scales(scales, h, w)
    if not 1 <= n_train <= 800 or not 0 <= n_valid <= 100:
        raise DataError(f"n_train must be in 1..800 and n_valid in 0..100, got {n_train} and {n_valid}")
    with staged_output(out, overwrite, "DIV2K") as tmp:
        images, sources = _crops(TRAIN_PHOTOS, n_train + n_valid, h, w, seed, "div2k-crops")
        names = [f"{i:04d}" for i in range(1, n_train + 1)] + [f"{800 + i:04d}" for i in range(1, n_valid + 1)]
        for split, lo, hi in (("train", 0, n_train), ("valid", n_train, n_train + n_valid)):
            if hi > lo:
                lr_root = tmp / f"DIV2K_{split}_LR_bicubic"
                _write_pairs(tmp / f"DIV2K_{split}_HR", lr_root, images[lo:hi], names[lo:hi], scales)
        _marker(
            tmp,
            "div2k",
            "DIV2K",
            "distill.data.sr.synthetic.write_synthetic_div2k",
            h,
            w,
            scales,
            seed,
            n_train=n_train,
            n_valid=n_valid,
            images={"all": dict(zip(names, sources))},
        )
    return out


@WRITERS.register("sr_benchmark")
def write_synthetic_sr_benchmark(
    out: str | Path,
    sets: list[str] | tuple[str, ...] = ("Set5", "Set14", "B100", "Urban100"),
    n_images: int = 4,
    size: list[int] | tuple[int, int] = (96, 96),
    scales: list[int] | tuple[int, ...] = (2, 3, 4),
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """Write synthetic test sets in the benchmark layout (``out/<set>/HR``, ``out/<set>/LR_bicubic/X{s}``).

    ``n_images`` crops of ``size`` per set from photographs disjoint from the DIV2K stand-in's. Each set gets its
    own crops (seeded by set name). Same determinism and overwrite rules as :func:`write_synthetic_div2k`.
    """
    out = Path(out).expanduser()
    h, w = image_size(size, minimum=8)
    scales = _check_scales(scales, h, w)
    if n_images < 1 or not sets:
        raise DataError(f"need at least one set and n_images >= 1, got sets={list(sets)} n_images={n_images}")
    with staged_output(out, overwrite, "SR benchmark") as tmp:
        all_sources = {}
        for set_name in sets:
            # each set starts at a different photo, so small sets do not all show the same ones
            offset = stable_seed("sr-benchmark-order", set_name) % len(BENCHMARK_PHOTOS)
            images, sources = _crops(
                BENCHMARK_PHOTOS[offset:] + BENCHMARK_PHOTOS[:offset], n_images, h, w, seed, f"sr-benchmark-{set_name}"
            )
            names = [f"img_{i + 1:03d}" for i in range(n_images)]
            _write_pairs(tmp / set_name / "HR", tmp / set_name / "LR_bicubic", images, names, scales)
            all_sources[set_name] = dict(zip(names, sources))
        _marker(
            tmp,
            "sr_benchmark",
            "/".join(sets),
            "distill.data.sr.synthetic.write_synthetic_sr_benchmark",
            h,
            w,
            scales,
            seed,
            sets=list(sets),
            n_images=n_images,
            images=all_sources,
        )
        for set_name in sets:
            (tmp / set_name / SYNTHETIC_MARKER).write_text(json.dumps({"synthetic": True, "see": "../"}) + "\n")
    return out
