"""Write a small synthetic dataset in the official KADID-10k layout (images/Iaa_tt_ll.png, dmos.csv).

References are crops of scikit-image's bundled photographs (no download); distorted images come from the same
:mod:`distill.data.distortions` functions the toolkit trains with.  **The labels are objective pseudo-MOS computed
from a full-reference formula, not human opinion scores** (see :data:`PSEUDO_MOS_FORMULA`); a ``README.txt`` and a
``SYNTHETIC.json`` marker in the folder say so, and :class:`distill.data.kadid.Kadid10k` reports it.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from distill.data.distortions import IMPLEMENTED_CODES, KADID_TYPES, get_distortion, kadid_code
from distill.errors import DataError, DistillError
from distill.metrics.image import psnr, ssim
from distill.registry import WRITERS

SYNTHETIC_MARKER = "SYNTHETIC.json"

#: The photographs used as references, in order (grey ones are replicated to RGB).
PHOTOS: tuple[str, ...] = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "stereo_motorcycle",
    "camera",
    "brick",
    "grass",
    "gravel",
    "moon",
    "coins",
)

PSEUDO_MOS_FORMULA = (
    "pseudo_mos = 1 + 4 * (0.5 * clip(SSIM, 0, 1) + 0.5 * clip((PSNR_dB - 15) / 30, 0, 1)); "
    "SSIM: Wang et al. 2004 (11x11 Gaussian window, sigma 1.5, K1=0.01, K2=0.03, valid region, mean over RGB), "
    "PSNR on RGB in [0, 1]; both between the 8-bit distorted image and its 8-bit reference. Range [1, 5], higher = "
    "better; var = 0."
)

README = """SYNTHETIC KADID-10k-LAYOUT DATASET -- NOT THE REAL KADID-10k, NOT HUMAN SCORES
==================================================================================

Written by distill (distill.data.synthetic.kadid.write_synthetic_kadid) so that loaders, recipes and benchmarks
can run end to end without the real dataset.

* Reference images I??.png are crops of scikit-image's bundled sample photographs, resized to {h}x{w}.
* Distorted images I??_TT_LL.png use distill's re-implementation of KADID-10k distortion types {types}
  at levels 1..{levels}.
* The "dmos" column of dmos.csv is an OBJECTIVE PSEUDO-MOS, computed from the distorted image and its reference:

      {formula}

  It is NOT a human opinion score. Numbers obtained on this set say nothing about performance on KADID-10k and
  must be labelled "synthetic" wherever they are reported.

