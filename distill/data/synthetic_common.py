"""Helpers shared by the synthetic IQA writers: reference photos, the objective pseudo-MOS, atomic folder writing.

References are crops of scikit-image's bundled photographs (no download).  Labels are an objective full-reference
score (:func:`objective_quality`) mapped linearly to each dataset's MOS range — **not human opinion scores**.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from distill.data.iqa.dataset import SYNTHETIC_MARKER
from distill.errors import DataError, DistillError
from distill.metrics.image import psnr, ssim

__all__ = [
    "PHOTOS",
    "SYNTHETIC_MARKER",
    "blame_args",
    "load_photo",
    "objective_quality",
    "pseudo_mos",
    "pseudo_mos_formula",
    "reference_crops",
    "remove_stale_staging",
    "stable_seed",
    "staged_output",
    "to_uint8_batch",
]

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

_QUALITY = "(0.5 * clip(SSIM, 0, 1) + 0.5 * clip((PSNR_dB - 15) / 30, 0, 1))"
_QUALITY_DETAILS = (
    "SSIM: Wang et al. 2004 (11x11 Gaussian window, sigma 1.5, K1=0.01, K2=0.03, valid region, mean over RGB), "
    "PSNR on RGB in [0, 1]; both between the 8-bit distorted image and its 8-bit reference."
)


def stable_seed(*parts: object) -> int:
    """A 63-bit seed from ``parts`` (stable across runs and platforms)."""
    key = ":".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little") & (2**63 - 1)


def load_photo(name: str) -> np.ndarray:
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


def reference_crops(
    n_refs: int, size: tuple[int, int], seed: int, tag: str = "kadid-crops"
) -> tuple[list[np.ndarray], list[dict]]:
    """``n_refs`` uint8 ``[H, W, 3]`` references: the k-th use of a photo takes the k-th crop of it.

    The first crop of each photo is the largest centred box of the target aspect ratio; later ones are boxes of
    35–80 % of that size at random positions seeded by ``(tag, seed)``.
    """
    from skimage.transform import resize

    h, w = size
    rng = np.random.default_rng(stable_seed(tag, seed))
    photos: dict[str, np.ndarray] = {}
    refs, sources = [], []
    for i in range(n_refs):
        name, k = PHOTOS[i % len(PHOTOS)], i // len(PHOTOS)
        if name not in photos:
            photos[name] = load_photo(name)
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


def objective_quality(dist: Tensor, ref: Tensor) -> Tensor:
    """``0.5 * clip(SSIM, 0, 1) + 0.5 * clip((PSNR - 15) / 30, 0, 1)`` in [0, 1] per image (``[B, 3, H, W]``)."""
    quality_ssim = ssim(dist, ref).clamp(0, 1)
    quality_psnr = ((psnr(dist, ref) - 15) / 30).clamp(0, 1)  # inf (identical images) clamps to 1
    return 0.5 * quality_ssim + 0.5 * quality_psnr


def pseudo_mos(dist: Tensor, ref: Tensor, low: float = 1.0, high: float = 5.0) -> Tensor:
    """Objective pseudo-MOS in ``[low, high]`` (default KADID's [1, 5]) of ``dist`` vs ``ref``; higher = better."""
    return low + (high - low) * objective_quality(dist, ref)


def pseudo_mos_formula(low: float, high: float) -> str:
    """The formula of :func:`pseudo_mos` for ``[low, high]``, as written into README.txt and SYNTHETIC.json."""
    offset = f"{low:g} + " if low else ""
    return (
        f"pseudo_mos = {offset}{high - low:g} * {_QUALITY}; {_QUALITY_DETAILS} Range [{low:g}, {high:g}], "
        "higher = better"
    )


def to_uint8_batch(y: Tensor) -> np.ndarray:
    """``[B, 3, H, W]`` in [0, 1] → uint8 ``[B, H, W, 3]`` (what an 8-bit image file holds)."""
    return (y.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def _check_out(out: Path, overwrite: bool, title: str) -> None:
    if out.exists() and not out.is_dir():
        raise DataError(f"cannot write a synthetic {title} set to '{out}': it is a file; choose a folder path")
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
        written = _read_manifest(out)
        if written is not None:
            _refuse_foreign(out, written)


#: The list of files a writer wrote, kept in the set so that a later overwrite replaces nothing else.
MANIFEST = ".distill-written"


def _with_parents(files: Iterable[str]) -> set[str]:
    allowed = {MANIFEST}
    for name in files:
        parts = name.split("/")
        allowed.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    return allowed


def _files_in(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if not p.is_dir())


def _read_manifest(folder: Path) -> set[str] | None:
    try:
        return _with_parents((folder / MANIFEST).read_text().splitlines())
    except (OSError, UnicodeDecodeError):
        return None  # a set written before the manifest existed


def _refuse_foreign(out: Path, allowed: set[str], what: str = "that distill's writer did not write") -> None:
    """A DataError naming what in ``out`` is not in ``allowed`` (files a person added to a synthetic set)."""
    entries = (p.relative_to(out).as_posix() for p in out.rglob("*"))
    foreign = sorted(name for name in entries if name not in allowed)
    if foreign:
        shown = ", ".join(foreign[:4]) + (f" and {len(foreign) - 4} more" if len(foreign) > 4 else "")
        raise DataError(
            f"refusing to replace '{out}': it holds {len(foreign)} file(s) or folder(s) {what} ({shown}); move them "
            "out of it, or write the set to another folder"
        )


#: A staging folder untouched this long, whose writer process is gone, was left by a writer that was killed.
STALE_AFTER_S = 600.0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # another user's process, or a platform that cannot tell: keep its folder
    return True


def remove_stale_staging(out: Path, stale_after_s: float = STALE_AFTER_S) -> list[Path]:
    """Remove the hidden ``.{out.name}.tmp-PID-*`` folders that writers killed mid-write left beside ``out``.

    A folder goes only when its process is not running here and nothing in it changed for ``stale_after_s``
    seconds (a writer on another machine sharing the folder keeps its own). Returns what was removed.
    """
    removed = []
    for tmp in out.parent.glob(f".{out.name}.tmp-*"):
        match = re.fullmatch(rf"\.{re.escape(out.name)}\.tmp-(\d+)-[0-9a-f]+", tmp.name)
        if not match or not tmp.is_dir() or _alive(int(match.group(1))):
            continue
        try:
            newest = max([tmp.stat().st_mtime, *(c.stat().st_mtime for c in tmp.iterdir())])
        except OSError:
            continue  # being removed by someone else
        if time.time() - newest >= stale_after_s:
            shutil.rmtree(tmp, ignore_errors=True)
            removed.append(tmp)
    return removed


@contextlib.contextmanager
def staged_output(out: Path, overwrite: bool, title: str) -> Iterator[Path]:
    """Yield a temporary sibling folder to write a synthetic set into; on success it replaces ``out`` atomically.

    An existing non-empty ``out`` is replaced only with ``overwrite=True``, only if it holds a ``SYNTHETIC.json``
    marker and only if it holds nothing but what a writer wrote (the set's ``.distill-written`` list; for a set
    written before that list existed, what this write wrote): files a person added are never deleted.  Torch runs
    single-threaded inside (small tensors: extra intra-op threads only add OpenMP contention, 8x slower on a busy
    machine).
    """
    _check_out(out, overwrite, title)
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(out)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    tmp.mkdir()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield tmp
        (tmp / MANIFEST).write_text("".join(f"{name}\n" for name in _files_in(tmp)))
        if out.exists():
            if any(out.iterdir()) and overwrite:  # replace only what a writer wrote (this one, if no manifest)
                written = _read_manifest(out)
                if written is not None:
                    _refuse_foreign(out, written)
                else:  # written by an older distill, without the list: replace only what this write replaces
                    why = "that this write does not replace (the set has no list of what was written earlier)"
                    _refuse_foreign(out, _with_parents(_files_in(tmp)), why)
            if any(out.iterdir()) and not overwrite:
                # another process (a parallel sweep run) wrote the same set meanwhile: keep its copy, which
                # may already be in use, and drop ours
                shutil.rmtree(tmp, ignore_errors=True)
                return
            if any(out.iterdir()):
                shutil.rmtree(out)
            else:
                out.rmdir()
        try:
            os.replace(tmp, out)
        except OSError:
            if not (out.is_dir() and any(out.iterdir())):
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # a parallel writer won the race with the same content
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        torch.set_num_threads(threads)


def pick_types(
    distortions: Sequence[str] | None,
    normalise: Callable[[str], str],
    default: Sequence[str],
    lookup: Callable[[str], Callable[..., Tensor]],
    title: str,
) -> dict[str, Callable[..., Tensor]]:
    """The writer's distortion functions by sorted type code (``default`` when none are named); a bad or empty list
    is a DataError naming the dataset."""
    try:
        codes = sorted({normalise(d) for d in distortions}) if distortions is not None else list(default)
        fns = {c: lookup(c) for c in codes}
    except DistillError as err:
        raise DataError(f"synthetic {title}: distortions: {err}") from None
    if not codes:
        raise DataError(f"synthetic {title}: distortions: the list is empty")
    return fns


def unit_batch(images: Sequence[np.ndarray]) -> Tensor:
    """8-bit H×W×3 arrays as one float batch ``[N, 3, H, W]`` in [0, 1]."""
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255.0


def distorted_levels(
    x: Tensor,
    fns: Mapping[str, Callable[..., Tensor]],
    levels: int,
    seed: int,
    tag: str,
    mos_range: tuple[float, float],
) -> Iterator[tuple[str, int, np.ndarray, list[float]]]:
    """Every type × level of the references ``x``: ``(code, level, 8-bit images, pseudo-MOS on mos_range)``.

    Each (type, level) draws from its own generator seeded by ``(tag, seed, code, level)``; the labels are computed
    on the image the 8-bit file will hold.
    """
    for code, fn in fns.items():
        for level in range(1, levels + 1):
            g = torch.Generator().manual_seed(stable_seed(tag, seed, code, level))
            y = (fn(x, level, g) * 255).round() / 255.0  # what the 8-bit file will hold
            yield code, level, to_uint8_batch(y), pseudo_mos(y, x, *mos_range).tolist()


def describe_synthetic(folder: Path, readme: str, layout: str, writer: str, **fields: Any) -> None:
    """The last step every writer shares: ``README.txt`` (what the set is and is not) and the ``SYNTHETIC.json``
    marker (``{"synthetic": true, "layout", "writer", **fields}``) that readers and reports recognise."""
    (folder / "README.txt").write_text(readme)
    marker = {"synthetic": True, "layout": layout, "writer": writer, **fields}
    (folder / SYNTHETIC_MARKER).write_text(json.dumps(marker, indent=2) + "\n")


def blame_args(err: DistillError, args: Mapping[str, Any], where: Callable[[str, Any], str]) -> DistillError:
    """A writer's error, prefixed with ``where(key, value)`` for each of ``args`` its message names (as a word).

    Writers check their arguments in their own words ("n_refs must be at least 1, got -1"); the caller knows where
    the values came from (a ``--set`` option, a recipe key) and says so. An error that names none of the arguments
    comes back unchanged.
    """
    message = str(err)
    named = [k for k in args if re.search(rf"(?<![\w.]){re.escape(k)}(?!\w)", message)]
    if not named:
        return err
    prefix = "; ".join(where(k, args[k]) for k in named)
    return DataError(f"{prefix}: {message}")


def image_size(size: Sequence[int], minimum: int) -> tuple[int, int]:
    """``(height, width)`` from a writer's ``size``; a wrong length or a side below ``minimum`` is a DataError."""
    if len(size) != 2:
        raise DataError(f"size must be (height, width), got {size!r}")
    h, w = (int(v) for v in size)
    if h < minimum or w < minimum:
        raise DataError(f"size must be at least {minimum}×{minimum}, got {h}×{w}")
    return h, w