Parameters: see SYNTHETIC.json (seed {seed}).
"""


def _stable_seed(*parts: object) -> int:
    key = ":".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little") & (2**63 - 1)


def _load_photo(name: str) -> np.ndarray:
    """A bundled scikit-image photo as float ``[H, W, 3]`` in [0, 1]."""
    from skimage import data

    img = getattr(data, name)()
    if isinstance(img, tuple):  # stereo_motorcycle: (left, right, disparity)
        img = img[0]
    img = np.asarray(img)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    img = img[..., :3].astype(np.float64)
    return img / 255.0 if img.max() > 1.0 else img


def _reference_crops(n_refs: int, size: tuple[int, int], seed: int) -> tuple[list[np.ndarray], list[dict]]:
    """``n_refs`` uint8 ``[H, W, 3]`` references: the k-th use of a photo takes the k-th crop of it.

    The first crop of each photo is the largest centred box of the target aspect ratio; later ones are boxes of
    35–80 % of that size at seeded random positions.
    """
    from skimage.transform import resize

    h, w = size
    rng = np.random.default_rng(_stable_seed("kadid-crops", seed))
    photos: dict[str, np.ndarray] = {}
    refs, sources = [], []
    for i in range(n_refs):
        name, k = PHOTOS[i % len(PHOTOS)], i // len(PHOTOS)
        if name not in photos:
            photos[name] = _load_photo(name)
        img = photos[name]
        ph, pw = img.shape[:2]
        scale = min(ph / h, pw / w)
        bh, bw = int(h * scale), int(w * scale)
        if k > 0:
            f = rng.uniform(0.35, 0.8)
            bh, bw = max(h // 4, int(bh * f)), max(w // 4, int(bw * f))
            bh, bw = min(bh, ph), min(bw, pw)
            top, left = int(rng.integers(0, ph - bh + 1)), int(rng.integers(0, pw - bw + 1))
        else:
            top, left = (ph - bh) // 2, (pw - bw) // 2
        crop = resize(img[top : top + bh, left : left + bw], (h, w), anti_aliasing=True)
        refs.append(np.clip(np.round(crop * 255), 0, 255).astype(np.uint8))
        sources.append({"photo": name, "box_top_left_height_width": [top, left, bh, bw]})
    return refs, sources


def pseudo_mos(dist: Tensor, ref: Tensor) -> Tensor:
    """Objective pseudo-MOS in [1, 5] of ``dist`` vs ``ref`` (``[B, 3, H, W]`` in [0, 1]); see PSEUDO_MOS_FORMULA."""
    quality_ssim = ssim(dist, ref).clamp(0, 1)
    quality_psnr = ((psnr(dist, ref) - 15) / 30).clamp(0, 1)  # inf (identical images) clamps to 1
    return 1 + 4 * (0.5 * quality_ssim + 0.5 * quality_psnr)


def _prepare_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise DataError(f"cannot write a synthetic KADID-10k set to '{out}': it is a file; choose a folder path")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise DataError(
                f"'{out}' exists and is not empty; choose a new folder or pass overwrite=True "
                "(CLI: `--set overwrite=true`) to replace a synthetic set written earlier"
            )
        if not (out / SYNTHETIC_MARKER).is_file():
            raise DataError(
                f"refusing to replace '{out}': it has no {SYNTHETIC_MARKER}, so it is not a synthetic "
                "set written by distill; choose an empty or new folder"
            )


@WRITERS.register("kadid10k")
def write_synthetic_kadid(
    out: str | Path,
    n_refs: int = 16,
    size: list[int] | tuple[int, int] = (128, 128),
    distortions: list[str] | None = None,
    levels: int = 5,
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """Write a synthetic KADID-10k-layout set (objective pseudo-MOS, not human labels) to ``out``; return its path.

    ``n_refs`` references of ``size`` (H, W) × ``distortions`` (type codes or names; default: every implemented
    type) × levels ``1..levels``.  Labels in ``dmos.csv`` are OBJECTIVE PSEUDO-MOS in [1, 5] (PSEUDO_MOS_FORMULA),
    not human scores.  Deterministic for a seed.  Written into a temporary sibling folder and renamed into place;
    an existing non-empty ``out`` is replaced only with ``overwrite=True`` and only if it is itself a synthetic set.
    """
    out = Path(out).expanduser()
    if len(size) != 2:
        raise DataError(f"size must be (height, width), got {size!r}")
    h, w = (int(v) for v in size)
    if n_refs < 1:
        raise DataError(f"n_refs must be at least 1, got {n_refs}")
    if h < 8 or w < 8:
        raise DataError(f"size must be at least 8×8, got {h}×{w}")
    if not 1 <= levels <= 5:
        raise DataError(f"levels must be in 1..5, got {levels}")
    try:
        codes = sorted({kadid_code(d) for d in distortions}) if distortions is not None else list(IMPLEMENTED_CODES)
        fns = {c: get_distortion(c) for c in codes}
    except DistillError as err:
        raise DataError(f"synthetic KADID-10k: {err}") from None
    if not codes:
        raise DataError("synthetic KADID-10k: the distortion list is empty")
    _prepare_out(out, overwrite)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    tmp.mkdir()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small tensors: extra intra-op threads only add OpenMP contention (8x slower when busy)
    try:
        images = tmp / "images"
        images.mkdir()
        refs, sources = _reference_crops(n_refs, (h, w), seed)
        width = max(2, len(str(n_refs)))
        ref_names = [f"I{i + 1:0{width}d}" for i in range(n_refs)]
        for name, arr in zip(ref_names, refs):
            Image.fromarray(arr).save(images / f"{name}.png", compress_level=1)
        x = torch.from_numpy(np.stack(refs)).permute(0, 3, 1, 2).float() / 255.0

        rows: list[tuple[str, str, float]] = []
        for code in codes:
            for level in range(1, levels + 1):
                g = torch.Generator().manual_seed(_stable_seed("kadid-distort", seed, code, level))
                y = (fns[code](x, level, g) * 255).round() / 255.0  # what the 8-bit PNG will hold
                scores = pseudo_mos(y, x).tolist()
                arrs = (y * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
                for ref, arr, score in zip(ref_names, arrs, scores):
                    name = f"{ref}_{code}_{level:02d}.png"
                    Image.fromarray(arr).save(images / name, compress_level=1)
                    rows.append((name, f"{ref}.png", score))
        rows.sort()
        with open(tmp / "dmos.csv", "w", newline="") as fh:
            fh.write("dist_img,ref_img,dmos,var\n")
            fh.writelines(f"{d},{r},{s:.4f},0\n" for d, r, s in rows)

        type_list = ", ".join(f"{c} {KADID_TYPES[c]}" for c in codes)
        (tmp / "README.txt").write_text(
            README.format(h=h, w=w, types=type_list, levels=levels, formula=PSEUDO_MOS_FORMULA, seed=seed)
        )
        marker = {
            "synthetic": True,
            "layout": "kadid10k",
            "writer": "distill.data.synthetic.kadid.write_synthetic_kadid",
            "labels": "objective pseudo-MOS (NOT human scores)",
            "pseudo_mos_formula": PSEUDO_MOS_FORMULA,
            "seed": seed,
            "n_refs": n_refs,
            "size_hw": [h, w],
            "levels": levels,
            "types": {c: KADID_TYPES[c] for c in codes},
            "n_images": len(rows),
            "references": dict(zip(ref_names, sources)),
        }
        (tmp / SYNTHETIC_MARKER).write_text(json.dumps(marker, indent=2) + "\n")

        if out.exists():
            if any(out.iterdir()):
                shutil.rmtree(out)
            else:
                out.rmdir()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        torch.set_num_threads(threads)
    return out
